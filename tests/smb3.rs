//! Encrypted SMB3 read with the analyst's keys (`--smb-keys`), for each of the four
//! ciphers, against tshark given the same keys (`-o uat:smb2_seskey_list:...`): the
//! bytes tshark ties to a share or pipe inside the encrypted session are in portscope's
//! row for it; without keys they stay `smb-encrypted`; with a wrong key nothing is named
//! and the report says which session failed. The captures are made here, with the SMB
//! message builders and `inspect::smb::crypt::seal`.

use super::fixtures::{eth_ip, whole, Stream, A, B, NS, T0};
use super::util::{classify_json, run, stderr, tmpdir};
use portscope::gen::{self, Record};
use portscope::inspect::rpc::bind_pdu;
use portscope::inspect::smb::build::*;
use portscope::inspect::smb::crypt::{keys_from_session_key, seal, Key};
use std::path::{Path, PathBuf};

const SAMR: &str = "12345778-1234-abcd-ef00-0123456789ac";
const SESSION: u64 = 0x0000_1400_0000_0041;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn key_bytes(k: &Key) -> Vec<u8> {
    // The test knows the keys it made: the library never shows them.
    match k {
        Key::Aes128(b) => b.to_vec(),
        Key::Aes256(b) => b.to_vec(),
    }
}

/// One cipher's case: the keys each side encrypts with, and the key file line.
struct Case {
    name: &'static str,
    gcm: bool,
    c2s: Key,
    s2c: Key,
    /// The key file's fields after the session id: session key, S2C, C2S.
    fields: String,
    /// What tshark is given after the session id: the same, but for a session key alone,
    /// the keys derived from it by openssl's HMAC (an implementation of its own), since
    /// tshark derives keys only at a session setup it has seen authenticate.
    tshark_fields: String,
    /// The dialect the negotiate response names.
    dialect: u16,
}

fn cases() -> Vec<Case> {
    let session_key = [0x5a; 16];
    let (c2s, s2c) = keys_from_session_key(&session_key);
    let explicit = |name, gcm, c2s: Key, s2c: Key| {
        let fields = format!(
            "{},{},{}",
            hex(&session_key),
            hex(&key_bytes(&s2c)),
            hex(&key_bytes(&c2s))
        );
        Case {
            name,
            gcm,
            tshark_fields: fields.clone(),
            fields,
            c2s,
            s2c,
            dialect: 0x0311,
        }
    };
    vec![
        // SMB 3.0: AES-128-CCM, the keys derived from the session key.
        Case {
            name: "aes-128-ccm",
            gcm: false,
            fields: format!("{},\"\",\"\"", hex(&session_key)),
            tshark_fields: format!(
                "{},{},{}",
                hex(&session_key),
                openssl_kdf(&session_key, b"ServerOut\0"),
                openssl_kdf(&session_key, b"ServerIn \0")
            ),
            c2s,
            s2c,
            dialect: 0x0300,
        },
        explicit(
            "aes-128-gcm",
            true,
            Key::Aes128([0x21; 16]),
            Key::Aes128([0x12; 16]),
        ),
        explicit(
            "aes-256-ccm",
            false,
            Key::Aes256([0x31; 32]),
            Key::Aes256([0x13; 32]),
        ),
        explicit(
            "aes-256-gcm",
            true,
            Key::Aes256([0x41; 32]),
            Key::Aes256([0x14; 32]),
        ),
    ]
}

/// The SMB 3.0 key for `context` ([MS-SMB2] 3.1.4.2: HMAC-SHA256 of 1, the label
/// "SMB2AESCCM\0", 0, the context and L = 128, all big-endian), by openssl.
fn openssl_kdf(session_key: &[u8], context: &[u8]) -> String {
    let mut input = 1u32.to_be_bytes().to_vec();
    input.extend_from_slice(b"SMB2AESCCM\0\0");
    input.extend_from_slice(context);
    input.extend_from_slice(&128u32.to_be_bytes());
    let out = std::process::Command::new("openssl")
        .args(["mac", "-digest", "SHA256", "-macopt"])
        .arg(format!("hexkey:{}", hex(session_key)))
        .arg("HMAC")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(&input)?;
            child.wait_with_output()
        })
        .expect("openssl (Debian package openssl) must be installed");
    String::from_utf8(out.stdout).unwrap().trim()[..32].to_lowercase()
}

