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
