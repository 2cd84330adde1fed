//! The generated fixtures: how each is built, and a test that the committed files are exactly
//! what this code builds (`PORTSCOPE_BLESS=1 cargo test fixtures` rewrites them).

use etherparse::{IpNumber, Ipv4Header, PacketBuilder};
use portscope::gen::{self, Record};
use std::path::{Path, PathBuf};

pub const NS: u64 = 1_000_000_000;
pub const T0: u64 = 1_700_000_000 * NS;

/// Tunnel endpoints.
const T1: [u8; 4] = [192, 0, 2, 1];
const T2: [u8; 4] = [192, 0, 2, 2];

/// One packet through each tunnel portscope decodes (see `tests/dynamic.rs` for the rows).
fn tunnels() -> Fixture {
    let gre = |flags: [u8; 2], proto: [u8; 2], extra: &[u8], inner: &[u8]| {
        let mut g = flags.to_vec();
        g.extend_from_slice(&proto);
        g.extend_from_slice(extra);
        g.extend_from_slice(inner);
        eth_ip(&ip4_raw(T1, T2, 47, &g))
    };
    let ppp = |ip: &[u8]| {
        let mut p = vec![0xff, 0x03, 0x00, 0x21];
        p.extend_from_slice(ip);
        p
    };
    let mut frames = vec![
        // GRE carrying IPv4: an SMB connection, three packets.
        gre([0, 0], [0x08, 0x00], &[], &tcp4(A, 50010, B, 445, true, 0)),
        gre([0, 0], [0x08, 0x00], &[], &tcp4(B, 445, A, 50010, true, 0)),
        gre(
            [0, 0],
            [0x08, 0x00],
            &[],
            &tcp4(A, 50010, B, 445, false, 100),
        ),
        // PPTP: the control connection, then its enhanced GRE with PPP, and an
        // acknowledgment-only GRE packet with no PPP frame.
        eth_ip(&tcp4(T1, 40000, T2, 1723, true, 0)),
        gre(
            [0x30, 0x01],
            [0x88, 0x0b],
            &[0, 32, 0, 1, 0, 0, 0, 1],
            &ppp(&udp4(A, 53000, C, 53, 4)),
        ),
        gre([0x20, 0x81], [0x88, 0x0b], &[0, 0, 0, 1, 0, 0, 0, 1], &[]),
    ];
    // ERSPAN type II: GRE with a sequence number, 8 bytes of ERSPAN, the mirrored frame.
    let mut erspan = vec![0, 0, 0, 1, 0x10, 0, 0, 1, 0, 0, 0, 0];
    erspan.extend_from_slice(&eth_ip(&tcp4(A, 50020, B, 3389, true, 0)));
    frames.push(gre([0x10, 0], [0x88, 0xbe], &[], &erspan));
    // VXLAN to UDP 4789.
    let mut vxlan = vec![0x08, 0, 0, 0, 0, 0, 1, 0];
    vxlan.extend_from_slice(&eth_ip(&udp4(A, 137, B, 137, 20)));
    frames.push(eth_ip(&udp4_with(T1, 40001, T2, 4789, &vxlan)));
    // L2TP: a data message with PPP, and a control message.
    let mut l2tp = vec![0x40, 0x02, 0, 0, 0, 1, 0, 1];
    l2tp.extend_from_slice(&ppp(&tcp4(A, 50040, B, 1433, true, 0)));
    let len = u16::try_from(l2tp.len()).unwrap().to_be_bytes();
    l2tp[2..4].copy_from_slice(&len);
    frames.push(eth_ip(&udp4_with(T1, 1701, T2, 1701, &l2tp)));
    frames.push(eth_ip(&udp4_with(
        T2,
        1701,
        T1,
        1701,
        &[0xc8, 0x02, 0, 12, 0, 1, 0, 0, 0, 0, 0, 0],
    )));
    // IP-in-IP (an unclassified inner flow) and IPv6-in-IPv4.
    frames.push(eth_ip(&ip4_raw(T1, T2, 4, &tcp4(A, 50050, B, 22, true, 0))));
    frames.push(eth_ip(&ip4_raw(T1, T2, 41, &udp6(A6, 53001, B6, 53, 10))));
    // AH in transport mode: 24 bytes of AH, then the TCP header it protects.
    let mut ah = vec![6, 4, 0, 0, 0, 0, 0x10, 0x01, 0, 0, 0, 1];
    ah.extend_from_slice(&[0; 12]);
    ah.extend_from_slice(&tcp4(T1, 50060, T2, 445, true, 0)[20..]);
    frames.push(eth_ip(&ip4_raw(T1, T2, 51, &ah)));
    Fixture {
        name: "tunnels.pcap",
        dlt: 1,
        nano: false,
        records: timed(frames),
    }
}