/// A write response to request `message` on `tree`.
fn write_response(message: u64, tree: u32) -> Vec<u8> {
    let mut m = smb2(9, true, message, Some(tree));
    m.resize(m.len() + 16, 0);
    m
}

/// An SMB2 negotiate response naming `dialect`, and for 3.1.1 the cipher (the
/// encryption capabilities context: 1 AES-128-CCM, 2 AES-128-GCM, 3 AES-256-CCM, 4
/// AES-256-GCM), which tshark needs to pick it.
fn negotiate_response(dialect: u16, cipher: u16) -> Vec<u8> {
    let mut m = smb2_plain(0, true, 0, 0);
    let mut body = vec![0u8; 64];
    body[0] = 65;
    body[4..6].copy_from_slice(&dialect.to_le_bytes());
    if dialect == 0x0311 {
        body[6..8].copy_from_slice(&1u16.to_le_bytes());
        body[56..58].copy_from_slice(&128u16.to_le_bytes());
        body[60..64].copy_from_slice(&128u32.to_le_bytes());
        // ContextType 2 (encryption), DataLength 4, Reserved, CipherCount 1, the cipher.
        body.extend_from_slice(&[2, 0, 4, 0, 0, 0, 0, 0, 1, 0]);
        body.extend_from_slice(&cipher.to_le_bytes());
    }
    m.extend_from_slice(&body);
    m
}

/// A capture of one SMB connection: negotiation in the clear, then encrypted: the tree
/// connect of IPC$, a create of `\pipe\samr`, a bind written to it and its answer.
/// One encrypted message of a capture: its frame's length, the transform message, the
/// SMB2 message inside, and the key and mode it was sealed with.
struct Sealed {
    frame_len: u64,
    sealed: Vec<u8>,
    plain: Vec<u8>,
    key: Vec<u8>,
}

fn capture(dir: &Path, c: &Case) -> (PathBuf, Vec<Sealed>) {
    let mut sealed_messages = Vec::new();
    let mut records: Vec<Record> = Vec::new();
    let mut t = Stream::new((A, 50700), (B, 445));
    let mut at = T0;
    let mut nonce = 0u8;
    let mut push = |t: &mut Stream, side: usize, syn: bool, payload: &[u8]| {
        at += NS / 1000;
        records.push(whole(at, eth_ip(&t.segment(side, syn, payload))));
    };
    push(&mut t, 0, true, &[]);
    push(&mut t, 1, true, &[]);
    push(&mut t, 0, false, &session(&smb2_plain(0, false, 0, 36)));
    let cipher = match (&c.c2s, c.gcm) {
        (Key::Aes128(_), false) => 1,
        (Key::Aes128(_), true) => 2,
        (Key::Aes256(_), false) => 3,
        (Key::Aes256(_), true) => 4,
    };
    push(
        &mut t,
        1,
        false,
        &session(&negotiate_response(c.dialect, cipher)),
    );
    // The session setup, in the clear, names the session (tshark derives its keys there).
    for response in [false, true] {
        let mut m = smb2_plain(1, response, 1, 24);
        m[40..48].copy_from_slice(&SESSION.to_le_bytes());
        push(&mut t, usize::from(response), false, &session(&m));
    }
    let uuid = portscope::catalog::parse_uuid(SAMR).unwrap();
    let messages: Vec<(usize, Vec<u8>)> = vec![
        (0, smb2_plain(3, false, 2, 24)),
        (1, tree_connect_response(2, 1, 2)),
        (0, create_request(3, 1, "samr")),
        (1, create_response(3, 1, 11)),
        (0, write_request(4, 1, 11, &bind_pdu(uuid, false))),
        (1, write_response(4, 1)),
    ];
    for (side, plain) in messages {
        nonce += 1;
        let key = if side == 0 { &c.c2s } else { &c.s2c };
        let sealed = seal(key, c.gcm, SESSION, [nonce; 16], &plain).unwrap();
        push(&mut t, side, false, &session(&sealed));
        sealed_messages.push(Sealed {
            // Ethernet, IPv4 and TCP headers, the session header, the message.
            frame_len: 14 + 20 + 20 + 4 + sealed.len() as u64,
            sealed,
            plain,
            key: key_bytes(key),
        });
    }
    let path = dir.join(format!("{}.pcap", c.name));
    gen::write_pcap(&path, 1, false, records).unwrap();
    (path, sealed_messages)
}

