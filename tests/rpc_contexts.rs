//! DCE/RPC connections context by context: a connection that binds one interface and
//! alters context to others (as a WMI session does: an activation interface, then
//! IWbemLevel1Login, then IWbemServices) puts each PDU in the row of its presentation
//! context's interface. The capture is generated; tshark, with TCP reassembly off, reads
//! each segment's PDU type, context id and bound UUIDs, and the test applies the rule
//! (a segment that continues a PDU goes with it) to tshark's fields.

use super::fixtures::{eth_ip, whole, Stream, A, B, NS, T0};
use super::util::{classify_json, tmpdir};
use portscope::catalog::parse_uuid;
use portscope::gen::{self, Record};
use portscope::inspect::rpc::{bind_contexts, co_pdu};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const ACTIVATOR: &str = "000001a0-0000-0000-c000-000000000046";
const LOGIN: &str = "f309ad18-d86a-11d0-a075-00c04fb68820";
const SERVICES: &str = "9556dc99-828c-11cf-a37e-00aa003240c7";
const PORT: u16 = 49670;

/// The capture: the handshake, a bind of the activation interface (context 0) and a call
/// on it, an alter context to IWbemLevel1Login (context 1) and a call, an alter context to
/// IWbemServices (context 2) and two calls whose 6,000-byte responses take five segments.
fn capture(dir: &Path) -> PathBuf {
    let uuid = |s| parse_uuid(s).unwrap();
    let mut records: Vec<Record> = Vec::new();
    let mut t = Stream::new((A, 50102), (B, PORT));
    let mut at = T0;
    let mut push = |side: usize, syn: bool, payload: &[u8]| {
        at += NS / 1000;
        records.push(whole(at, eth_ip(&t.segment(side, syn, payload))));
    };
    push(0, true, &[]);
    push(1, true, &[]);
    push(0, false, &bind_contexts(&[uuid(ACTIVATOR)], 0, 1, false));
    push(1, false, &co_pdu(12, 0, 1, 40));
    push(0, false, &co_pdu(0, 0, 2, 300));
    push(1, false, &co_pdu(2, 0, 2, 500));
    push(0, false, &bind_contexts(&[uuid(LOGIN)], 1, 3, true));
    push(1, false, &co_pdu(15, 0, 3, 40));
    push(0, false, &co_pdu(0, 1, 4, 200));
    push(1, false, &co_pdu(2, 1, 4, 120));
    push(0, false, &bind_contexts(&[uuid(SERVICES)], 2, 5, true));
    push(1, false, &co_pdu(15, 0, 5, 40));
    for call in [6, 7] {
        push(0, false, &co_pdu(0, 2, call, 700));
        for chunk in co_pdu(2, 2, call, 6000).chunks(1460) {
            push(1, false, chunk);
        }
    }
    // A bare acknowledgement: no PDU, the flow's own row.
    push(0, false, &[]);
    let path = dir.join("contexts.pcap");
    gen::write_pcap(&path, 1, false, records).unwrap();
    path
}