/// Aruba's GRE mirroring of 802.11 traffic (GRE protocol types 0x8200 to 0x8370): data
/// frames carrying DNS and SMB, a QoS data frame from the AP, then what carries no IP: a
/// protected frame, a beacon, and GRE 0x9000 (Aruba, not 802.11).
fn aruba_gre() -> Fixture {
    // An 802.11 frame: frame control, duration, three addresses, sequence control, the
    // QoS control for QoS data, LLC/SNAP for IPv4, the packet.
    let wlan = |fc: [u8; 2], ip: &[u8]| {
        let mut f = vec![fc[0], fc[1], 0, 0];
        f.extend_from_slice(&[0x00, 0x0b, 0x86, 0, 0, 1]);
        f.extend_from_slice(&[0x00, 0x50, 0x56, 0, 0, 2]);
        f.extend_from_slice(&[0x00, 0x0b, 0x86, 0, 0, 3]);
        f.extend_from_slice(&[0x10, 0x00]);
        if fc[0] & 0x80 != 0 {
            f.extend_from_slice(&[0, 0]);
        }
        f.extend_from_slice(&[0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00]);
        f.extend_from_slice(ip);
        f
    };
    let gre = |proto: u16, inner: &[u8]| {
        let mut g = vec![0, 0];
        g.extend_from_slice(&proto.to_be_bytes());
        g.extend_from_slice(inner);
        // The access point and its controller: a tunnel of its own (no flow shared with
        // tunnels.pcap, so their reports add up).
        eth_ip(&ip4_raw([192, 0, 2, 11], [192, 0, 2, 12], 47, &g))
    };
    let frames = vec![
        gre(0x8200, &wlan([0x08, 0x01], &udp4(A, 53010, C, 53, 30))),
        gre(0x8200, &wlan([0x08, 0x02], &udp4(C, 53, A, 53010, 60))),
        gre(
            0x8210,
            &wlan([0x88, 0x01], &tcp4(A, 50080, B, 445, true, 0)),
        ),
        gre(
            0x8370,
            &wlan([0x88, 0x02], &tcp4(B, 445, A, 50080, true, 0)),
        ),
        gre(0x8200, &wlan([0x08, 0x41], &[0x5a; 40])),
        gre(0x8200, &wlan([0x80, 0x00], &[0; 12])),
        gre(0x9000, &[0x5a; 24]),
    ];
    Fixture {
        name: "aruba_gre.pcap",
        dlt: 1,
        nano: false,
        records: timed(frames),
    }
}

/// Dynamic ports: the endpoint mapper, FTP (passive, extended passive, active), TFTP,
/// with an announcement that comes too late, one never used and one that expires.
fn dynamic() -> Fixture {
    use portscope::announce::{map_response_pdu, tower};
    let uuid = |s: &str| portscope::catalog::parse_uuid(s).unwrap();
    let drsuapi = uuid("e3514235-4b06-11d1-ab04-00c04fc2dcd2");
    let netlogon = uuid("12345678-1234-abcd-ef00-01234567cffb");
    let mut at = T0;
    let mut records = Vec::new();
    let mut push = |gap_s: u64, ip: Vec<u8>| {
        at += gap_s * NS;
        records.push(whole(at, eth_ip(&ip)));
    };
    // Answers on the endpoint mapper connection, and FTP replies on the control connection.
    let epm = |uuid, port, at| {
        tcp4_with(
            B,
            135,
            A,
            50100,
            false,
            &map_response_pdu(&[tower(uuid, port, at)]),
        )
    };
    let ftp = |text: &[u8]| tcp4_with(C, 21, A, 50200, false, text);
    // EPM: A asks B where DRSUAPI is; B answers TCP 49667 at its own address.
    push(1, tcp4(A, 50100, B, 135, true, 0));
    push(0, tcp4(B, 135, A, 50100, true, 0));
    push(
        0,
        tcp4_with(A, 50100, B, 135, false, &[5, 0, 0, 3, 0x10, 0, 0, 0]),
    );
    push(0, epm(drsuapi, 49667, B));
    push(1, tcp4(A, 50101, B, 49667, true, 0));
    push(0, tcp4(B, 49667, A, 50101, true, 0));
    push(0, tcp4(A, 50101, B, 49667, false, 200));
    // A flow to 49670 starts before the endpoint mapper names it (NETLOGON, at 0.0.0.0):
    // it keeps its range label; a later connection takes the announced one.
    push(1, tcp4(A, 50102, B, 49670, true, 0));
    push(0, epm(netlogon, 49670, [0; 4]));
    push(0, tcp4(A, 50102, B, 49670, false, 50));
    push(1, tcp4(A, 50103, B, 49670, true, 0));
    // An unannounced high port stays a range match.
    push(1, tcp4(A, 50104, B, 49668, true, 0));
    // FTP: passive, extended passive, active; and a passive reply nobody uses.
    push(1, tcp4(A, 50200, C, 21, true, 0));
    push(0, ftp(b"227 Entering Passive Mode (10,1,1,3,195,80).\r\n"));
    push(0, tcp4(A, 50201, C, 50000, true, 0));
    push(0, tcp4(C, 50000, A, 50201, false, 500));
    push(1, ftp(b"229 Entering Extended Passive Mode (|||6446|)\r\n"));
    push(0, tcp4(A, 50202, C, 6446, true, 0));
    push(
        1,
        tcp4_with(A, 50200, C, 21, false, b"PORT 10,1,1,1,7,208\r\n"),
    );
    push(0, tcp4(C, 20, A, 2000, true, 0));
    push(1, ftp(b"227 Entering Passive Mode (10,1,1,3,200,1)\r\n"));
    // TFTP: a read request, then the server's answer from a new port, and the ack.
    push(
        1,
        udp4_with(A, 50300, C, 69, b"\x00\x01boot.bin\x00octet\x00"),
    );
    push(0, udp4(C, 61000, A, 50300, 516));
    push(0, udp4(A, 50300, C, 61000, 4));
    // A second request whose answer comes after the announcement expired (60 s).
    push(
        1,
        udp4_with(A, 50301, C, 69, b"\x00\x01late.bin\x00octet\x00"),
    );
    push(120, udp4(C, 61001, A, 50301, 516));
    Fixture {
        name: "dynamic.pcap",
        dlt: 1,
        nano: false,
        records,
    }
}