/// Opens each sealed message with OpenSSL (Python's `cryptography`), an AEAD of its own:
/// the nonce's first 12 (GCM) or 11 (CCM) bytes, the transform header from the nonce on as
/// authenticated data, the signature as the tag ([MS-SMB2] 3.1.4.3).
fn openssl_opens(messages: &[Sealed], gcm: bool) -> bool {
    let script = r#"
import sys
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, AESCCM
for line in sys.stdin:
    key, msg, gcm = line.split()
    key, msg = bytes.fromhex(key), bytes.fromhex(msg)
    nonce, aad, tag, body = msg[20:36], msg[20:52], msg[4:20], msg[52:]
    if gcm == "1":
        plain = AESGCM(key).decrypt(nonce[:12], body + tag, aad)
    else:
        plain = AESCCM(key, tag_length=16).decrypt(nonce[:11], body + tag, aad)
    print(plain.hex())
"#;
    let input: String = messages
        .iter()
        .map(|m| format!("{} {} {}\n", hex(&m.key), hex(&m.sealed), u8::from(gcm)))
        .collect();
    let out = std::process::Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(input.as_bytes())?;
            child.wait_with_output()
        })
        .expect("python3 with cryptography (Debian package python3-cryptography)");
    let lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    out.status.success()
        && lines.len() == messages.len()
        && lines.iter().zip(messages).all(|(l, m)| *l == hex(&m.plain))
}

fn key_file(dir: &Path, name: &str, fields: &str) -> PathBuf {
    let path = dir.join(name);
    let id = hex(&SESSION.to_le_bytes());
    std::fs::write(&path, format!("# session keys\n\n\"{id}\",{fields}\n")).unwrap();
    path
}

/// The smb-encrypted bytes of `capture` classified without keys, and the report.
fn without_keys(capture: &Path) -> (u64, super::util::Report) {
    let (plain, _) = classify_json(&[capture.to_str().unwrap()]);
    let encrypted = plain
        .services
        .iter()
        .filter(|r| r.kind == "smb-encrypted")
        .map(|r| r.bytes)
        .sum();
    (encrypted, plain)
}

/// (match, pipe or share type, bytes) of the SMB rows of a report.
fn smb_rows(report: &super::util::Report) -> Vec<(String, String, u64)> {
    let mut rows: Vec<_> = report
        .services
        .iter()
        .map(|r| {
            let what = r.pipe.clone().or(r.share_type.clone()).unwrap_or_default();
            (r.kind.clone(), what, r.bytes)
        })
        .collect();
    rows.sort();
    rows
}