/// Bytes per interface UUID as tshark's fields say, by the rule: a PDU goes to its
/// context's interface (a bind or alter context to its first context's, its
/// acknowledgement with it); a segment with payload but no PDU header continues the last
/// PDU of its direction; a segment without payload goes to the first interface bound; a
/// response goes with its request's context (tshark shows no context id on responses).
fn tshark_bytes(capture: &Path) -> BTreeMap<String, (u64, u64)> {
    let out = Command::new("tshark")
        .args(["-n", "-r"])
        .arg(capture)
        .args([
            "-o",
            "tcp.desegment_tcp_streams:FALSE",
            "-d",
            &format!("tcp.port=={PORT},dcerpc"),
            "-T",
            "fields",
            "-E",
            "separator=/t",
            "-E",
            "occurrence=a",
            "-E",
            "aggregator=,",
            "-e",
            "frame.len",
            "-e",
            "tcp.srcport",
            "-e",
            "tcp.len",
            "-e",
            "dcerpc.pkt_type",
            "-e",
            "dcerpc.cn_ctx_id",
            "-e",
            "dcerpc.cn_bind_to_uuid",
            "-e",
            "dcerpc.cn_call_id",
        ])
        .output()
        .expect("tshark runs (apt-get install tshark)");
    assert!(out.status.success());
    let mut contexts: BTreeMap<String, String> = BTreeMap::new();
    let (mut first, mut binding) = (None::<String>, None::<String>);
    let mut current: [Option<String>; 2] = [None, None];
    let mut bytes: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut pending_bare = Vec::new();
    let mut calls: BTreeMap<String, String> = BTreeMap::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let (len, side, payload) = (
            f[0].parse::<u64>().unwrap(),
            usize::from(f[1] != "50102"),
            f[2].parse::<u64>().unwrap(),
        );
        let ptype = f.get(3).copied().unwrap_or("");
        let ctx = f.get(4).copied().unwrap_or("");
        let uuids = f.get(5).copied().unwrap_or("");
        let call = f.get(6).copied().unwrap_or("").to_string();
        // tshark gives a response no context id: it answers its request's call.
        let ctx = match ptype {
            "0" => {
                calls.insert(call, ctx.to_string());
                ctx.to_string()
            }
            "2" | "3" => calls.get(&call).cloned().unwrap_or_default(),
            _ => ctx.to_string(),
        };
        let ctx = ctx.as_str();
        let owner = match ptype {
            "" if payload == 0 => None,
            "" => current[side].clone(),
            "11" | "14" => {
                for (id, uuid) in ctx.split(',').zip(uuids.split(',')) {
                    contexts.insert(id.to_string(), uuid.to_string());
                }
                first.get_or_insert(uuids.split(',').next().unwrap().to_string());
                binding = contexts.get(ctx.split(',').next().unwrap()).cloned();
                binding.clone()
            }
            "12" | "15" => binding.clone(),
            _ => contexts.get(ctx).cloned(),
        };
        match owner {
            Some(uuid) => {
                current[side] = Some(uuid.clone());
                let e = bytes.entry(uuid).or_default();
                e.0 += 1;
                e.1 += len;
            }
            None => pending_bare.push(len),
        }
    }
    let e = bytes.entry(first.unwrap()).or_default();
    e.0 += pending_bare.len() as u64;
    e.1 += pending_bare.iter().sum::<u64>();
    bytes
}