/// Endpoint mapper answers for an interface no table knows, on two ports: their connections
/// are `epm` rows named by the UUID (see `tests/dynamic.rs`). Its ports are its own, so its
/// flows are no other fixture's (`tests/merge.rs` adds reports up).
fn epm_unknown() -> Fixture {
    use portscope::announce::{map_response_pdu, tower};
    let unknown = portscope::catalog::parse_uuid("0a0b0c0d-1111-2222-3333-445566778899").unwrap();
    let mut at = T0;
    let mut records = Vec::new();
    let mut push = |gap_s: u64, ip: Vec<u8>| {
        at += gap_s * NS;
        records.push(whole(at, eth_ip(&ip)));
    };
    let epm = |port| {
        tcp4_with(
            B,
            135,
            A,
            50110,
            false,
            &map_response_pdu(&[tower(unknown, port, B)]),
        )
    };
    push(1, tcp4(A, 50110, B, 135, true, 0));
    push(0, epm(49710));
    push(0, epm(49711));
    push(1, tcp4(A, 50111, B, 49710, true, 0));
    push(0, tcp4(B, 49710, A, 50111, true, 0));
    push(0, tcp4(A, 50111, B, 49710, false, 200));
    push(1, tcp4(A, 50112, B, 49711, true, 0));
    Fixture {
        name: "epm-unknown.pcap",
        dlt: 1,
        nano: false,
        records,
    }
}

/// DCE/RPC connections named by their binds (see `tests/rpc.rs` for the rows).
fn rpc() -> Fixture {
    use portscope::announce::{map_response_pdu, tower};
    use portscope::inspect::rpc::{bind_pdu, cl_request};
    let uuid = |s: &str| portscope::catalog::parse_uuid(s).unwrap();
    let samr = uuid("12345778-1234-abcd-ef00-0123456789ac");
    let epmapper = uuid("e1af8308-5d1f-11c9-91a4-08002b14a0fa");
    let netlogon = uuid("12345678-1234-abcd-ef00-01234567cffb");
    let lsarpc = uuid("12345778-1234-abcd-ef00-0123456789ab");
    let unknown = uuid("01234567-89ab-cdef-0123-456789abcdef");
    let mut at = T0;
    let mut records = Vec::new();
    let mut push = |gap_s: u64, ip: Vec<u8>| {
        at += gap_s * NS;
        records.push(whole(at, eth_ip(&ip)));
    };
    // SAMR on a dynamic port: the handshake, the bind, its ack and a call, five packets.
    push(1, tcp4(A, 50400, B, 49667, true, 0));
    push(0, tcp4(B, 49667, A, 50400, true, 0));
    push(
        0,
        tcp4_with(A, 50400, B, 49667, false, &bind_pdu(samr, false)),
    );
    push(0, tcp4(B, 49667, A, 50400, false, 100));
    push(0, tcp4(A, 50400, B, 49667, false, 300));
    // A bind to the endpoint mapper itself, on TCP 135.
    push(1, tcp4(A, 50401, B, 135, true, 0));
    push(
        0,
        tcp4_with(A, 50401, B, 135, false, &bind_pdu(epmapper, false)),
    );
    push(0, tcp4(B, 135, A, 50401, false, 80));
    // An alter context first (NETLOGON); a later bind (LSARPC) does not move the connection
    // again: evidence refines a flow once.
    push(1, tcp4(A, 50402, B, 49668, true, 0));
    push(
        0,
        tcp4_with(A, 50402, B, 49668, false, &bind_pdu(netlogon, true)),
    );
    push(
        0,
        tcp4_with(A, 50402, B, 49668, false, &bind_pdu(lsarpc, false)),
    );
    // An interface no table knows.
    push(1, tcp4(A, 50403, B, 49669, true, 0));
    push(
        0,
        tcp4_with(A, 50403, B, 49669, false, &bind_pdu(unknown, false)),
    );
    // The endpoint mapper announces LSARPC on 49670; the connection there binds LSARPC and
    // keeps its announced label.
    let answer = map_response_pdu(&[tower(lsarpc, 49670, B)]);
    push(1, tcp4_with(B, 135, A, 50401, false, &answer));
    push(0, tcp4(A, 50404, B, 49670, true, 0));
    push(
        0,
        tcp4_with(A, 50404, B, 49670, false, &bind_pdu(lsarpc, false)),
    );
    // DCE/RPC over UDP: a connectionless request for NETLOGON and its response.
    push(1, udp4_with(A, 50405, B, 1030, &cl_request(netlogon, 16)));
    let mut response = cl_request(netlogon, 8);
    response[1] = 2;
    push(0, udp4_with(B, 1030, A, 50405, &response));
    // Not a bind (too short for one context): the connection stays a range match.
    push(1, tcp4(A, 50406, B, 49671, true, 0));
    push(
        0,
        tcp4_with(
            A,
            50406,
            B,
            49671,
            false,
            &[5, 0, 11, 3, 0x10, 0, 0, 0, 20, 0],
        ),
    );
    Fixture {
        name: "rpc.pcap",
        dlt: 1,
        nano: false,
        records,
    }
}

/// One TCP connection with real sequence numbers, for payload that is read as a stream.
pub struct Stream {
    ends: [([u8; 4], u16); 2],
    seq: [u32; 2],
}

