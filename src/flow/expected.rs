//! Expected flows: connections announced by another flow (the DCE/RPC endpoint mapper, an
//! FTP PASV reply or PORT command, a TFTP request) before they start.
//!
//! An expectation names the side that will accept the connection (address and port), the
//! side that will make it, the transport and the VLAN; the first flow between them that
//! starts afterwards takes the announced label instead of the port table's. Each shard
//! keeps the expectations of the address pairs it owns, so an expectation meets its flow in
//! the same shard, whatever the number of workers. The table is bounded and entries expire;
//! a flow that started before its announcement keeps the label it started with.

use super::{Expectations, Key};
use crate::catalog::Match;
use crate::decode::IpProto;

/// What an announcement says the expected flow is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// FTP data (announced on the control connection, TCP 21).
    FtpData,
    /// A TFTP transfer (the server answers a request to UDP 69 from a new port).
    Tftp,
    /// A DCE/RPC interface, by its index in the interface table.
    Rpc(u32),
}

impl Target {
    /// How long the announcement waits for its flow, in capture time: an RPC client may
    /// reconnect to the endpoint it looked up for minutes; FTP and TFTP connect at once.
    pub fn lifetime_ns(self) -> u64 {
        match self {
            Target::Rpc(_) => 300_000_000_000,
            Target::FtpData | Target::Tftp => 60_000_000_000,
        }
    }

    /// Whether the announcement is used up by the first flow that matches it. Endpoint
    /// mapper answers stay: a client reconnects to the same endpoint without asking again.
    pub fn once(self) -> bool {
        !matches!(self, Target::Rpc(_))
    }
}

/// An announced flow: `other` will connect to `listener` on `port` over `proto`, on `vlan`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExpectKey {
    pub listener: [u8; 16],
    pub other: [u8; 16],
    pub port: u16,
    pub proto: IpProto,
    pub vlan: u16,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    row: Match,
    expires_ns: u64,
    once: bool,
    used: bool,
}

/// One shard's expectations.
#[derive(Debug)]
pub struct Expected {
    entries: hashbrown::HashMap<ExpectKey, Entry>,
    max: usize,
    pub counts: Expectations,
}

impl Expected {
    /// A table of at most `max` expectations (at least one).
    pub fn new(max: usize) -> Expected {
        Expected {
            entries: hashbrown::HashMap::new(),
            max: max.max(1),
            counts: Expectations::default(),
        }
    }

    /// Records that the flow `key` will come, and that it is `row`; `target` says how long
    /// the announcement waits and whether one flow uses it up. A newer announcement
    /// replaces an older one.
    pub fn announce(&mut self, key: ExpectKey, row: Match, target: Target, now_ns: u64) {
        self.counts.announced += 1;
        let (once, lifetime_ns) = (target.once(), target.lifetime_ns());
        if !self.entries.contains_key(&key) && self.entries.len() >= self.max {
            self.expire(now_ns);
            if self.entries.len() >= self.max {
                // Push out the one that would expire first (ties by key, so the choice
                // does not depend on the hash map's order).
                let oldest = self
                    .entries
                    .iter()
                    .min_by_key(|(k, e)| (e.expires_ns, **k))
                    .map(|(k, _)| *k);
                if let Some(oldest) = oldest {
                    self.drop_entry(&oldest);
                }
            }
        }
        let entry = Entry {
            row,
            expires_ns: now_ns.saturating_add(lifetime_ns),
            once,
            used: false,
        };
        if let Some(old) = self.entries.insert(key, entry) {
            // The same announcement again (a retransmission, another lookup) refreshes it;
            // one that changes the label replaces it.
            if !old.used && old.row != row {
                self.counts.unused += 1;
            }
        }
    }

