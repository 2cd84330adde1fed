//! Naming pipes and interfaces the tables do not know, within each shard's bound.

use super::Worker;
use crate::catalog::UNKNOWN_INTERFACES_PER_SHARD;

impl Worker<'_> {
    /// The id of a pipe a create names on a pipe share, counting a pipe the table does not
    /// know against the shard's bound the first time the shard names it (before it is
    /// numbered, so names past the bound are never kept); `None` past the bound.
    pub(super) fn name_pipe(&mut self, local: usize, name: &str) -> Option<u32> {
        if let Some(id) = self.table.known_pipe(name) {
            return Some(id);
        }
        let named = &mut self.unknown_pipes[local];
        if let Some(id) = self
            .table
            .numbered_pipe(name)
            .filter(|id| named.contains(id))
        {
            return Some(id);
        }
        if named.len() >= UNKNOWN_INTERFACES_PER_SHARD {
            self.tally.smb_forgotten += 1;
            return None;
        }
        let id = self.table.pipe_id(name);
        named.push(id);
        Some(id)
    }

    /// The id of an interface a bind or an endpoint mapper answer names, counting an unknown
    /// one against the shard's bound the first time the shard names it; `None` past the
    /// bound.
    pub(super) fn name_interface(
        &mut self,
        local: usize,
        uuid: &[u8; 16],
        count: bool,
    ) -> Option<u32> {
        if self.table.known_interface(uuid).is_none() {
            let named = &mut self.unknown_interfaces[local];
            if !named.contains(uuid) {
                if named.len() >= UNKNOWN_INTERFACES_PER_SHARD {
                    // Counted once per bind: by its evidence, not again by its contexts.
                    if count {
                        self.tally.unnamed_binds += 1;
                    }
                    return None;
                }
                named.push(*uuid);
            }
        }
        Some(self.table.interface_id(uuid))
    }
}