#[test]
fn every_cipher_decrypts_with_the_keys_and_tshark_agrees() {
    let dir = tmpdir("smb3");
    for c in cases() {
        let (capture, sealed) = capture(&dir, &c);
        let keys = key_file(&dir, &format!("{}.keys", c.name), &c.fields);
        let (report, _) = classify_json(&[
            "--smb-keys",
            keys.to_str().unwrap(),
            capture.to_str().unwrap(),
        ]);
        let rows = smb_rows(&report);
        // The pipe's row holds the create, the bind and its answer; the tree connect goes
        // nowhere named (IPC$ is not a share of files).
        let pipe = rows
            .iter()
            .find(|r| r.0 == "smb-pipe" && r.1 == "samr")
            .unwrap_or_else(|| panic!("{}: {rows:?}", c.name));
        assert!(
            rows.iter().all(|r| r.0 != "smb-encrypted"),
            "{}: {rows:?}",
            c.name
        );
        let row = report
            .services
            .iter()
            .find(|r| r.pipe.as_deref() == Some("samr"))
            .unwrap();
        assert_eq!(row.interface.as_ref().map(|i| i.uuid.as_str()), Some(SAMR));
        assert!(report.smb_undecrypted.is_empty(), "{}", c.name);
        // The pipe's row: the create and write requests and responses, by construction.
        let creates_and_writes: u64 = sealed
            .iter()
            .filter(|m| matches!(m.plain[12], 5 | 9))
            .map(|m| m.frame_len)
            .sum();
        assert_eq!(creates_and_writes, pipe.2, "{}: {rows:?}", c.name);
        // OpenSSL opens every message as sealed.
        assert!(openssl_opens(&sealed, c.gcm), "{}", c.name);
        // tshark, given the same keys, decrypts all six messages, sees the create of samr
        // and the SAMR bind, and ties the same frames to the tree. tshark 4.0 (Debian 12)
        // decrypts none of the AES-256 messages with the keys given (0 of 6), so there
        // OpenSSL above is the independent decoder.
        if matches!(c.c2s, Key::Aes128(_)) {
            let theirs = tshark_decrypted(&capture, &tshark_keys(&c));
            assert_eq!(theirs.decrypted, 6, "{}", c.name);
            assert_eq!(theirs.bound.as_deref(), Some(SAMR), "{}", c.name);
            assert_eq!(theirs.pipe_bytes, pipe.2, "{}: portscope {rows:?}", c.name);
        }

        // Without keys: the same bytes are smb-encrypted.
        let (encrypted, plain) = without_keys(&capture);
        assert!(encrypted >= pipe.2, "{}: {:?}", c.name, smb_rows(&plain));
        assert!(plain.services.iter().all(|r| r.kind != "smb-pipe"));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// What tshark makes of an encrypted capture given keys.
struct Decrypted {
    /// Frames whose encrypted message tshark decrypted.
    decrypted: usize,
    /// The interface the decrypted bind names.
    bound: Option<String>,
    /// Wire bytes of the decrypted create (5) and write (9) requests and responses on the
    /// pipe's tree: what goes to the pipe's row.
    pipe_bytes: u64,
}

fn tshark_decrypted(capture: &Path, options: &[String]) -> Decrypted {
    let out = std::process::Command::new("tshark")
        .args(["-2", "-n"])
        .args(options)
        .arg("-r")
        .arg(capture)
        .args(["-T", "fields", "-E", "occurrence=a", "-E", "aggregator=;"])
        .args([
            "-e",
            "frame.len",
            "-e",
            "smb2.protocol_id",
            "-e",
            "smb2.cmd",
        ])
        .args(["-e", "smb2.tid", "-e", "dcerpc.cn_bind_to_uuid"])
        .output()
        .expect("tshark runs");
    let mut d = Decrypted {
        decrypted: 0,
        bound: None,
        pipe_bytes: 0,
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let field = |i: usize| f.get(i).copied().unwrap_or("");
        if !(field(1).contains("0xfd534d42") && field(1).contains("0xfe534d42")) {
            continue;
        }
        d.decrypted += 1;
        if !field(4).is_empty() {
            d.bound = Some(field(4).to_string());
        }
        if matches!(field(2), "5" | "9") && field(3) == "0x00000001" {
            d.pipe_bytes += field(0).parse::<u64>().unwrap();
        }
    }
    d
}

/// tshark's `-o` option giving it the case's keys, as Wireshark's key table holds them.
fn tshark_keys(c: &Case) -> Vec<String> {
    let id = hex(&SESSION.to_le_bytes());
    // tshark takes the hex fields bare and an empty one as "".
    let fields: Vec<String> = c
        .tshark_fields
        .split(',')
        .map(|f| match f.trim_matches('"') {
            "" => "\"\"".to_string(),
            hex => hex.to_string(),
        })
        .collect();
    vec![
        "-o".to_string(),
        format!("uat:smb2_seskey_list:{id},{}", fields.join(",")),
    ]
}

#[test]
fn a_wrong_key_names_nothing_and_the_report_says_so() {
    let dir = tmpdir("smb3-wrong");
    let c = &cases()[1];
    let (capture, _) = capture(&dir, c);
    let wrong = key_file(
        &dir,
        "wrong.keys",
        &format!("{},{},{}", hex(&[0; 16]), hex(&[1; 16]), hex(&[2; 16])),
    );
    let out = run(&[
        "classify",
        "--format",
        "json",
        "--smb-keys",
        wrong.to_str().unwrap(),
        capture.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: super::util::Report = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report.services.iter().all(|r| r.kind != "smb-pipe"));
    assert_eq!(report.smb_undecrypted.len(), 1);
    assert_eq!(report.smb_undecrypted[0].session, "0x0000140000000041");
    assert_eq!(report.smb_undecrypted[0].messages, 6);
    let table = run(&[
        "classify",
        "--smb-keys",
        wrong.to_str().unwrap(),
        capture.to_str().unwrap(),
    ]);
    let text = super::util::stdout(&table);
    assert!(
        text.contains("note: 6 encrypted SMB messages of session 0x0000140000000041 (--smb-keys) did not decrypt with the keys given"),
        "{text}"
    );
    // No key appears in any output.
    for output in [&out.stdout, &table.stdout, &out.stderr] {
        let text = String::from_utf8_lossy(output);
        assert!(!text.contains(&hex(&[1; 16])) && !text.contains(&hex(&[2; 16])));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_bad_key_file_is_one_error_line_before_any_packet_is_read() {
    let dir = tmpdir("smb3-bad");
    let bad = dir.join("bad.keys");
    std::fs::write(&bad, "# one good line, then a bad one\n0100000000000000,00112233445566778899aabbccddeeff,\"\",\"\"\n0100,zz\n").unwrap();
    let capture = super::util::fixture("smb.pcap");
    let out = run(&["classify", "--smb-keys", bad.to_str().unwrap(), &capture]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert_eq!(
        stderr(&out),
        format!(
            "portscope: key file {}:3: expected SESSION_ID,SESSION_KEY,S2C_KEY,C2S_KEY, found 2 fields\n",
            bad.display()
        )
    );
    let missing = dir.join("missing.keys");
    let out = run(&[
        "classify",
        "--smb-keys",
        missing.to_str().unwrap(),
        &capture,
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).starts_with(&format!(
            "portscope: cannot read key file {}: ",
            missing.display()
        )),
        "{}",
        stderr(&out)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A Samba server in a network namespace of its own, reached from another over a veth
/// pair, requiring encryption with one cipher; `debug encryption` makes its clients print
/// each session's keys.
struct Samba {
    dir: PathBuf,
    server: String,
    client: String,
    address: String,
}

impl Samba {
    fn start(n: u32, cipher: &str) -> Samba {
        let tag = format!("ps{}s{n}", std::process::id() % 10_000);
        let dir = tmpdir(&format!("samba-{n}"));
        for sub in [
            "share", "private", "lock", "state", "cache", "pid", "log", "ncalrpc",
        ] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        // Large enough that its READ response goes on over many segments, whose header
        // portscope reads from the first.
        std::fs::write(
            dir.join("share/a.txt"),
            "the file the client reads\n".repeat(12_000),
        )
        .unwrap();
        let address = format!("10.79.{n}.1");
        let d = dir.display();
        std::fs::write(
            dir.join("smb.conf"),
            format!(
                "[global]\n  netbios name = PSTEST\n  security = user\n  server role = standalone server\n  server smb encrypt = required\n  server smb3 encryption algorithms = {cipher}\n  server min protocol = SMB3\n  log file = {d}/log/smbd.log\n  private dir = {d}/private\n  lock directory = {d}/lock\n  state directory = {d}/state\n  cache directory = {d}/cache\n  pid directory = {d}/pid\n  ncalrpc dir = {d}/ncalrpc\n  smb ports = 445\n  interfaces = {address}/24\n  bind interfaces only = yes\n  disable netbios = yes\n  load printers = no\n  printcap name = /dev/null\n[data]\n  path = {d}/share\n  read only = no\n"
            ),
        )
        .unwrap();
        std::fs::write(
            dir.join("client.conf"),
            format!("[global]\n  client min protocol = SMB3\n  client smb encrypt = required\n  client smb3 encryption algorithms = {cipher}\n  debug encryption = yes\n"),
        )
        .unwrap();
        let (server, client) = (format!("{tag}a"), format!("{tag}b"));
        let sh = |script: &str| {
            let out = std::process::Command::new("sh")
                .args(["-c", script])
                .output()
                .unwrap();
            assert!(out.status.success(), "{script}: {}", stderr(&out));
        };
        sh(&format!(
            "ip netns add {server} && ip netns add {client} && ip link add {server} type veth peer name {client} && ip link set {server} netns {server} && ip link set {client} netns {client} && ip -n {server} addr add {address}/24 dev {server} && ip -n {client} addr add 10.79.{n}.2/24 dev {client} && ip -n {server} link set {server} up && ip -n {client} link set {client} up && ip -n {server} link set lo up"
        ));
        sh(&format!(
            "printf 'secret\\nsecret\\n' | ip netns exec {server} smbpasswd -c {d}/smb.conf -a -s root >/dev/null && ip netns exec {server} smbd -s {d}/smb.conf -D"
        ));
        // smbd listens once it has forked.
        for _ in 0..100 {
            let out = std::process::Command::new("ip")
                .args(["netns", "exec", &server, "ss", "-ltn"])
                .output()
                .unwrap();
            if String::from_utf8_lossy(&out.stdout).contains(&format!("{address}:445")) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Samba {
            dir,
            server,
            client,
            address,
        }
    }

    /// Captures a client listing the share and reading a file (smbclient), then asking the
    /// server service about itself over `\pipe\srvsvc` (rpcclient): the capture and the
    /// key file lines of both sessions, from what the clients printed.
    fn sessions(&self, name: &str) -> (PathBuf, String) {
        let capture = self.dir.join(format!("{name}.pcap"));
        let mut tcpdump = std::process::Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.client,
                "tcpdump",
                "-i",
                &self.client,
                "-U",
                "-w",
            ])
            .arg(&capture)
            .args(["tcp", "port", "445"])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("tcpdump (Debian package tcpdump) must be installed");
        std::thread::sleep(std::time::Duration::from_millis(500));
        let conf = self.dir.join("client.conf");
        let mut printed = String::new();
        let smbclient = std::process::Command::new("ip")
            .args(["netns", "exec", &self.client, "smbclient", "-s"])
            .arg(&conf)
            .arg(format!("//{}/data", self.address))
            .args(["-U", "root%secret", "-c"])
            .arg(format!("ls; get a.txt {}/got.txt", self.dir.display()))
            .output()
            .expect("smbclient (Debian package smbclient) must be installed");
        assert!(smbclient.status.success(), "{}", stderr(&smbclient));
        printed.push_str(&String::from_utf8_lossy(&smbclient.stdout));
        printed.push_str(&stderr(&smbclient));
        let rpcclient = std::process::Command::new("ip")
            .args(["netns", "exec", &self.client, "rpcclient", "-s"])
            .arg(&conf)
            .arg(&self.address)
            .args(["-U", "root%secret", "-c", "srvinfo"])
            .output()
            .unwrap();
        assert!(rpcclient.status.success(), "{}", stderr(&rpcclient));
        printed.push_str(&String::from_utf8_lossy(&rpcclient.stdout));
        printed.push_str(&stderr(&rpcclient));
        std::thread::sleep(std::time::Duration::from_millis(500));
        let _ = tcpdump.kill();
        let _ = tcpdump.wait();
        (capture, key_lines(&printed))
    }
}

impl Drop for Samba {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(self.dir.join("pid/smbd.pid")) {
            let _ = std::process::Command::new("kill").arg(pid.trim()).status();
        }
        for ns in [&self.server, &self.client] {
            let _ = std::process::Command::new("ip")
                .args(["netns", "delete", ns])
                .status();
        }
    }
}

/// Key file lines from Samba's `debug encryption` dumps: `Session Id`, `Session Key`,
/// `ServerIn Key` (what the client sends, C2S) and `ServerOut Key` (S2C), each a hex dump
/// of 16 bytes a line.
fn key_lines(printed: &str) -> String {
    let mut fields: Vec<(String, Vec<u8>)> = Vec::new();
    for line in printed.lines() {
        let Some(open) = line.find('[') else { continue };
        let Some(close) = line[open..].find(']') else {
            continue;
        };
        let label = line[..open].trim();
        let bytes: Vec<u8> = line[open + close + 1..]
            .split_whitespace()
            .take_while(|t| t.len() == 2 && u8::from_str_radix(t, 16).is_ok())
            .take(16)
            .map(|t| u8::from_str_radix(t, 16).unwrap())
            .collect();
        if label.is_empty() {
            if let Some(last) = fields.last_mut() {
                last.1.extend(bytes);
            }
        } else {
            fields.push((label.to_string(), bytes));
        }
    }
    let mut lines = String::new();
    let mut session: Vec<(String, Vec<u8>)> = Vec::new();
    for (label, bytes) in fields {
        session.push((label, bytes));
        let get = |name: &str| session.iter().find(|f| f.0 == name).map(|f| hex(&f.1));
        if let (Some(id), Some(key), Some(c2s), Some(s2c)) = (
            get("Session Id"),
            get("Session Key"),
            get("ServerIn Key"),
            get("ServerOut Key"),
        ) {
            lines.push_str(&format!("{id},{key},{s2c},{c2s}\n"));
            session.clear();
        }
    }
    lines
}

/// portscope's bytes per label with `--smb-keys`, named as `tshark_smb` names them.
fn labelled(capture: &Path, keys: &Path) -> std::collections::BTreeMap<String, u64> {
    let (report, _) = classify_json(&[
        "--smb-keys",
        keys.to_str().unwrap(),
        capture.to_str().unwrap(),
    ]);
    let mut bytes = std::collections::BTreeMap::new();
    for r in &report.services {
        if let Some(label) = super::smb::smb_label(r) {
            *bytes.entry(label).or_default() += r.bytes;
        }
    }
    bytes
}

#[test]
fn samba_sessions_of_every_cipher_read_with_the_keys_samba_printed() {
    for (n, cipher) in ["AES-128-CCM", "AES-128-GCM", "AES-256-CCM", "AES-256-GCM"]
        .into_iter()
        .enumerate()
    {
        let samba = Samba::start(u32::try_from(n).unwrap() + 1, cipher);
        let (capture, lines) = samba.sessions(cipher);
        assert_eq!(lines.lines().count(), 2, "{cipher}: {lines}");
        let keys = samba.dir.join("keys.txt");
        std::fs::write(&keys, &lines).unwrap();
        let ours = labelled(&capture, &keys);
        // Every encrypted message of both sessions was read: the share and the pipe have
        // their rows, nothing stays encrypted.
        assert!(!ours.contains_key("encrypted"), "{cipher}: {ours:?}");
        assert!(
            ours.get("share:disk").is_some_and(|&b| b > 0),
            "{cipher}: {ours:?}"
        );
        assert!(
            ours.get("pipe:srvsvc").is_some_and(|&b| b > 0),
            "{cipher}: {ours:?}"
        );
        eprintln!("{cipher}: {ours:?}");
        // The session keys alone give the same rows, through the negotiation.
        let alone = samba.dir.join("alone.txt");
        session_keys_alone(&keys, &alone);
        assert_eq!(labelled(&capture, &alone), ours, "{cipher}");
        // PORTSCOPE_KEEP_SAMBA=DIR keeps the capture and its keys (how fixtures/smb3/
        // was made).
        if let Some(keep) = std::env::var_os("PORTSCOPE_KEEP_SAMBA") {
            let keep = Path::new(&keep);
            let name = cipher.to_lowercase();
            std::fs::copy(&capture, keep.join(format!("samba-{name}.pcap"))).unwrap();
            std::fs::copy(&keys, keep.join(format!("samba-{name}.keys"))).unwrap();
        }
        // Without keys, the encrypted bytes are smb-encrypted.
        let (plain, _) = classify_json(&[capture.to_str().unwrap()]);
        assert!(
            plain.services.iter().any(|r| r.kind == "smb-encrypted"),
            "{cipher}"
        );
        assert!(
            plain.services.iter().all(|r| r.kind != "smb-pipe"),
            "{cipher}"
        );
        // tshark with the same keys (it decrypts the AES-128 ciphers): at least 95% of the
        // bytes it ties to a share or a pipe are in portscope's row for it, every pipe it
        // sees has a row, and it decrypts everything portscope did.
        if cipher.starts_with("AES-128") {
            let options: Vec<String> = lines
                .lines()
                .flat_map(|l| ["-o".to_string(), format!("uat:smb2_seskey_list:{l}")])
                .collect();
            let (theirs, _) = super::smb::tshark_smb_with(&capture, &options);
            let (mut total, mut agreed) = (0, 0);
            for (label, &b) in theirs
                .iter()
                .filter(|(l, _)| l.starts_with("pipe:") || l.starts_with("share:"))
            {
                total += b;
                agreed += b.min(ours.get(label).copied().unwrap_or(0));
                assert!(
                    ours.contains_key(label),
                    "{cipher}: tshark {theirs:?}, portscope {ours:?}"
                );
            }
            eprintln!("{cipher}: tshark ties {total} bytes to shares and pipes; portscope agrees on {agreed}; portscope {ours:?}");
            assert!(total > 0, "{cipher}: tshark {theirs:?}");
            assert!(
                agreed * 100 >= total * 95,
                "{cipher}: {agreed} of {total}; tshark {theirs:?}, portscope {ours:?}"
            );
            assert!(!theirs.contains_key("encrypted"), "{cipher}: {theirs:?}");
        }
        let dir = samba.dir.clone();
        drop(samba);
        std::fs::remove_dir_all(dir).ok();
    }
}

/// The committed Samba captures (`fixtures/smb3/`), without Samba: with their keys, the
/// share, the session and the pipe each have their exact row, the same for every cipher;
/// without, the 10,916 encrypted bytes are smb-encrypted (the rows add up to 16,080 bytes
/// either way).
#[test]
fn committed_samba_captures_read_with_their_keys() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/smb3");
    for cipher in ["aes-128-ccm", "aes-128-gcm", "aes-256-ccm", "aes-256-gcm"] {
        let capture = dir.join(format!("samba-{cipher}.pcap"));
        let keys = dir.join(format!("samba-{cipher}.keys"));
        let (report, _) = classify_json(&[
            "--smb-keys",
            keys.to_str().unwrap(),
            capture.to_str().unwrap(),
        ]);
        let rows: Vec<(String, Option<String>, u64, u64, u64)> = report
            .services
            .iter()
            .map(|r| {
                let what = r.pipe.clone().or(r.share_type.clone());
                (r.kind.clone(), what, r.flows, r.packets, r.bytes)
            })
            .collect();
        let row =
            |k: &str, w: Option<&str>, f, p, b| (k.to_string(), w.map(str::to_string), f, p, b);
        assert_eq!(
            rows,
            [
                row("smb-share", Some("disk"), 1, 25, 6120),
                row("smb-session", None, 2, 12, 3812),
                row("port", None, 2, 31, 3665),
                row("smb-pipe", Some("srvsvc"), 1, 9, 2483),
            ],
            "{cipher}"
        );
        assert_eq!(without_keys(&capture).0, 10_916, "{cipher}");
    }
}

/// A key file of the session keys alone of `keys` (no decryption keys).
fn session_keys_alone(keys: &Path, to: &Path) {
    let lines: String = std::fs::read_to_string(keys)
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            format!("{},{},\"\",\"\"\n", f[0], f[1])
        })
        .collect();
    std::fs::write(to, lines).unwrap();
}

/// A classic pcap without its frames numbered (from 1) in `drop`.
fn without_frames(pcap: &Path, drop: &[usize], to: &Path) {
    let bytes = std::fs::read(pcap).unwrap();
    let mut out = bytes[..24].to_vec();
    let (mut at, mut n) = (24, 0);
    while at + 16 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        n += 1;
        if !drop.contains(&n) {
            out.extend_from_slice(&bytes[at..at + 16 + len]);
        }
        at += 16 + len;
    }
    std::fs::write(to, out).unwrap();
}

/// The committed Samba captures hold SMB 3.1.1 sessions: from their session keys alone,
/// through the negotiation the capture shows, the report is the one their two keys give,
/// byte for byte, with one worker or two. Without the second SESSION_SETUP request (frame
/// 10, which the keys hash), the session's messages do not decrypt, and the report names
/// the session.
#[test]
fn smb311_sessions_read_with_their_session_keys_alone() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/smb3");
    let tmp = tmpdir("smb3-alone");
    for cipher in ["aes-128-ccm", "aes-128-gcm", "aes-256-ccm", "aes-256-gcm"] {
        let capture = dir.join(format!("samba-{cipher}.pcap"));
        let keys = dir.join(format!("samba-{cipher}.keys"));
        let alone = tmp.join(format!("{cipher}.keys"));
        session_keys_alone(&keys, &alone);
        let json = |keys: &Path, capture: &Path, threads: &str| {
            let out = run(&[
                "classify",
                "--format",
                "json",
                "--threads",
                threads,
                "--smb-keys",
                keys.to_str().unwrap(),
                capture.to_str().unwrap(),
            ]);
            assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
            String::from_utf8(out.stdout).unwrap()
        };
        let given = json(&keys, &capture, "1");
        assert!(!given.contains("smb-encrypted"), "{cipher}");
        assert_eq!(json(&alone, &capture, "1"), given, "{cipher}");
        assert_eq!(json(&alone, &capture, "2"), given, "{cipher}");
        let cut = tmp.join(format!("{cipher}-cut.pcap"));
        without_frames(&capture, &[10], &cut);
        let (report, _) =
            classify_json(&["--smb-keys", alone.to_str().unwrap(), cut.to_str().unwrap()]);
        let first = std::fs::read_to_string(&keys).unwrap();
        let id = u64::from_le_bytes(
            (0..8)
                .map(|i| u8::from_str_radix(&first[2 * i..2 * i + 2], 16).unwrap())
                .collect::<Vec<_>>()
                .try_into()
                .unwrap(),
        );
        let named: Vec<_> = report
            .smb_undecrypted
            .iter()
            .map(|u| u.session.clone())
            .collect();
        assert_eq!(named, [format!("{id:#018x}")], "{cipher}");
        assert!(report.smb_undecrypted[0].messages > 10, "{cipher}");
        // The other session still decrypts: its pipe keeps its row.
        assert!(
            report.services.iter().any(|r| r.kind == "smb-pipe"),
            "{cipher}"
        );
    }
    std::fs::remove_dir_all(&tmp).unwrap();
}
