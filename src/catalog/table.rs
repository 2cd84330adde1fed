//! The precomputed lookup table: a port is one array index away from its candidate services.
//!
//! For TCP and UDP a dense 65,536-entry array maps each port to a [`SetId`], the id of the
//! *set* of records on that port (TCP 135 alone has 18). ICMP, GRE, ESP and AH map by IP
//! protocol. Range records (the dynamic RPC range) are kept apart, narrowest first, and rank
//! below every exact port. Sets are interned, so equal sets share one id.
//!
//! Layering: for a given port, the records come from the first catalog (built-in, then each
//! `--catalog` in order) that has an exact record on it; later catalogs cannot shadow earlier
//! ones (loading says so for each record that loses). IP protocols follow the same rule.
//! Ranges of every layer are merged: each range row lists every range record covering it.

use super::{Catalog, Transport};
use std::collections::HashMap;

/// The id of a set of catalog records. `SetId(0)` is the empty set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SetId(pub u32);

impl SetId {
    pub const NONE: SetId = SetId(0);

    pub fn is_none(self) -> bool {
        self.0 == 0
    }
}

/// How a flow or a port was matched to its candidate services.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MatchKind {
    /// An exact port record of the flow's transport.
    Port,
    /// A transport without ports (ICMP, GRE, ESP, AH), by IP protocol.
    IpProtocol,
    /// A port range record that contains both ports of the flow.
    Range,
    /// An endpoint the DCE/RPC endpoint mapper announced; the set is an index into the
    /// catalog's interface table, not a record set.
    Epm,
    /// A flow another flow announced (FTP data, a TFTP transfer): the record set of the
    /// service's well-known port.
    Expectation,
    /// A DCE/RPC connection (or connectionless exchange) whose bind, alter context or
    /// header named its interface: the set is the interface's id
    /// ([`PortTable::interface_id`]), and its candidate the service that owns it.
    RpcBind,
    /// The part of an SMB connection that addressed a named pipe: the set packs the pipe's
    /// id ([`PortTable::pipe_id`]) and, once a bind was seen on it, the interface's.
    SmbPipe,
    /// The part of an SMB connection that addressed a disk or print share: the set is the
    /// share type (1 disk, 3 print, as SMB2 numbers them).
    SmbShare,
    /// The part of an SMB connection that was encrypted or compressed (SMB3): the set is
    /// the port's, every candidate, since nothing in the messages can be read.
    SmbEncrypted,
    /// The part of an SMB connection that addressed no tree (negotiate, session setup,
    /// logoff, echo), which the SMB server (the Server service) handles itself: the set is
    /// the port's, so the port's other candidates stay listed beside it.
    SmbSession,
}

impl MatchKind {
    /// Every kind.
    pub const ALL: [MatchKind; 10] = [
        MatchKind::Port,
        MatchKind::IpProtocol,
        MatchKind::Range,
        MatchKind::Epm,
        MatchKind::Expectation,
        MatchKind::RpcBind,
        MatchKind::SmbPipe,
        MatchKind::SmbShare,
        MatchKind::SmbEncrypted,
        MatchKind::SmbSession,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MatchKind::Port => "port",
            MatchKind::IpProtocol => "ip-protocol",
            MatchKind::Range => "range",
            MatchKind::Epm => "epm",
            MatchKind::Expectation => "expectation",
            MatchKind::RpcBind => "rpc-bind",
            MatchKind::SmbPipe => "smb-pipe",
            MatchKind::SmbShare => "smb-share",
            MatchKind::SmbEncrypted => "smb-encrypted",
            MatchKind::SmbSession => "smb-session",
        }
    }
}

/// A service row: the transport and port, range or IP protocol, and its candidate records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Match {
    pub transport: Transport,
    /// `(port, port)` for an exact match, the range for a range match, `None` for IP protocols.
    pub ports: Option<(u16, u16)>,
    pub kind: MatchKind,
    /// The set of candidate records; for [`MatchKind::Epm`] and [`MatchKind::RpcBind`]
    /// rows, the interface's id instead ([`PortTable::interface_id`]), so two interfaces
    /// on one port are two rows.
    pub set: SetId,
}

