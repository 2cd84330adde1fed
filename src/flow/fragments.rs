//! The IP fragment table: later fragments (no transport header) join the flow of their first.
//!
//! Keyed by (source, destination, protocol, id) as RFC 791 and RFC 8200 define a datagram.
//! Bounded: when full, the datagram seen first goes; a later fragment more than
//! [`FRAGMENT_TIMEOUT_NS`] after its first is not joined to it. Losing an entry loses no
//! packet: a later fragment without its first is still counted, as unclassified.

use super::Key;
use crate::decode::IpProto;

/// Linux's default `ipfrag_time` is 30 seconds.
pub const FRAGMENT_TIMEOUT_NS: u64 = 30_000_000_000;

/// The datagram a fragment belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FragmentKey {
    pub src: [u8; 16],
    pub dst: [u8; 16],
    /// 0 for IPv6 (RFC 8200 keys a datagram by addresses and id alone).
    pub proto: IpProto,
    pub id: u32,
}

/// Maps the datagram of a first fragment to its flow key.
#[derive(Debug)]
pub struct Fragments {
    map: hashbrown::HashMap<FragmentKey, (Key, bool, u64)>,
    /// Datagrams in the order they were first seen, to drop the oldest when full.
    order: std::collections::VecDeque<FragmentKey>,
    max: usize,
}

impl Fragments {
    pub fn new(max: usize) -> Fragments {
        Fragments {
            map: hashbrown::HashMap::new(),
            order: std::collections::VecDeque::new(),
            max: max.max(1),
        }
    }

    /// Remembers the flow of a first fragment.
    pub fn first(&mut self, fragment: FragmentKey, key: Key, from_a: bool, ts_ns: u64) {
        if self.map.insert(fragment, (key, from_a, ts_ns)).is_none() {
            self.order.push_back(fragment);
        }
        while self.map.len() > self.max {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            self.map.remove(&oldest);
        }
    }

    /// The flow key (and direction) of a later fragment, if its first fragment was seen
    /// at most [`FRAGMENT_TIMEOUT_NS`] before.
    pub fn later(&self, fragment: FragmentKey, ts_ns: u64) -> Option<(Key, bool)> {
        self.map
            .get(&fragment)
            .filter(|e| ts_ns.saturating_sub(e.2) <= FRAGMENT_TIMEOUT_NS)
            .map(|&(key, from_a, _)| (key, from_a))
    }
}