#[test]
fn each_pdu_is_in_the_row_of_its_context() {
    let dir = tmpdir("rpc-contexts");
    let path = capture(&dir);
    let (r, out) = classify_json(&[path.to_str().unwrap()]);
    assert!(out.status.success());
    let ours: BTreeMap<String, (u64, u64)> = r
        .services
        .iter()
        .map(|row| {
            assert_eq!(
                (row.key(), row.kind.as_str()),
                (format!("tcp/{PORT}"), "rpc-bind")
            );
            (
                row.interface.as_ref().unwrap().uuid.clone(),
                (row.packets, row.bytes),
            )
        })
        .collect();
    let oracle = tshark_bytes(&path);
    assert_eq!(ours, oracle);
    // The numbers, for the record: most of the bytes are IWbemServices'.
    assert_eq!(oracle[SERVICES].0, 2 + 2 + 10);
    assert_eq!(r.services[0].interface.as_ref().unwrap().uuid, SERVICES);
    assert_eq!(
        r.services[0].interface.as_ref().unwrap().name.as_deref(),
        Some("IWbemServices")
    );
    // The flow counts once in each of its three rows.
    assert!(r.services.iter().all(|row| row.flows == 1));
    assert_eq!(r.flows, 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

const LSARPC: &str = "12345778-1234-abcd-ef00-0123456789ab";
const SAMR: &str = "12345778-1234-abcd-ef00-0123456789ac";

/// An SMB2 tree connect request for `path` (tshark learns from it that the tree is IPC$).
fn tree_connect_request(message: u64, path: &str) -> Vec<u8> {
    use portscope::inspect::smb::build::smb2;
    let mut m = smb2(0x03, false, message, Some(0));
    let utf16: Vec<u8> = path.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let mut body = vec![0u8; 8];
    body[0] = 9;
    body[4..6].copy_from_slice(&72u16.to_le_bytes());
    body[6..8].copy_from_slice(&(utf16.len() as u16).to_le_bytes());
    m.extend_from_slice(&body);
    m.extend_from_slice(&utf16);
    m
}

/// An SMB connection with one pipe, `\lsarpc`, as Windows uses one: a bind written to it
/// (LSARPC, context 0) and its acknowledgement read back, calls through FSCTL_PIPE_TRANSCEIVE,
/// an alter context to SAMR (context 1, as `\lsarpc` serves both), calls on both contexts,
/// a 3,000-byte response over three segments, and a call written and read back.
fn smb_capture(dir: &Path) -> PathBuf {
    use portscope::inspect::smb::build::*;
    let uuid = |s| parse_uuid(s).unwrap();
    let mut records: Vec<Record> = Vec::new();
    let mut t = Stream::new((A, 50200), (B, 445));
    let mut at = T0;
    let mut push = |side: usize, syn: bool, payload: &[u8]| {
        at += NS / 1000;
        records.push(whole(at, eth_ip(&t.segment(side, syn, payload))));
    };
    let (tree, file) = (5, 9);
    push(0, true, &[]);
    push(1, true, &[]);
    push(0, false, &session(&smb2_plain(0x00, false, 0, 36)));
    push(1, false, &session(&smb2_plain(0x00, true, 0, 64)));
    push(
        0,
        false,
        &session(&tree_connect_request(1, "\\\\srv\\IPC$")),
    );
    push(1, false, &session(&tree_connect_response(1, tree, 2)));
    push(0, false, &session(&create_request(2, tree, "lsarpc")));
    push(1, false, &session(&create_response(2, tree, file)));
    let bind = bind_contexts(&[uuid(LSARPC)], 0, 1, false);
    push(0, false, &session(&write_request(3, tree, file, &bind)));
    push(1, false, &session(&smb2_plain(0x09, true, 3, 16)));
    push(0, false, &session(&read_request(4, tree, file)));
    push(
        1,
        false,
        &session(&read_response(4, tree, &co_pdu(12, 0, 1, 40))),
    );
    let call = |m, ctx, call, body| transceive(m, tree, file, false, &co_pdu(0, ctx, call, body));
    let answer = |m, ctx, call, body| transceive(m, tree, file, true, &co_pdu(2, ctx, call, body));
    push(0, false, &session(&call(5, 0, 2, 300)));
    push(1, false, &session(&answer(5, 0, 2, 500)));
    let alter = bind_contexts(&[uuid(SAMR)], 1, 3, true);
    push(0, false, &session(&write_request(6, tree, file, &alter)));
    push(1, false, &session(&smb2_plain(0x09, true, 6, 16)));
    push(0, false, &session(&read_request(7, tree, file)));
    push(
        1,
        false,
        &session(&read_response(7, tree, &co_pdu(15, 0, 3, 40))),
    );
    push(0, false, &session(&call(8, 1, 4, 200)));
    for chunk in session(&answer(8, 1, 4, 3000)).chunks(1460) {
        push(1, false, chunk);
    }
    push(0, false, &session(&call(9, 0, 5, 100)));
    push(1, false, &session(&answer(9, 0, 5, 100)));
    push(
        0,
        false,
        &session(&write_request(10, tree, file, &co_pdu(0, 1, 6, 50))),
    );
    push(1, false, &session(&smb2_plain(0x09, true, 10, 16)));
    push(0, false, &session(&read_request(11, tree, file)));
    push(
        1,
        false,
        &session(&read_response(11, tree, &co_pdu(2, 1, 6, 800))),
    );
    push(0, false, &session(&close_request(12, tree, file)));
    push(1, false, &session(&smb2_plain(0x06, true, 12, 60)));
    push(0, false, &[]);
    let path = dir.join("pipe-contexts.pcap");
    gen::write_pcap(&path, 1, false, records).unwrap();
    path
}

/// Bytes per row of the SMB capture as tshark's fields say, by the rule: a message
/// carrying a PDU goes to its context's interface (a bind or alter context to its first
/// context's; a response PDU to its call's context: tshark shows none on responses); any
/// other message on the pipe (the create, reads, the close, write responses) with its
/// request, and a request with the pipe's first interface; the negotiation to the session
/// row; what is tied to no pipe (the tree connect to IPC$, bare acknowledgements) to the
/// port row; a segment without an SMB header continues the message before it.
fn tshark_pipe_bytes(capture: &Path) -> BTreeMap<String, (u64, u64)> {
    let out = Command::new("tshark")
        .args(["-n", "-r"])
        .arg(capture)
        .args([
            "-o",
            "tcp.desegment_tcp_streams:FALSE",
            "-o",
            "nbss.desegment_nbss_commands:FALSE",
        ])
        .args(["-T", "fields", "-E", "separator=/t", "-E", "occurrence=f"])
        .args([
            "-e",
            "frame.len",
            "-e",
            "tcp.srcport",
            "-e",
            "tcp.len",
            "-e",
            "smb2.cmd",
        ])
        .args([
            "-e",
            "smb2.flags.response",
            "-e",
            "smb2.msg_id",
            "-e",
            "dcerpc.pkt_type",
        ])
        .args([
            "-e",
            "dcerpc.cn_ctx_id",
            "-e",
            "dcerpc.cn_bind_to_uuid",
            "-e",
            "dcerpc.cn_call_id",
        ])
        .output()
        .expect("tshark runs (apt-get install tshark)");
    assert!(out.status.success());
    let mut contexts: BTreeMap<String, String> = BTreeMap::new();
    let mut calls: BTreeMap<String, String> = BTreeMap::new();
    let mut requests: BTreeMap<String, String> = BTreeMap::new();
    let mut first = None::<String>;
    let mut current: [String; 2] = [String::new(), String::new()];
    let mut bytes: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let field = |i: usize| f.get(i).copied().unwrap_or("");
        let (len, side, payload) = (
            field(0).parse::<u64>().unwrap(),
            usize::from(field(1) != "50200"),
            field(2).parse::<u64>().unwrap(),
        );
        let (cmd, response, msg) = (field(3), field(4) == "1" || field(4) == "True", field(5));
        let (ptype, ctx, uuid, call) = (field(6), field(7), field(8), field(9));
        let owner = match (cmd, ptype) {
            _ if payload == 0 => "port".to_string(),
            ("", _) => current[side].clone(),
            ("0", _) => "session".to_string(),
            ("3", _) => "port".to_string(),
            (_, "11" | "14") => {
                contexts.insert(ctx.to_string(), uuid.to_string());
                first.get_or_insert(uuid.to_string());
                uuid.to_string()
            }
            (_, "0") => {
                calls.insert(call.to_string(), ctx.to_string());
                contexts[ctx].clone()
            }
            (_, "2") => contexts[&calls[call]].clone(),
            _ if response => requests[msg].clone(),
            _ => "pipe".to_string(),
        };
        if !response && !msg.is_empty() {
            requests.insert(msg.to_string(), owner.clone());
        }
        current[side] = owner.clone();
        let e = bytes.entry(owner).or_default();
        e.0 += 1;
        e.1 += len;
    }
    // The pipe's own part is its first interface's.
    if let Some(pipe) = bytes.remove("pipe") {
        let e = bytes.entry(first.unwrap()).or_default();
        e.0 += pipe.0;
        e.1 += pipe.1;
    }
    bytes
}

#[test]
fn pdus_on_an_smb_pipe_go_to_the_row_of_their_context() {
    let dir = tmpdir("pipe-contexts");
    let path = smb_capture(&dir);
    let (r, out) = classify_json(&[path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", super::util::stderr(&out));
    let ours: BTreeMap<String, (u64, u64)> = r
        .services
        .iter()
        .filter(|row| row.packets > 0)
        .map(|row| {
            let key = match row.kind.as_str() {
                "smb-pipe" => {
                    assert_eq!(row.pipe.as_deref(), Some("lsarpc"));
                    row.interface.as_ref().unwrap().uuid.clone()
                }
                "smb-session" => "session".to_string(),
                "port" => "port".to_string(),
                other => panic!("row {other}"),
            };
            (key, (row.packets, row.bytes))
        })
        .collect();
    let oracle = tshark_pipe_bytes(&path);
    assert_eq!(ours, oracle);
    // The numbers, for the record: SAMR's row has the alter context and its write
    // response, the call with its three-segment response, the call written, its write
    // response, and the response read back (its read request goes with the pipe).
    assert_eq!(oracle[SAMR].0, 2 + 4 + 2 + 1);
    assert_eq!(oracle[LSARPC].0, 15);
    assert_eq!(r.flows, 1);
    std::fs::remove_dir_all(&dir).unwrap();
}
