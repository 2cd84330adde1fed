//! Live mode: what a worker counted since its last interval report.

use super::Worker;
use crate::flow::{Expectations, Tally};

impl Worker<'_> {
    /// Live mode: what this worker counted since the last call (flows are counted in the
    /// interval they are first seen in), so the intervals add up to the final tally.
    pub fn interval(&mut self) -> Tally {
        let mut rows = self
            .tally
            .interval
            .replace(hashbrown::HashMap::new())
            .unwrap_or_default();
        let mut flows = std::mem::take(&mut self.tally.interval_flows);
        for shard in &mut self.shards {
            flows += shard.report_open(|_, row, delta| *rows.entry(row).or_default() += delta);
        }
        let mut tunneled = self
            .tally
            .interval_tunneled
            .replace(hashbrown::HashMap::new())
            .unwrap_or_default();
        for shard in &mut self.inner {
            shard.report_open(|key, row, delta| {
                *tunneled.entry((key.tunnel.kind, row)).or_default() += delta;
            });
        }
        let mut tunnel_not_ip = self.tally.tunnel_not_ip;
        for (now, before) in tunnel_not_ip.iter_mut().zip(self.reported.tunnel_not_ip) {
            *now = now.since(before);
        }
        let mut expectations = Expectations::default();
        for e in &self.expected {
            expectations += e.counts;
        }
        let mut unsupported_links = self.tally.unsupported_links.clone();
        for (dlt, n) in &mut unsupported_links {
            *n -= self
                .reported
                .unsupported_links
                .get(dlt)
                .copied()
                .unwrap_or(0);
        }
        unsupported_links.retain(|_, n| *n > 0);
        let out = Tally {
            rows,
            flow_count: flows,
            smb_forgotten: self.tally.smb_forgotten - self.reported.smb_forgotten,
            not_ip: self.tally.not_ip.since(self.reported.not_ip),
            undecodable: self.tally.undecodable.since(self.reported.undecodable),
            unsupported_links,
            evicted_flows: self.tally.evicted_flows - self.reported.evicted_flows,
            orphan_fragments: self.tally.orphan_fragments - self.reported.orphan_fragments,
            unnamed_binds: self.tally.unnamed_binds - self.reported.unnamed_binds,
            tunneled,
            tunnel_not_ip,
            expectations: expectations.since(self.reported.expectations),
            ..Tally::default()
        };
        self.reported = Tally {
            not_ip: self.tally.not_ip,
            undecodable: self.tally.undecodable,
            unsupported_links: self.tally.unsupported_links.clone(),
            evicted_flows: self.tally.evicted_flows,
            orphan_fragments: self.tally.orphan_fragments,
            unnamed_binds: self.tally.unnamed_binds,
            smb_forgotten: self.tally.smb_forgotten,
            tunnel_not_ip: self.tally.tunnel_not_ip,
            expectations,
            ..Tally::default()
        };
        out
    }
}