impl Stream {
    pub fn new(client: ([u8; 4], u16), server: ([u8; 4], u16)) -> Stream {
        Stream {
            ends: [client, server],
            seq: [1_000, 7_000_000],
        }
    }

    /// A segment from the client (`side` 0) or the server carrying `payload`.
    pub fn segment(&mut self, side: usize, syn: bool, payload: &[u8]) -> Vec<u8> {
        let ((src, sport), (dst, dport)) = (self.ends[side], self.ends[1 - side]);
        let mut b = PacketBuilder::ipv4(src, dst, 64).tcp(sport, dport, self.seq[side], 8000);
        b = if syn && side == 0 {
            b.syn()
        } else if syn {
            b.syn().ack(self.seq[0])
        } else {
            b.ack(self.seq[1 - side])
        };
        let mut out = Vec::new();
        b.write(&mut out, payload).unwrap();
        self.seq[side] = self.seq[side].wrapping_add(payload.len() as u32 + u32::from(syn));
        out
    }

    /// Bytes the capture did not see.
    fn lose(&mut self, side: usize, n: u32) {
        self.seq[side] = self.seq[side].wrapping_add(n);
    }
}

/// SMB connections split by the trees and pipes their messages address (see `tests/smb.rs`
/// for the rows).
fn smb() -> Fixture {
    use portscope::inspect::rpc::bind_pdu;
    use portscope::inspect::smb::build::*;
    let uuid = |s: &str| portscope::catalog::parse_uuid(s).unwrap();
    let samr = uuid("12345778-1234-abcd-ef00-0123456789ac");
    let lsarpc = uuid("12345778-1234-abcd-ef00-0123456789ab");
    let unknown = uuid("01234567-89ab-cdef-0123-456789abcdef");
    let mut at = T0;
    let mut records = Vec::new();
    let mut push = |frame: Vec<u8>| {
        at += NS / 100;
        records.push(whole(at, eth_ip(&frame)));
    };
    let (c, s) = (0, 1);

    // SMB2 on TCP 445: two pipes with binds, a pipe no table knows, a disk share.
    let mut t = Stream::new((A, 50500), (B, 445));
    push(t.segment(c, true, &[]));
    push(t.segment(s, true, &[]));
    push(t.segment(c, false, &session(&smb2_plain(0, false, 0, 36))));
    push(t.segment(s, false, &session(&smb2_plain(0, true, 0, 64))));
    push(t.segment(c, false, &session(&smb2_plain(3, false, 1, 24))));
    push(t.segment(s, false, &session(&tree_connect_response(1, 1, 2))));
    push(t.segment(c, false, &session(&create_request(2, 1, "samr"))));
    push(t.segment(s, false, &session(&create_response(2, 1, 11))));
    let bind = bind_pdu(samr, false);
    push(t.segment(c, false, &session(&write_request(3, 1, 11, &bind))));
    push(t.segment(s, false, &session(&smb2_plain(9, true, 3, 16))));
    push(t.segment(c, false, &session(&create_request(4, 1, "spoolss"))));
    push(t.segment(s, false, &session(&create_response(4, 1, 12))));
    let bind = bind_pdu(unknown, false);
    push(t.segment(c, false, &session(&write_request(5, 1, 12, &bind))));
    push(t.segment(c, false, &session(&create_request(6, 1, "PSEXESVC"))));
    push(t.segment(s, false, &session(&create_response(6, 1, 13))));
    push(t.segment(c, false, &session(&read_request(7, 1, 13))));
    // A disk share, and a READ whose data spans three segments.
    push(t.segment(c, false, &session(&smb2_plain(3, false, 8, 24))));
    push(t.segment(s, false, &session(&tree_connect_response(8, 2, 1))));
    push(t.segment(c, false, &session(&read_request(9, 2, 99))));
    let read = |message: u64| {
        let mut m = read_response_header(message, 2);
        m.resize(m.len() + 3000, 0x33);
        session(&m)
    };
    let data = read(9);
    push(t.segment(s, false, &data[..1400]));
    push(t.segment(s, false, &data[1400..2800]));
    push(t.segment(s, false, &data[2800..]));
    // A gap inside a message: the segment after it still belongs to the message, whose
    // length says where it ends.
    push(t.segment(c, false, &session(&read_request(10, 2, 99))));
    let data = read(10);
    push(t.segment(s, false, &data[..1400]));
    t.lose(s, 1400);
    push(t.segment(s, false, &data[2800..]));
    // A gap across a message's start: the segment after it cannot be placed (port row),
    // and the next response is found again at its header.
    push(t.segment(c, false, &session(&read_request(11, 2, 99))));
    t.lose(s, 2800);
    push(t.segment(s, false, &read(11)[2800..]));
    push(t.segment(c, false, &session(&read_request(12, 2, 99))));
    let data = read(12);
    push(t.segment(s, false, &data[..1400]));
    push(t.segment(s, false, &data[1400..]));
    push(t.segment(c, false, &[]));

    // SMB1 over the NetBIOS session service: a pipe with a bind, and a print share.
    let mut t = Stream::new((A, 50501), (B, 139));
    push(t.segment(c, true, &[]));
    push(t.segment(s, true, &[]));
    let mut request = vec![0x81, 0, 0, 68];
    request.resize(72, 0x20);
    push(t.segment(c, false, &request));
    push(t.segment(s, false, &[0x82, 0, 0, 0]));
    push(t.segment(
        c,
        false,
        &session(&smb1(0x72, false, 0, 1, &[], b"\x02NT LM 0.12\0")),
    ));
    push(t.segment(s, false, &session(&smb1(0x72, true, 0, 1, &[0; 34], &[]))));
    push(t.segment(
        c,
        false,
        &session(&smb1(
            0x75,
            false,
            0,
            2,
            &[0xff, 0, 0, 0, 0, 0, 0, 0],
            b"\\\\B\\IPC$\0?????\0",
        )),
    ));
    push(t.segment(
        s,
        false,
        &session(&smb1_tree_connect_response(2048, 2, "IPC")),
    ));
    push(t.segment(
        c,
        false,
        &session(&smb1_create_request(2048, 3, "\\lsarpc")),
    ));
    push(t.segment(s, false, &session(&smb1_create_response(2048, 3, 0x4000))));
    let bind = bind_pdu(lsarpc, false);
    push(t.segment(
        c,
        false,
        &session(&smb1_write_request(2048, 4, 0x4000, &bind)),
    ));
    push(t.segment(
        s,
        false,
        &session(&smb1(0x2f, true, 2048, 4, &[0; 12], &[])),
    ));
    push(t.segment(
        s,
        false,
        &session(&smb1_tree_connect_response(2049, 5, "LPT1:")),
    ));
    push(t.segment(
        c,
        false,
        &session(&smb1_write_request(2049, 6, 7, &[0x25; 600])),
    ));
    push(t.segment(
        s,
        false,
        &session(&smb1(0x2f, true, 2049, 6, &[0; 12], &[])),
    ));

    // SMB3 with encryption: after the negotiation, nothing can be read.
    let mut t = Stream::new((A, 50502), (B, 445));
    push(t.segment(c, true, &[]));
    push(t.segment(s, true, &[]));
    push(t.segment(c, false, &session(&smb2_plain(0, false, 0, 36))));
    push(t.segment(s, false, &session(&smb2_plain(0, true, 0, 64))));
    push(t.segment(c, false, &session(&transform(200))));
    push(t.segment(s, false, &session(&transform(900))));
    push(t.segment(c, false, &session(&transform(100))));
    Fixture {
        name: "smb.pcap",
        dlt: 1,
        nano: false,
        records,
    }
}