impl Match {
    /// The id of the DCE/RPC interface an `epm` or `rpc-bind` row names, or that was bound
    /// over an `smb-pipe` row's pipe.
    pub fn interface(&self) -> Option<u32> {
        match self.kind {
            MatchKind::Epm | MatchKind::RpcBind => Some(self.set.0),
            MatchKind::SmbPipe => (self.set.0 >> 16).checked_sub(1),
            _ => None,
        }
    }

    /// The id of the pipe an `smb-pipe` row names ([`PortTable::pipe_name`]).
    pub fn pipe(&self) -> Option<u32> {
        (self.kind == MatchKind::SmbPipe).then_some(self.set.0 & 0xffff)
    }

    /// The share type of an `smb-share` row: `disk` or `print`.
    pub fn share_type(&self) -> Option<&'static str> {
        match (self.kind, self.set.0) {
            (MatchKind::SmbShare, SHARE_DISK) => Some("disk"),
            (MatchKind::SmbShare, _) => Some("print"),
            _ => None,
        }
    }
}

/// The set of an `smb-share` row of a disk share, and of a print share (SMB2's share types).
const SHARE_DISK: u32 = 1;
const SHARE_PRINT: u32 = 3;
/// At most this many pipe ids, and interface ids bound over pipes, fit an `smb-pipe` set.
const PIPE_IDS: u32 = 0xffff;

/// Pipes the pipe table does not know, in the order first seen.
#[derive(Debug, Default)]
struct UnknownPipes {
    ids: HashMap<String, u32>,
    names: Vec<String>,
}

#[derive(Clone, Copy, Debug)]
struct RangeEntry {
    lo: u16,
    hi: u16,
    set: SetId,
}

/// How many interfaces the interface table does not know each flow-table shard names at
/// most (64 shards: 4,096 in a run). Counted per shard, in the shard's capture order, so
/// which connections are named does not depend on the number of threads.
pub const UNKNOWN_INTERFACES_PER_SHARD: usize = 64;

/// Interfaces the interface table does not know, in the order first seen.
#[derive(Debug, Default)]
struct Unknown {
    ids: HashMap<[u8; 16], usize>,
    uuids: Vec<[u8; 16]>,
}

/// Port and protocol to candidate services, built once from a [`Catalog`].
#[derive(Debug)]
pub struct PortTable {
    /// `exact[0]` is TCP, `exact[1]` UDP; 65,536 entries each.
    exact: [Box<[SetId]>; 2],
    /// Per TCP/UDP, the distinct ranges, narrowest first.
    ranges: [Vec<RangeEntry>; 2],
    /// ICMP, GRE, ESP, AH.
    ip: [SetId; 4],
    /// Record indices of each set, in catalog order; `sets[0]` is empty.
    sets: Vec<Box<[u32]>>,
    /// The UUIDs of the catalog's DCE/RPC interfaces, in table order, and each one's index.
    interfaces: Vec<[u8; 16]>,
    interface_ids: HashMap<[u8; 16], u32>,
    /// Interfaces seen on the wire that the table does not know, numbered after it.
    unknown_interfaces: std::sync::Mutex<Unknown>,
    /// The catalog's pipe names, in table order, and each one's index.
    pipes: Vec<String>,
    pipe_ids: HashMap<String, u32>,
    /// Pipes seen on the wire that the table does not know, numbered after it.
    unknown_pipes: std::sync::Mutex<UnknownPipes>,
}

fn port_slot(t: Transport) -> Option<usize> {
    match t {
        Transport::Tcp => Some(0),
        Transport::Udp => Some(1),
        _ => None,
    }
}

fn ip_slot(t: Transport) -> Option<usize> {
    match t {
        Transport::Icmp => Some(0),
        Transport::Gre => Some(1),
        Transport::Esp => Some(2),
        Transport::Ah => Some(3),
        _ => None,
    }
}

