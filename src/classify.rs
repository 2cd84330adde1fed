//! The service-row rule: which catalog row a flow belongs to, from its key alone. It is
//! decided once, when the flow starts (by the worker that owns the flow's shard, see
//! [`crate::worker`]); announcements of dynamic ports may name the row first.

use crate::catalog::{Match, PortTable, Transport};
use crate::flow::Key;

/// The service row of a flow, by the rule in ARCHITECTURE.md: for TCP and UDP the port with
/// an exact record (the lower if both have one), else the narrowest range holding both ports;
/// ICMP, GRE, ESP and AH by IP protocol; `None` (unclassified) otherwise.
#[inline]
pub fn classify(table: &PortTable, key: &Key) -> Option<Match> {
    match Transport::from_ip_proto(key.proto)? {
        t @ (Transport::Tcp | Transport::Udp) => table.classify_ports(t, key.a_port, key.b_port),
        t => table.classify_ip(t),
    }
}