/// One generated fixture: file name, DLT, nanosecond timestamps, records.
pub struct Fixture {
    pub name: &'static str,
    pub dlt: i32,
    pub nano: bool,
    pub records: Vec<Record>,
}

pub fn whole(ts: u64, frame: Vec<u8>) -> Record {
    (ts, u32::try_from(frame.len()).unwrap(), frame)
}

fn tcp4(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, syn: bool, payload: usize) -> Vec<u8> {
    let mut b = PacketBuilder::ipv4(src, dst, 64).tcp(sport, dport, 1, 1000);
    b = if syn { b.syn() } else { b.ack(1) };
    let mut out = Vec::new();
    b.write(&mut out, &vec![0x41; payload]).unwrap();
    out
}

/// A TCP segment with the given payload bytes (`syn`: a SYN, else an ACK).
fn tcp4_with(
    src: [u8; 4],
    sport: u16,
    dst: [u8; 4],
    dport: u16,
    syn: bool,
    payload: &[u8],
) -> Vec<u8> {
    let mut b = PacketBuilder::ipv4(src, dst, 64).tcp(sport, dport, 1, 1000);
    b = if syn { b.syn() } else { b.ack(1) };
    let mut out = Vec::new();
    b.write(&mut out, payload).unwrap();
    out
}

fn udp4_with(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ipv4(src, dst, 64)
        .udp(sport, dport)
        .write(&mut out, payload)
        .unwrap();
    out
}

fn udp4(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, payload: usize) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ipv4(src, dst, 64)
        .udp(sport, dport)
        .write(&mut out, &vec![0x42; payload])
        .unwrap();
    out
}

fn udp6(src: [u8; 16], sport: u16, dst: [u8; 16], dport: u16, payload: usize) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ipv6(src, dst, 64)
        .udp(sport, dport)
        .write(&mut out, &vec![0x43; payload])
        .unwrap();
    out
}

fn icmp4(src: [u8; 4], dst: [u8; 4], reply: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let b = PacketBuilder::ipv4(src, dst, 64);
    if reply {
        b.icmpv4_echo_reply(7, 1).write(&mut out, &[0; 32]).unwrap();
    } else {
        b.icmpv4_echo_request(7, 1)
            .write(&mut out, &[0; 32])
            .unwrap();
    }
    out
}

fn ip4_raw(src: [u8; 4], dst: [u8; 4], proto: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ipv4(src, dst, 64)
        .write(&mut out, IpNumber(proto), payload)
        .unwrap();
    out
}

fn ip6_raw(src: [u8; 16], dst: [u8; 16], proto: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ipv6(src, dst, 64)
        .write(&mut out, IpNumber(proto), payload)
        .unwrap();
    out
}

fn eth(ethertype: [u8; 2], rest: &[u8]) -> Vec<u8> {
    let mut f = vec![0, 0x50, 0x56, 0, 0, 2, 0, 0x50, 0x56, 0, 0, 1];
    f.extend_from_slice(&ethertype);
    f.extend_from_slice(rest);
    f
}

pub fn eth_ip(ip: &[u8]) -> Vec<u8> {
    let et = if ip[0] >> 4 == 6 {
        [0x86, 0xdd]
    } else {
        [0x08, 0x00]
    };
    eth(et, ip)
}

pub const A: [u8; 4] = [10, 1, 1, 1];
pub const B: [u8; 4] = [10, 1, 1, 2];
const C: [u8; 4] = [10, 1, 1, 3];
const A6: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const B6: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