#[derive(Default)]
struct Interner {
    ids: HashMap<Vec<u32>, SetId>,
    sets: Vec<Box<[u32]>>,
}

impl Interner {
    fn intern(&mut self, set: Vec<u32>) -> SetId {
        if set.is_empty() {
            return SetId::NONE;
        }
        let next = SetId(u32::try_from(self.sets.len()).unwrap_or(u32::MAX));
        *self.ids.entry(set).or_insert_with_key(|set| {
            self.sets.push(set.clone().into_boxed_slice());
            next
        })
    }
}

/// Records of the first source that has any for `key`, in catalog order.
fn first_layer<K: std::hash::Hash + Eq>(
    layers: &mut HashMap<K, (usize, Vec<u32>)>,
    key: K,
    source: usize,
    index: u32,
) {
    let entry = layers.entry(key).or_insert((source, Vec::new()));
    if entry.0 == source {
        entry.1.push(index);
    }
}

impl PortTable {
    /// Builds the table from every record of `catalog`.
    pub fn build(catalog: &Catalog) -> PortTable {
        let mut exact_layers: HashMap<(usize, u16), (usize, Vec<u32>)> = HashMap::new();
        let mut ip_layers: HashMap<usize, (usize, Vec<u32>)> = HashMap::new();
        let mut range_records: [Vec<(u16, u16, u32)>; 2] = [Vec::new(), Vec::new()];
        for (i, r) in catalog.records.iter().enumerate() {
            let index = u32::try_from(i).unwrap_or(u32::MAX);
            match (port_slot(r.transport), ip_slot(r.transport), r.ports) {
                (Some(slot), _, Some((lo, hi))) if lo == hi => {
                    first_layer(&mut exact_layers, (slot, lo), r.source, index);
                }
                (Some(slot), _, Some((lo, hi))) => range_records[slot].push((lo, hi, index)),
                (None, Some(slot), _) => first_layer(&mut ip_layers, slot, r.source, index),
                _ => {}
            }
        }

        let mut interner = Interner::default();
        interner.sets.push(Box::new([]));
        let mut exact = [
            vec![SetId::NONE; 65536].into_boxed_slice(),
            vec![SetId::NONE; 65536].into_boxed_slice(),
        ];
        let mut keys: Vec<_> = exact_layers.into_iter().collect();
        keys.sort_unstable();
        for ((slot, port), (_, set)) in keys {
            exact[slot][usize::from(port)] = interner.intern(set);
        }
        let mut ip = [SetId::NONE; 4];
        let mut ip_keys: Vec<_> = ip_layers.into_iter().collect();
        ip_keys.sort_unstable();
        for (slot, (_, set)) in ip_keys {
            ip[slot] = interner.intern(set);
        }
        let ranges = range_records.map(|records| {
            let mut distinct: Vec<(u16, u16)> =
                records.iter().map(|&(lo, hi, _)| (lo, hi)).collect();
            distinct.sort_unstable_by_key(|&(lo, hi)| (hi - lo, lo));
            distinct.dedup();
            distinct
                .into_iter()
                .map(|(lo, hi)| {
                    // A range row's candidates are every range record that covers it whole.
                    let set = records
                        .iter()
                        .filter(|&&(l, h, _)| l <= lo && hi <= h)
                        .map(|&(_, _, i)| i)
                        .collect();
                    RangeEntry {
                        lo,
                        hi,
                        set: interner.intern(set),
                    }
                })
                .collect()
        });
        PortTable {
            exact,
            ranges,
            ip,
            sets: interner.sets,
            interfaces: catalog.interfaces.iter().map(|i| i.uuid).collect(),
            interface_ids: catalog
                .interfaces
                .iter()
                .zip(0u32..)
                .map(|(i, n)| (i.uuid, n))
                .collect(),
            unknown_interfaces: std::sync::Mutex::default(),
            pipes: catalog.pipes.iter().map(|p| p.name.clone()).collect(),
            pipe_ids: catalog
                .pipes
                .iter()
                .zip(0u32..)
                .map(|(p, n)| (p.name.clone(), n))
                .collect(),
            unknown_pipes: std::sync::Mutex::default(),
        }
    }

