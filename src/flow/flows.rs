//! The map under a flow-table shard: its entries in one dense vector, and a hashbrown
//! `HashTable` of their indices.
//!
//! A `HashMap` of keys and counters keeps both in its buckets: with 200,000 flows those are
//! 36 MB of buckets, so a lookup usually misses the cache twice, on the control bytes and
//! on the bucket. Here the index holds four bytes a flow (and hashbrown's control byte),
//! small enough to stay in cache, and the entries are packed with no empty buckets between
//! them, so a lookup misses at most once, on the entry, and the table takes a fifth less
//! memory. (Looking up a batch's keys first and touching their entries, so that the misses
//! overlap, cost more instructions than it saved: measured, and left out.)
//!
//! An entry's index is stable until an entry is removed: removal moves the last entry into
//! the hole ([`Flows::remove`]), and every index of the moved entry is rewritten.

use std::hash::BuildHasher;

/// A key's hash: fixed (unseeded), so a run's table behaves the same in every run.
#[inline(always)]
pub fn hash_of<K: std::hash::Hash>(key: &K) -> u64 {
    foldhash::fast::FixedState::with_seed(0x7f4a_7c15_9e37_79b9).hash_one(key)
}

/// The most entries a table may hold: indices are `u32`.
pub const MAX_LEN: usize = u32::MAX as usize;

#[derive(Clone, Debug)]
struct Entry<K, V> {
    hash: u64,
    key: K,
    value: V,
}

/// A map from `K` to `V` whose entries are numbered `0..len()`.
#[derive(Debug)]
pub struct Flows<K, V> {
    index: hashbrown::HashTable<u32>,
    entries: Vec<Entry<K, V>>,
}

impl<K: Eq + std::hash::Hash, V> Flows<K, V> {
    pub fn with_capacity(capacity: usize) -> Flows<K, V> {
        Flows {
            index: hashbrown::HashTable::with_capacity(capacity),
            entries: Vec::with_capacity(capacity),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The index of `key`, whose hash is `hash`.
    #[inline]
    pub fn find(&self, hash: u64, key: &K) -> Option<u32> {
        let entries = &self.entries;
        self.index
            .find(hash, |&i| {
                let e = &entries[i as usize];
                e.hash == hash && e.key == *key
            })
            .copied()
    }

    /// The value of entry `i`.
    ///
    /// # Panics
    /// When there is no entry `i`: a bug in the caller, which got `i` from this table.
    #[inline]
    pub fn value_mut(&mut self, i: u32) -> &mut V {
        &mut self.entries[i as usize].value
    }

    /// Adds `key`, which is not in the table, and returns its index. The caller bounds the
    /// table below 2^32 entries ([`MAX_LEN`]).
    pub fn insert(&mut self, hash: u64, key: K, value: V) -> u32 {
        debug_assert!(self.entries.len() < MAX_LEN);
        let i = self.entries.len() as u32;
        let entries = &self.entries;
        self.index
            .insert_unique(hash, i, |&j| entries[j as usize].hash);
        self.entries.push(Entry { hash, key, value });
        i
    }

    /// Removes entry `i`, moving the last entry into its place.
    pub fn remove(&mut self, i: u32) -> (K, V) {
        let hash = self.entries[i as usize].hash;
        if let Ok(found) = self.index.find_entry(hash, |&j| j == i) {
            found.remove();
        }
        let last = self.entries.len() - 1;
        if i as usize != last {
            let moved = self.entries[last].hash;
            if let Some(j) = self.index.find_mut(moved, |&j| j as usize == last) {
                *j = i;
            }
        }
        let e = self.entries.swap_remove(i as usize);
        (e.key, e.value)
    }

    /// Removes every entry for which `keep` says no.
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        let mut i = 0;
        while i < self.entries.len() {
            let e = &mut self.entries[i];
            if keep(&e.key, &mut e.value) {
                i += 1;
            } else {
                // The last entry moves into `i`: look at it next.
                self.remove(i as u32);
            }
        }
    }

    /// Removes every entry.
    pub fn drain(&mut self) -> impl Iterator<Item = (K, V)> + '_ {
        self.index.clear();
        self.entries.drain(..).map(|e| (e.key, e.value))
    }

    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.entries.iter().map(|e| &e.value)
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&K, &mut V)> {
        self.entries.iter_mut().map(|e| (&e.key, &mut e.value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_follow_removals() {
        let mut t: Flows<u32, u32> = Flows::with_capacity(4);
        for k in 0..100 {
            assert_eq!(t.insert(hash_of(&k), k, k * 10), k);
        }
        // Removing 0 moves 99 into index 0.
        assert_eq!(t.remove(0), (0, 0));
        assert_eq!(t.find(hash_of(&99), &99), Some(0));
        assert_eq!(t.find(hash_of(&0), &0), None);
        t.retain(|k, _| k % 3 != 0);
        assert_eq!(t.len(), 66);
        for k in 0..100u32 {
            let found = t.find(hash_of(&k), &k);
            assert_eq!(found.is_some(), k % 3 != 0, "key {k}");
            if let Some(i) = found {
                assert_eq!(*t.value_mut(i), k * 10);
            }
        }
        assert_eq!(t.drain().count(), 66);
        assert_eq!(t.find(hash_of(&1), &1), None);
    }
}