/// The same small conversation as bare IP packets, to wrap in each link type:
/// tcp/445 (4 packets, 1 flow), udp/137 (1), icmp (2), tcp/49152-65535 (2), udp/53 over IPv6
/// (2), unclassified tcp/22 (1).
fn conversation() -> Vec<Vec<u8>> {
    vec![
        tcp4(A, 50000, B, 445, true, 0),
        tcp4(B, 445, A, 50000, true, 0),
        tcp4(A, 50000, B, 445, false, 0),
        tcp4(A, 50000, B, 445, false, 200),
        udp4(A, 137, [10, 1, 1, 255], 137, 50),
        icmp4(A, B, false),
        icmp4(B, A, true),
        tcp4(A, 50001, B, 49700, true, 0),
        tcp4(B, 49700, A, 50001, false, 0),
        udp6(A6, 53001, B6, 53, 30),
        udp6(B6, 53, A6, 53001, 90),
        tcp4(A, 50002, C, 22, true, 0),
    ]
}

fn timed(frames: Vec<Vec<u8>>) -> Vec<Record> {
    frames
        .into_iter()
        .enumerate()
        .map(|(i, f)| whole(T0 + i as u64 * 1_000_000, f))
        .collect()
}

fn wrap(ip: &[u8], header: impl Fn(bool) -> Vec<u8>) -> Vec<u8> {
    let mut f = header(ip[0] >> 4 == 6);
    f.extend_from_slice(ip);
    f
}

fn link_fixtures() -> Vec<Fixture> {
    let conv = conversation();
    let each = |h: &dyn Fn(bool) -> Vec<u8>| -> Vec<Record> {
        timed(conv.iter().map(|ip| wrap(ip, h)).collect())
    };
    let sll = |v6: bool| {
        let mut h = vec![0, 0, 0, 1, 0, 6, 0, 0x50, 0x56, 0, 0, 1, 0, 0];
        h.extend_from_slice(if v6 { &[0x86, 0xdd] } else { &[0x08, 0x00] });
        h
    };
    let sll2 = |v6: bool| {
        let mut h = if v6 {
            vec![0x86, 0xdd]
        } else {
            vec![0x08, 0x00]
        };
        h.extend_from_slice(&[0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 0, 0x50, 0x56, 0, 0, 1, 0, 0]);
        h
    };
    // BSD loopback: the address family in the writer's byte order (little-endian here,
    // 30 being macOS's AF_INET6); OpenBSD's LOOP: big-endian.
    let null = |v6: bool| {
        if v6 {
            vec![30, 0, 0, 0]
        } else {
            vec![2, 0, 0, 0]
        }
    };
    let lo = |v6: bool| {
        if v6 {
            vec![0, 0, 0, 24]
        } else {
            vec![0, 0, 0, 2]
        }
    };
    let v4_only: Vec<Vec<u8>> = conv.iter().filter(|p| p[0] >> 4 == 4).cloned().collect();
    let v6_only: Vec<Vec<u8>> = conv.iter().filter(|p| p[0] >> 4 == 6).cloned().collect();
    vec![
        Fixture {
            name: "link_ethernet.pcap",
            dlt: 1,
            nano: false,
            records: timed(conv.iter().map(|p| eth_ip(p)).collect()),
        },
        Fixture {
            name: "link_sll.pcap",
            dlt: 113,
            nano: false,
            records: each(&sll),
        },
        Fixture {
            name: "link_sll2.pcap",
            dlt: 276,
            nano: false,
            records: each(&sll2),
        },
        Fixture {
            name: "link_null.pcap",
            dlt: 0,
            nano: false,
            records: each(&null),
        },
        Fixture {
            name: "link_loop.pcap",
            dlt: 108,
            nano: false,
            records: each(&lo),
        },
        // DLT_RAW (12) is written to the file as LINKTYPE_RAW (101).
        Fixture {
            name: "link_raw.pcap",
            dlt: 12,
            nano: false,
            records: timed(conv.clone()),
        },
        Fixture {
            name: "link_ipv4.pcap",
            dlt: 228,
            nano: false,
            records: timed(v4_only),
        },
        Fixture {
            name: "link_ipv6.pcap",
            dlt: 229,
            nano: false,
            records: timed(v6_only),
        },
    ]
}