    /// The set of exact records for a TCP or UDP port (`SetId::NONE` for other transports).
    #[inline]
    pub fn exact(&self, transport: Transport, port: u16) -> SetId {
        match port_slot(transport) {
            Some(slot) => self.exact[slot][usize::from(port)],
            None => SetId::NONE,
        }
    }

    /// The service row of a TCP or UDP flow between ports `a` and `b`:
    /// if exactly one port has an exact record, that port; if both do, the lower one;
    /// otherwise the narrowest range containing both ports; otherwise `None`.
    #[inline]
    pub fn classify_ports(&self, transport: Transport, a: u16, b: u16) -> Option<Match> {
        let slot = port_slot(transport)?;
        let table = &self.exact[slot];
        let (sa, sb) = (table[usize::from(a)], table[usize::from(b)]);
        let port = match (sa.is_none(), sb.is_none()) {
            (false, true) => Some((a, sa)),
            (true, false) => Some((b, sb)),
            (false, false) => Some(if a <= b { (a, sa) } else { (b, sb) }),
            (true, true) => None,
        };
        if let Some((port, set)) = port {
            return Some(Match {
                transport,
                ports: Some((port, port)),
                kind: MatchKind::Port,
                set,
            });
        }
        let (lo, hi) = (a.min(b), a.max(b));
        self.ranges[slot]
            .iter()
            .find(|r| r.lo <= lo && hi <= r.hi)
            .map(|r| Match {
                transport,
                ports: Some((r.lo, r.hi)),
                kind: MatchKind::Range,
                set: r.set,
            })
    }

    /// The row of a transport without ports (ICMP, GRE, ESP, AH), if the catalog names it.
    #[inline]
    pub fn classify_ip(&self, transport: Transport) -> Option<Match> {
        let set = self.ip[ip_slot(transport)?];
        (!set.is_none()).then_some(Match {
            transport,
            ports: None,
            kind: MatchKind::IpProtocol,
            set,
        })
    }

    /// Every row a single port (or, for IP-protocol transports, the protocol) can land in,
    /// highest priority first: the exact port, then each range containing it, narrowest first.
    pub fn lookup(&self, transport: Transport, port: Option<u16>) -> Vec<Match> {
        let Some(slot) = port_slot(transport) else {
            return self.classify_ip(transport).into_iter().collect();
        };
        let Some(port) = port else {
            return Vec::new();
        };
        let mut found = Vec::new();
        let set = self.exact[slot][usize::from(port)];
        if !set.is_none() {
            found.push(Match {
                transport,
                ports: Some((port, port)),
                kind: MatchKind::Port,
                set,
            });
        }
        found.extend(
            self.ranges[slot]
                .iter()
                .filter(|r| r.lo <= port && port <= r.hi)
                .map(|r| Match {
                    transport,
                    ports: Some((r.lo, r.hi)),
                    kind: MatchKind::Range,
                    set: r.set,
                }),
        );
        found
    }

    /// The index of a DCE/RPC interface in the catalog's interface table.
    pub fn known_interface(&self, uuid: &[u8; 16]) -> Option<u32> {
        self.interface_ids.get(uuid).copied()
    }

    /// The id of a DCE/RPC interface: its index in the catalog's interface table, or, for
    /// an interface the table does not know, a number after the table's, the same for the
    /// same UUID all through the run. Ids name rows inside one run only, and which number
    /// an unknown interface gets may depend on thread timing: reports show the UUID, never
    /// the id. The lock is taken only for interfaces the table lacks, once per bind naming
    /// one, never per packet. Callers bound how many unknown interfaces they name (the
    /// workers: [`UNKNOWN_INTERFACES_PER_SHARD`] per shard).
    pub fn interface_id(&self, uuid: &[u8; 16]) -> u32 {
        if let Some(i) = self.known_interface(uuid) {
            return i;
        }
        let mut unknown = self
            .unknown_interfaces
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let next = unknown.uuids.len();
        let at = *unknown.ids.entry(*uuid).or_insert(next);
        if at == next {
            unknown.uuids.push(*uuid);
        }
        u32::try_from(self.interfaces.len() + at).unwrap_or(u32::MAX)
    }

