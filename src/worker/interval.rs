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
        let mut expectations = Expectations::default();
        for e in &self.expected {
            expectations += e.counts;
        }
        // The tally's own counters, with the announcements the expected flows hold.
        let now = Tally {
            expectations,
            ..self.tally.counters()
        };
        let out = Tally {
            rows,
            flow_count: flows,
            tunneled,
            ..now.counters_since(&self.reported)
        };
        self.reported = now;
        out
    }
}