/// Ethernet encapsulations, each carrying a TCP SYN to port 445 from its own source port,
/// plus three frames that are not IP.
fn encapsulations() -> Fixture {
    let syn = |sport| tcp4(A, sport, B, 445, true, 0);
    let mut frames = vec![eth_ip(&syn(40001))];
    let mut vlan = vec![0x00, 10, 0x08, 0x00];
    vlan.extend_from_slice(&syn(40002));
    frames.push(eth([0x81, 0x00], &vlan));
    let mut qinq = vec![0x00, 20, 0x81, 0x00, 0x00, 30, 0x08, 0x00];
    qinq.extend_from_slice(&syn(40003));
    frames.push(eth([0x88, 0xa8], &qinq));
    let mut old_qinq = vec![0x00, 40, 0x81, 0x00, 0x00, 50, 0x08, 0x00];
    old_qinq.extend_from_slice(&syn(40004));
    frames.push(eth([0x91, 0x00], &old_qinq));
    let mut mpls = vec![0x00, 0x01, 0x00, 0x40, 0x00, 0x02, 0x01, 0x40];
    mpls.extend_from_slice(&syn(40005));
    frames.push(eth([0x88, 0x47], &mpls));
    let ip = syn(40006);
    let mut pppoe = vec![0x11, 0x00, 0x00, 0x01];
    pppoe.extend_from_slice(&u16::try_from(ip.len() + 2).unwrap().to_be_bytes());
    pppoe.extend_from_slice(&[0x00, 0x21]);
    pppoe.extend_from_slice(&ip);
    frames.push(eth([0x88, 0x64], &pppoe));
    // ARP request, LLDP, and an 802.3 frame with an LLC header (STP).
    frames.push(eth(
        [0x08, 0x06],
        &[
            0, 1, 8, 0, 6, 4, 0, 1, 0, 0x50, 0x56, 0, 0, 1, 10, 1, 1, 1, 0, 0, 0, 0, 0, 0, 10, 1,
            1, 2,
        ],
    ));
    frames.push(eth(
        [0x88, 0xcc],
        &[0x02, 0x07, 0x04, 0, 0x50, 0x56, 0, 0, 1, 0, 0],
    ));
    frames.push(eth(
        [0x00, 0x26],
        &[
            0x42, 0x42, 0x03, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ],
    ));
    Fixture {
        name: "encapsulations.pcap",
        dlt: 1,
        nano: false,
        records: timed(frames),
    }
}

/// GRE, ESP (two SPIs), AH, ICMP and ICMPv6, IKE and NAT-T, and two protocols the catalog
/// does not name (IP-in-IP and OSPF).
fn ip_protocols() -> Fixture {
    let inner = icmp4([192, 168, 0, 1], [192, 168, 0, 2], false);
    let mut gre = vec![0, 0, 0x08, 0x00];
    gre.extend_from_slice(&inner);
    let esp = |spi: u32| {
        let mut p = spi.to_be_bytes().to_vec();
        p.extend_from_slice(&[0, 0, 0, 1]);
        p.extend_from_slice(&[0x77; 64]);
        p
    };
    // AH: next header TCP, length 4 (24 bytes), SPI, sequence, ICV; then a TCP header.
    let mut ah = vec![6, 4, 0, 0, 0, 0, 0x20, 0x01, 0, 0, 0, 1];
    ah.extend_from_slice(&[0; 12]);
    ah.extend_from_slice(&tcp4(A, 1234, B, 80, true, 0)[20..]);
    let mut icmp6_req = Vec::new();
    PacketBuilder::ipv6(A6, B6, 64)
        .icmpv6_echo_request(1, 1)
        .write(&mut icmp6_req, &[0; 8])
        .unwrap();
    let mut icmp6_rep = Vec::new();
    PacketBuilder::ipv6(B6, A6, 64)
        .icmpv6_echo_reply(1, 1)
        .write(&mut icmp6_rep, &[0; 8])
        .unwrap();
    let frames = vec![
        ip4_raw(A, B, 47, &gre),
        ip4_raw(B, A, 47, &gre),
        ip4_raw(A, B, 50, &esp(0x1001)),
        ip4_raw(B, A, 50, &esp(0x2002)),
        ip4_raw(A, B, 50, &esp(0x1001)),
        ip4_raw(B, A, 50, &esp(0x2002)),
        ip4_raw(A, B, 51, &ah),
        ip4_raw(B, A, 51, &ah),
        icmp4(A, C, false),
        icmp4(C, A, true),
        icmp6_req,
        icmp6_rep,
        ip4_raw(A, B, 4, &icmp4([192, 168, 0, 1], [192, 168, 0, 2], false)),
        ip4_raw(
            A,
            [224, 0, 0, 5],
            89,
            &[2, 1, 0, 44, 0, 0, 0, 0, 0, 0, 0, 0],
        ),
        udp4(A, 4500, B, 4500, 100),
        udp4(B, 4500, A, 4500, 100),
        udp4(A, 500, B, 500, 300),
        udp4(B, 500, A, 500, 300),
        ip6_raw(A6, B6, 50, &esp(0x3003)),
    ];
    Fixture {
        name: "ip_protocols.pcap",
        dlt: 1,
        nano: false,
        records: timed(frames.iter().map(|p| eth_ip(p)).collect()),
    }
}