    /// The UUID of interface `id`.
    pub fn interface_uuid(&self, id: u32) -> Option<[u8; 16]> {
        let i = id as usize;
        if let Some(u) = self.interfaces.get(i) {
            return Some(*u);
        }
        let unknown = self
            .unknown_interfaces
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        unknown.uuids.get(i - self.interfaces.len()).copied()
    }

    /// The row of a flow the endpoint mapper announced for interface `index` on `port`.
    pub fn epm_row(&self, index: u32, port: u16) -> Match {
        Match {
            transport: Transport::Tcp,
            ports: Some((port, port)),
            kind: MatchKind::Epm,
            set: SetId(index),
        }
    }

    /// The row of a DCE/RPC connection to server `port` whose bind named interface `id`.
    pub fn rpc_bind_row(&self, transport: Transport, port: u16, id: u32) -> Match {
        Match {
            transport,
            ports: Some((port, port)),
            kind: MatchKind::RpcBind,
            set: SetId(id),
        }
    }

    /// The index of a named pipe (lower case, without `\\pipe\\`) in the catalog's pipe
    /// table.
    pub fn known_pipe(&self, name: &str) -> Option<u32> {
        self.pipe_ids.get(name).copied()
    }

    /// The id of a named pipe: its index in the pipe table, or, for a pipe the table does
    /// not know, a number after the table's (like [`PortTable::interface_id`]: under a lock
    /// taken once per create naming such a pipe; callers bound how many they name).
    pub fn pipe_id(&self, name: &str) -> u32 {
        if let Some(i) = self.known_pipe(name) {
            return i;
        }
        let mut unknown = self
            .unknown_pipes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let next = u32::try_from(self.pipes.len() + unknown.names.len()).unwrap_or(PIPE_IDS);
        if let Some(&id) = unknown.ids.get(name) {
            return id;
        }
        unknown.ids.insert(name.to_string(), next);
        unknown.names.push(name.to_string());
        next.min(PIPE_IDS)
    }

    /// The id [`PortTable::pipe_id`] gave a pipe the table does not know, if it gave one.
    pub fn numbered_pipe(&self, name: &str) -> Option<u32> {
        let unknown = self
            .unknown_pipes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        unknown.ids.get(name).map(|&id| id.min(PIPE_IDS))
    }

    /// The name of pipe `id`.
    pub fn pipe_name(&self, id: u32) -> Option<String> {
        let i = id as usize;
        if let Some(p) = self.pipes.get(i) {
            return Some(p.clone());
        }
        let unknown = self
            .unknown_pipes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        unknown.names.get(i - self.pipes.len()).cloned()
    }

    /// The row of the part of an SMB connection to server `port` that addressed pipe
    /// `pipe`, with the interface bound over it if one was.
    pub fn smb_pipe_row(&self, port: u16, pipe: u32, interface: Option<u32>) -> Match {
        let interface = interface.map_or(0, |i| i.min(PIPE_IDS - 1) + 1);
        Match {
            transport: Transport::Tcp,
            ports: Some((port, port)),
            kind: MatchKind::SmbPipe,
            set: SetId((interface << 16) | pipe.min(PIPE_IDS)),
        }
    }

    /// The row of the part of an SMB connection to `port` that addressed a disk (`print`
    /// false) or print share.
    pub fn smb_share_row(&self, port: u16, print: bool) -> Match {
        Match {
            transport: Transport::Tcp,
            ports: Some((port, port)),
            kind: MatchKind::SmbShare,
            set: SetId(if print { SHARE_PRINT } else { SHARE_DISK }),
        }
    }