    /// The announced label of a flow starting now with `key`, if one waits for it.
    #[inline]
    pub fn take(&mut self, key: &Key, now_ns: u64) -> Option<Match> {
        if self.entries.is_empty() {
            return None;
        }
        let sides = [(key.a, key.a_port, key.b), (key.b, key.b_port, key.a)];
        for (listener, port, other) in sides {
            let k = ExpectKey {
                listener,
                other,
                port,
                proto: key.proto,
                vlan: key.vlan,
            };
            let Some(entry) = self.entries.get_mut(&k) else {
                continue;
            };
            if entry.expires_ns < now_ns {
                self.drop_entry(&k);
                continue;
            }
            entry.used = true;
            let row = entry.row;
            if entry.once {
                self.entries.remove(&k);
            }
            self.counts.matched += 1;
            return Some(row);
        }
        None
    }

    fn drop_entry(&mut self, key: &ExpectKey) {
        if let Some(e) = self.entries.remove(key) {
            if !e.used {
                self.counts.unused += 1;
            }
        }
    }

    fn expire(&mut self, now_ns: u64) {
        let counts = &mut self.counts;
        self.entries.retain(|_, e| {
            let keep = e.expires_ns >= now_ns;
            if !keep && !e.used {
                counts.unused += 1;
            }
            keep
        });
    }

    /// The input is over: what never found its flow is unused.
    pub fn finish(&mut self) -> Expectations {
        for e in self.entries.values() {
            if !e.used {
                self.counts.unused += 1;
            }
        }
        self.entries.clear();
        std::mem::take(&mut self.counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The flow announced in these tests: 1::1 will connect to 2::2 on `port` over TCP.
    fn endpoint(port: u16) -> ExpectKey {
        ExpectKey {
            listener: [2; 16],
            other: [1; 16],
            port,
            proto: IpProto::TCP,
            vlan: 0,
        }
    }
    use crate::catalog::{MatchKind, SetId, Transport};

    const S: u64 = 1_000_000_000;

    fn row() -> Match {
        Match {
            transport: Transport::Tcp,
            ports: Some((49667, 49667)),
            kind: MatchKind::Epm,
            set: SetId(3),
        }
    }

    fn key(client_port: u16) -> Key {
        Key {
            a: [1; 16],
            b: [2; 16],
            a_port: client_port,
            b_port: 49667,
            proto: IpProto::TCP,
            vlan: 0,
            spi: 0,
        }
    }

    #[test]
    fn a_flow_to_the_announced_endpoint_takes_the_label_until_it_expires() {
        let mut e = Expected::new(4);
        e.announce(endpoint(49667), row(), Target::Rpc(0), 0);
        assert_eq!(e.take(&key(50000), S), Some(row()));
        // Not used up: a second connection matches too.
        assert_eq!(e.take(&key(50001), 2 * S), Some(row()));
        // Another transport, VLAN or client does not.
        let mut other = key(50002);
        other.proto = IpProto::UDP;
        assert_eq!(e.take(&other, 3 * S), None);
        other = key(50002);
        other.a = [3; 16];
        assert_eq!(e.take(&other, 3 * S), None);
        assert_eq!(e.take(&key(50003), 301 * S), None);
        assert_eq!(
            e.finish(),
            Expectations {
                announced: 1,
                matched: 2,
                unused: 0
            }
        );
    }

    #[test]
    fn once_is_used_up_and_the_bound_pushes_out_the_oldest() {
        let mut e = Expected::new(2);
        e.announce(endpoint(49667), row(), Target::FtpData, 0);
        assert_eq!(e.take(&key(50000), S), Some(row()));
        assert_eq!(e.take(&key(50001), S), None);
        for (i, port) in [1000u16, 1001, 1002].into_iter().enumerate() {
            e.announce(endpoint(port), row(), Target::FtpData, i as u64 * S);
        }
        let mut k = key(50000);
        k.b_port = 1000;
        assert_eq!(e.take(&k, 3 * S), None, "pushed out");
        k.b_port = 1002;
        assert_eq!(e.take(&k, 3 * S), Some(row()));
        assert_eq!(
            e.finish(),
            Expectations {
                announced: 4,
                matched: 2,
                unused: 2
            }
        );
    }
}