fn ipv4_fragment(id: u16, offset_8: u16, more: bool, src: [u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut h = Ipv4Header::new(
        u16::try_from(payload.len()).unwrap(),
        64,
        IpNumber(17),
        src,
        B,
    )
    .unwrap();
    h.identification = id;
    h.more_fragments = more;
    h.fragment_offset = etherparse::IpFragOffset::try_new(offset_8).unwrap();
    h.header_checksum = h.calc_header_checksum();
    let mut out = Vec::new();
    h.write(&mut out).unwrap();
    out.extend_from_slice(payload);
    out
}

fn ipv6_fragment(id: u32, offset_8: u16, more: bool, payload: &[u8]) -> Vec<u8> {
    let mut frag = vec![17, 0];
    frag.extend_from_slice(&((offset_8 << 3) | u16::from(more)).to_be_bytes());
    frag.extend_from_slice(&id.to_be_bytes());
    frag.extend_from_slice(payload);
    ip6_raw(A6, B6, 44, &frag)
}

/// A UDP datagram to 389 in three IPv4 fragments and its one-packet answer; a later fragment
/// whose first never came; a UDP datagram to 137 in two IPv6 fragments.
fn fragments() -> Fixture {
    // UDP header (50010 -> 389, length 8 + 2392), then the first 1472 bytes of data.
    let mut first = vec![0xc3, 0x5a, 0x01, 0x85, 0x09, 0x60, 0, 0];
    first.extend_from_slice(&[0x30; 1472]);
    let mut first6 = vec![0xc3, 0x5b, 0x00, 0x89, 0x05, 0xd8, 0, 0];
    first6.extend_from_slice(&[0x31; 1000]);
    let frames = [
        ipv4_fragment(0x4242, 0, true, A, &first),
        ipv4_fragment(0x4242, 185, true, A, &[0x30; 480]),
        ipv4_fragment(0x4242, 245, false, A, &[0x30; 440]),
        udp4(B, 389, A, 50010, 100),
        ipv4_fragment(0x5151, 100, false, C, &[0x30; 64]),
        ipv6_fragment(0xabcd, 0, true, &first6),
        ipv6_fragment(0xabcd, 126, false, &[0x31; 496]),
    ];
    Fixture {
        name: "fragments.pcap",
        dlt: 1,
        nano: false,
        records: timed(frames.iter().map(|p| eth_ip(p)).collect()),
    }
}

/// Frames cut short by small snapshot lengths; bytes still count their wire length.
fn snaplen() -> Fixture {
    let big = eth_ip(&tcp4(A, 50000, B, 445, false, 1460));
    let dns = eth_ip(&udp4(A, 53000, B, 53, 400));
    let other = eth_ip(&tcp4(A, 50001, C, 445, false, 1000));
    let short = eth_ip(&tcp4(A, 50002, C, 80, false, 500));
    let cut = |f: &Vec<u8>, n: usize, i: u64| {
        (
            T0 + i * NS,
            u32::try_from(f.len()).unwrap(),
            f[..n].to_vec(),
        )
    };
    let records = vec![
        cut(&big, 38, 0),   // Ethernet, IPv4, the ports: tcp/445
        cut(&dns, 42, 1),   // the whole UDP header: udp/53
        cut(&other, 34, 2), // the IPv4 header only: no ports, unclassified
        cut(&short, 20, 3), // 6 bytes of IPv4: undecodable
    ];
    Fixture {
        name: "snaplen.pcap",
        dlt: 1,
        nano: false,
        records,
    }
}

/// Nanosecond timestamps, and idle timeouts in capture time: UDP 123 quiet for 61 s (two
/// flows), TCP 3389 quiet for 200 s (one flow) then 400 s (a second).
fn nanosecond() -> Fixture {
    let ntp_q = eth_ip(&udp4(A, 123, B, 123, 48));
    let ntp_r = eth_ip(&udp4(B, 123, A, 123, 48));
    let rdp = eth_ip(&tcp4(A, 50123, B, 3389, false, 100));
    let records = vec![
        whole(T0 + 1, ntp_q.clone()),
        whole(T0 + 500_000_001, ntp_r),
        whole(T0 + 2 * NS + 7, rdp.clone()),
        whole(T0 + 61 * NS + 500_000_002, ntp_q),
        whole(T0 + 202 * NS + 7, rdp.clone()),
        whole(T0 + 602 * NS + 9, rdp),
    ];
    Fixture {
        name: "nanosecond.pcap",
        dlt: 1,
        nano: true,
        records,
    }
}

/// A link type portscope does not decode (USER0, DLT 147).
fn unsupported_link() -> Fixture {
    let frames = (0..3)
        .map(|i| {
            vec![
                0x08, 0x02, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, i, 1, 2, 3, 4, 5,
            ]
        })
        .collect();
    Fixture {
        name: "unsupported_link.pcap",
        // LINKTYPE_USER0: private use, which no decoder can know.
        dlt: 147,
        nano: false,
        records: timed(frames),
    }
}

/// The README's demo: 500 packets of the synthetic mix, stored 96 bytes deep.
fn demo() -> Fixture {
    let spec = gen::Spec {
        packets: 500,
        flows: 60,
        seed: 7,
        small: false,
    };
    let records = gen::frames(&spec)
        .map(|(ts, f)| {
            let wire = u32::try_from(f.len()).unwrap();
            (ts, wire, f[..f.len().min(96)].to_vec())
        })
        .collect();
    Fixture {
        name: "demo.pcap",
        dlt: 1,
        nano: false,
        records,
    }
}

pub fn all() -> Vec<Fixture> {
    let mut all = vec![
        demo(),
        encapsulations(),
        tunnels(),
        aruba_gre(),
        dynamic(),
        epm_unknown(),
        rpc(),
        smb(),
        ip_protocols(),
        fragments(),
        snaplen(),
        nanosecond(),
        unsupported_link(),
    ];
    all.extend(link_fixtures());
    all
}

pub fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

#[test]
fn fixtures_are_what_the_generator_builds() {
    let bless = std::env::var_os("PORTSCOPE_BLESS").is_some();
    let tmp = std::env::temp_dir().join(format!("portscope-fixtures-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    for f in all() {
        let path = tmp.join(f.name);
        gen::write_pcap(&path, f.dlt, f.nano, f.records).unwrap();
        let built = std::fs::read(&path).unwrap();
        let committed = dir().join(f.name);
        if bless {
            std::fs::write(&committed, &built).unwrap();
        }
        let on_disk = std::fs::read(&committed).unwrap_or_default();
        assert!(built == on_disk, "fixtures/{} differs from what tests/fixtures.rs builds; run PORTSCOPE_BLESS=1 cargo test fixtures", f.name);
    }
    std::fs::remove_dir_all(&tmp).unwrap();
}