    /// The row of an SMB connection's encrypted or compressed messages to `port`.
    pub fn smb_encrypted_row(&self, port: u16) -> Match {
        Match {
            transport: Transport::Tcp,
            ports: Some((port, port)),
            kind: MatchKind::SmbEncrypted,
            set: self.exact(Transport::Tcp, port),
        }
    }

    /// The row of an SMB connection's session messages to `port`.
    pub fn smb_session_row(&self, port: u16) -> Match {
        Match {
            transport: Transport::Tcp,
            ports: Some((port, port)),
            kind: MatchKind::SmbSession,
            set: self.exact(Transport::Tcp, port),
        }
    }

    /// The row of an announced flow that belongs to the service on a well-known port (FTP
    /// data: TCP 20; TFTP: UDP 69), if the catalog names one there.
    pub fn expectation_row(&self, transport: Transport, port: u16) -> Option<Match> {
        let set = self.exact(transport, port);
        (!set.is_none()).then_some(Match {
            transport,
            ports: Some((port, port)),
            kind: MatchKind::Expectation,
            set,
        })
    }

    /// The record indices (into `Catalog::records`) of a set, in catalog order. For
    /// [`MatchKind::Epm`] and [`MatchKind::RpcBind`] rows the set is an interface id instead.
    pub fn records(&self, set: SetId) -> &[u32] {
        self.sets
            .get(usize::try_from(set.0).unwrap_or(usize::MAX))
            .map_or(&[], |s| s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Format, Record};

    /// (match kind, ports, services) of one expected row.
    type Expected<'a> = (&'a str, Option<(u16, u16)>, &'a [&'a str]);

    struct Fixture {
        catalog: Catalog,
        table: PortTable,
    }

    fn builtin() -> Fixture {
        let catalog = Catalog::builtin().unwrap();
        let table = PortTable::build(&catalog);
        Fixture { catalog, table }
    }

    impl Fixture {
        fn records(&self, m: &Match) -> Vec<&Record> {
            self.table
                .records(m.set)
                .iter()
                .map(|&i| &self.catalog.records[i as usize])
                .collect()
        }

        fn services(&self, m: &Match) -> Vec<&str> {
            let mut s: Vec<&str> = self.records(m).iter().map(|r| r.service.as_str()).collect();
            s.dedup();
            s
        }

        /// (kind, ports, services) of every row a port lands in.
        fn check(&self, t: Transport, port: Option<u16>, expect: &[Expected]) {
            let got: Vec<_> = self
                .table
                .lookup(t, port)
                .iter()
                .map(|m| (m.kind.as_str(), m.ports, self.services(m)))
                .collect();
            let want: Vec<_> = expect
                .iter()
                .map(|(k, p, s)| (*k, *p, s.to_vec()))
                .collect();
            assert_eq!(got, want, "{t} {port:?}");
        }
    }

    const RPC_RANGE: &[&str] = &[
        "Certificate Services",
        "Cluster Service",
        "Distributed File System",
        "Distributed Link Tracking Server",
        "Distributed Transaction Coordinator",
        "Event Log",
        "Microsoft Exchange Server and Outlook clients",
        "Fax Service",
        "File Replication",
        "FTP Publishing Service",
        "Group Policy",
        "Remote Storage Notification",
        "Remote Storage Server",
        "Systems Management Server 2.0",
        "Terminal Services Licensing",
        "Terminal Services Session Directory",
    ];

    #[test]
    fn tcp_135_has_every_rpc_service() {
        let f = builtin();
        let m = f.table.lookup(Transport::Tcp, Some(135));
        assert_eq!(m.len(), 1);
        assert_eq!(
            f.services(&m[0]),
            [
                "Active Directory (Local Security Authority)",
                "Certificate Services",
                "Cluster Service",
                "Distributed File System",
                "Distributed Link Tracking Server",
                "Distributed Transaction Coordinator",
                "Event Log",
                "Microsoft Exchange Server and Outlook clients",
                "Fax Service",
                "File Replication",
                "Group Policy",
                "Message Queuing",
                "Remote Procedure Call (RPC)",
                "Remote Storage Notification",
                "Remote Storage Server",
                "Systems Management Server 2.0",
                "Terminal Services Licensing",
                "Terminal Services Session Directory",
            ]
        );
    }

    #[test]
    fn well_known_lookups() {
        let f = builtin();
        f.check(
            Transport::Tcp,
            Some(445),
            &[(
                "port",
                Some((445, 445)),
                &[
                    "Distributed File System",
                    "Fax Service",
                    "Group Policy",
                    "License Logging",
                    "Net Logon",
                    "Print Spooler",
                    "Remote Procedure Call (RPC) Locator",
                    "Server",
                    "Terminal Services Licensing",
                ],
            )],
        );
        let udp137 = f.table.lookup(Transport::Udp, Some(137));
        let protocols: Vec<_> = f
            .records(&udp137[0])
            .iter()
            .map(|r| r.protocol.as_str())
            .collect();
        assert!(protocols.contains(&"NetBIOS Name Resolution"));
        assert!(protocols.contains(&"Cluster Administrator"));
        f.check(
            Transport::Udp,
            Some(137),
            &[(
                "port",
                Some((137, 137)),
                &[
                    "Cluster Service",
                    "Computer Browser",
                    "Net Logon",
                    "Server",
                    "Systems Management Server 2.0",
                    "Windows Internet Name Service (WINS)",
                ],
            )],
        );
        let tcp443 = f.table.lookup(Transport::Tcp, Some(443));
        let mut protocols: Vec<_> = f
            .records(&tcp443[0])
            .iter()
            .map(|r| r.protocol.as_str())
            .collect();
        protocols.sort_unstable();
        protocols.dedup();
        assert_eq!(protocols, ["HTTPS", "RPC over HTTP"]);
        let tcp3389 = f.table.lookup(Transport::Tcp, Some(3389));
        assert_eq!(
            f.services(&tcp3389[0]),
            ["NetMeeting Remote Desktop Sharing", "Terminal Services"]
        );
        f.check(
            Transport::Udp,
            Some(9),
            &[("port", Some((9, 9)), &["Simple TCP/IP Services"])],
        );
        f.check(Transport::Udp, Some(6), &[]);
        f.check(Transport::Tcp, Some(1), &[]);
    }

    #[test]
    fn tcp_3389_is_exact_then_both_ranges() {
        let f = builtin();
        let kinds: Vec<_> = f
            .table
            .lookup(Transport::Tcp, Some(3389))
            .iter()
            .map(|m| (m.kind, m.ports))
            .collect();
        assert_eq!(
            kinds,
            [
                (MatchKind::Port, Some((3389, 3389))),
                (MatchKind::Range, Some((1024, 65534))),
                (MatchKind::Range, Some((1024, 65535))),
            ]
        );
    }

    #[test]
    fn tcp_50000_is_range_only() {
        let f = builtin();
        let m = f.table.lookup(Transport::Tcp, Some(50000));
        assert_eq!(m.len(), 3);
        assert!(m.iter().all(|m| m.kind == MatchKind::Range));
        // Today's dynamic range first (narrowest), then the seed's two.
        assert_eq!(m[0].ports, Some((49152, 65535)));
        assert_eq!(m[1].ports, Some((1024, 65534)));
        let mut want = RPC_RANGE.to_vec();
        want.insert(0, "Active Directory (Local Security Authority)");
        assert_eq!(f.services(&m[1]), want);
        assert_eq!(m[2].ports, Some((1024, 65535)));
        assert_eq!(
            f.services(&m[2]),
            ["Active Directory (Local Security Authority)"]
        );
        // Every service of the seed's range has a record in today's, so a flow there loses
        // no candidate; the current article adds DFS Replication and Hyper-V.
        let today = f.services(&m[0]);
        assert!(want.iter().all(|s| today.contains(s)), "{today:?}");
        assert!(today.contains(&"Distributed File System Replication"));
        assert!(today.contains(&"Hyper-V service"));
        // UDP has the DCOM range only, in both editions.
        let udp = f.table.lookup(Transport::Udp, Some(50000));
        assert_eq!(udp.len(), 2);
        assert_eq!(udp[0].ports, Some((49152, 65535)));
        assert_eq!(f.services(&udp[0]), ["Group Policy"]);
        assert_eq!(f.services(&udp[1]), ["Group Policy"]);
    }

    #[test]
    fn ip_protocol_rows() {
        let f = builtin();
        f.check(
            Transport::Gre,
            None,
            &[("ip-protocol", None, &["Routing and Remote Access"])],
        );
        f.check(
            Transport::Esp,
            None,
            &[("ip-protocol", None, &["Routing and Remote Access"])],
        );
        f.check(
            Transport::Ah,
            None,
            &[("ip-protocol", None, &["Routing and Remote Access"])],
        );
        f.check(
            Transport::Icmp,
            None,
            &[("ip-protocol", None, &["Group Policy"])],
        );
    }

    #[test]
    fn flow_rule_prefers_the_exact_then_lower_port_then_narrowest_range() {
        let f = builtin();
        let row = |t, a, b| f.table.classify_ports(t, a, b).map(|m| (m.kind, m.ports));
        assert_eq!(
            row(Transport::Tcp, 445, 50000),
            Some((MatchKind::Port, Some((445, 445))))
        );
        assert_eq!(
            row(Transport::Tcp, 50000, 445),
            Some((MatchKind::Port, Some((445, 445))))
        );
        assert_eq!(
            row(Transport::Tcp, 3389, 445),
            Some((MatchKind::Port, Some((445, 445))))
        );
        // Both ports in today's dynamic range: its row; one below it: the seed's.
        assert_eq!(
            row(Transport::Tcp, 50000, 60000),
            Some((MatchKind::Range, Some((49152, 65535))))
        );
        assert_eq!(
            row(Transport::Tcp, 50000, 65535),
            Some((MatchKind::Range, Some((49152, 65535))))
        );
        assert_eq!(
            row(Transport::Tcp, 40000, 60000),
            Some((MatchKind::Range, Some((1024, 65534))))
        );
        assert_eq!(
            row(Transport::Tcp, 40000, 65535),
            Some((MatchKind::Range, Some((1024, 65535))))
        );
        assert_eq!(row(Transport::Tcp, 1000, 60000), None);
        assert_eq!(
            row(Transport::Udp, 40000, 60000),
            Some((MatchKind::Range, Some((1024, 65534))))
        );
        assert_eq!(row(Transport::Icmp, 1, 2), None);
    }

    #[test]
    fn extra_catalogs_fill_gaps_but_do_not_shadow() {
        let mut catalog = Catalog::builtin().unwrap();
        catalog
            .add_text(
                "extra",
                "mine 445/tcp\nmine 8088/tcp\nother 8088/tcp\n",
                Format::Services,
            )
            .unwrap();
        catalog
            .add_text("later", "late 8088/tcp\nlate 9999/udp\n", Format::Services)
            .unwrap();
        let table = PortTable::build(&catalog);
        let sources = |t, p| -> Vec<&str> {
            let m = table.lookup(t, Some(p));
            table
                .records(m[0].set)
                .iter()
                .map(|&i| catalog.source_name(&catalog.records[i as usize]))
                .collect()
        };
        assert!(sources(Transport::Tcp, 445)
            .iter()
            .all(|&s| s == "built-in"));
        assert_eq!(sources(Transport::Tcp, 8088), ["extra", "extra"]);
        // The current-Windows layer is the second built-in one: it wins over extras too.
        assert_eq!(sources(Transport::Tcp, 8080), ["built-in-current"]);
        assert_eq!(sources(Transport::Udp, 9999), ["later"]);
    }
}
