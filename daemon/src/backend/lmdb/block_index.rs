//! The in-memory block index of the LMDB layout: row position → sort key, as the
//! `__blk__<b>` blocks of [`super::layout`] describe it, and which blocks a change touched
//! (so the writer rewrites only those).
//!
//! Pure code, no LMDB calls. Blocks fill to [`BLOCK_SIZE`] sort keys and split in half when
//! an insert overflows one, exactly as the reference does, because both programs may open
//! the same file.

use std::ops::Range;
use std::sync::Arc;

use super::layout::BLOCK_SIZE;

/// Which blocks an index operation changed, so the writer rewrites only those.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Touched {
    /// These block numbers changed in place.
    Blocks(Range<usize>),
    /// Blocks were added or removed at this number: it and every later block moved.
    From(usize),
}

/// Row position → sort key: the concatenation of the blocks.
///
/// Blocks sit behind `Arc`s so a write transaction can start from the cached index for
/// the price of one pointer copy per block, copying only the blocks it changes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlockIndex {
    blocks: Vec<Arc<Vec<u64>>>,
    /// `starts[b]` = position of the first row of block `b`.
    starts: Vec<u64>,
    len: u64,
}

impl BlockIndex {
    /// An index over the given blocks.
    pub fn from_blocks(blocks: Vec<Vec<u64>>) -> Self {
        let mut index = Self {
            blocks: blocks.into_iter().map(Arc::new).collect(),
            ..Self::default()
        };
        index.recount(0);
        index
    }

    /// Number of rows.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of blocks.
    pub fn n_blocks(&self) -> usize {
        self.blocks.len()
    }

    /// The sort keys of block `b`.
    pub fn block(&self, b: usize) -> &[u64] {
        &self.blocks[b]
    }

    /// Entries per block, as stored in `__blk_sizes__`.
    pub fn sizes(&self) -> impl Iterator<Item = u32> + '_ {
        self.blocks.iter().map(|b| b.len() as u32)
    }

    /// `(block, offset)` of the row at `pos < len`.
    fn locate(&self, pos: u64) -> Option<(usize, usize)> {
        if pos >= self.len {
            return None;
        }
        // The last block starting at or before `pos`; empty blocks (never written by the
        // reference, but harmless) share their start with the next one and are skipped.
        let b = self.starts.partition_point(|&s| s <= pos) - 1;
        Some((b, (pos - self.starts[b]) as usize))
    }

    /// The sort key of the row at `pos`, `None` past the end.
    pub fn sort_key(&self, pos: u64) -> Option<u64> {
        self.locate(pos).map(|(b, o)| self.blocks[b][o])
    }

    /// The sort keys of rows `start..stop` (`stop <= len`), in order.
    pub fn sort_keys(&self, start: u64, stop: u64) -> impl Iterator<Item = u64> + '_ {
        let first = self.locate(start).filter(|_| start < stop);
        let (b0, o0) = first.unwrap_or((self.blocks.len(), 0));
        let n = stop.saturating_sub(start) as usize;
        self.blocks[b0..]
            .iter()
            .enumerate()
            .flat_map(move |(i, blk)| blk[if i == 0 { o0 } else { 0 }..].iter().copied())
            .take(n)
    }

    /// Every sort key, in row order.
    pub fn all_sort_keys(&self) -> impl Iterator<Item = u64> + '_ {
        self.blocks.iter().flat_map(|b| b.iter().copied())
    }

    /// Appends a row the way the reference's `extend` does: into the last block, or a new
    /// block when the last one is full.
    pub fn push(&mut self, sort_key: u64) -> Touched {
        match self.blocks.last_mut() {
            Some(last) if last.len() < BLOCK_SIZE => Arc::make_mut(last).push(sort_key),
            _ => {
                self.blocks.push(Arc::new(vec![sort_key]));
                self.starts.push(self.len);
            }
        }
        self.len += 1;
        let b = self.blocks.len() - 1;
        Touched::Blocks(b..b + 1)
    }

    /// Inserts a row before `pos` (`pos <= len`) the way the reference's `insert` does:
    /// into the block holding `pos` (the last block when `pos == len`, even if full), and
    /// a block that grows past [`BLOCK_SIZE`] is split in half, renumbering later blocks.
    pub fn insert(&mut self, pos: u64, sort_key: u64) -> Touched {
        assert!(
            pos <= self.len,
            "insert position {pos} beyond length {}",
            self.len
        );
        if self.blocks.is_empty() {
            self.blocks.push(Arc::new(vec![sort_key]));
            self.starts.push(0);
            self.len = 1;
            return Touched::Blocks(0..1);
        }
        let (b, offset) = match self.locate(pos) {
            Some(found) => found,
            None => (
                self.blocks.len() - 1,
                self.blocks[self.blocks.len() - 1].len(),
            ),
        };
        let block = Arc::make_mut(&mut self.blocks[b]);
        block.insert(offset, sort_key);
        if block.len() > BLOCK_SIZE {
            let right = block.split_off(block.len() / 2);
            self.blocks.insert(b + 1, Arc::new(right));
            self.starts.insert(b + 1, 0);
            self.recount(b);
            return Touched::From(b);
        }
        self.len += 1;
        for start in &mut self.starts[b + 1..] {
            *start += 1;
        }
        Touched::Blocks(b..b + 1)
    }

    /// Removes rows `start..stop` (`start < stop <= len`) and returns their sort keys.
    ///
    /// Gives the same blocks as the reference deleting the rows one by one: each block
    /// loses exactly its rows in the range, and a block left empty is dropped, renumbering
    /// the later blocks.
    pub fn remove_range(&mut self, start: u64, stop: u64) -> (Vec<u64>, Touched) {
        assert!(
            start < stop && stop <= self.len,
            "remove range {start}..{stop} invalid for length {}",
            self.len
        );
        let removed: Vec<u64> = self.sort_keys(start, stop).collect();
        let (b0, o0) = self.locate(start).expect("start < len");
        let (b1, o1) = self.locate(stop - 1).expect("stop - 1 < len");
        let mut emptied = false;
        for b in b0..=b1 {
            let from = if b == b0 { o0 } else { 0 };
            let to = if b == b1 {
                o1 + 1
            } else {
                self.blocks[b].len()
            };
            if from == 0 && to == self.blocks[b].len() {
                self.blocks[b] = Arc::new(Vec::new());
                emptied = true;
            } else {
                Arc::make_mut(&mut self.blocks[b]).drain(from..to);
            }
        }
        let touched = if emptied {
            let mut b = 0;
            self.blocks.retain(|blk| {
                let keep = b < b0 || b > b1 || !blk.is_empty();
                b += 1;
                keep
            });
            Touched::From(b0)
        } else {
            Touched::Blocks(b0..b1 + 1)
        };
        self.recount(b0);
        (removed, touched)
    }

    /// Removes every row.
    pub fn clear(&mut self) -> Touched {
        *self = Self::default();
        Touched::From(0)
    }

    /// Recomputes `starts` and `len` from block `b` on.
    fn recount(&mut self, b: usize) {
        self.starts.resize(self.blocks.len(), 0);
        let mut at = if b == 0 || self.blocks.is_empty() {
            0
        } else {
            self.starts[b - 1] + self.blocks[b - 1].len() as u64
        };
        for (blk, start) in self.blocks[b..].iter().zip(&mut self.starts[b..]) {
            *start = at;
            at += blk.len() as u64;
        }
        self.len = if self.blocks.is_empty() {
            0
        } else {
            let last = self.blocks.len() - 1;
            self.starts[last] + self.blocks[last].len() as u64
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Block sizes of an index.
    fn sizes(index: &BlockIndex) -> Vec<u32> {
        index.sizes().collect()
    }

    #[test]
    fn test_push_fills_blocks_of_1024_then_opens_a_new_one() {
        let mut index = BlockIndex::default();
        for sk in 0..1024 {
            assert_eq!(index.push(sk), Touched::Blocks(0..1));
        }
        assert_eq!(index.push(1024), Touched::Blocks(1..2));
        assert_eq!(sizes(&index), vec![1024, 1]);
        assert_eq!(index.len(), 1025);
        assert_eq!(index.sort_key(1023), Some(1023));
        assert_eq!(index.sort_key(1024), Some(1024));
        assert_eq!(index.sort_key(1025), None);
    }

    #[test]
    fn test_insert_splits_a_block_exceeding_1024_in_half() {
        let mut index = BlockIndex::from_blocks(vec![(0..1024).collect(), vec![5000, 5001]]);
        assert_eq!(index.insert(10, 9999), Touched::From(0));
        assert_eq!(sizes(&index), vec![512, 513, 2]);
        assert_eq!(index.len(), 1027);
        assert_eq!(index.sort_key(10), Some(9999));
        assert_eq!(index.sort_key(11), Some(10));
        assert_eq!(index.sort_key(512), Some(511));
        assert_eq!(index.sort_key(1025), Some(5000));
        let flat: Vec<u64> = index.all_sort_keys().collect();
        let mut expected: Vec<u64> = (0..10).chain([9999]).chain(10..1024).collect();
        expected.extend([5000, 5001]);
        assert_eq!(flat, expected);
    }

    #[test]
    fn test_insert_goes_into_the_block_holding_the_position() {
        let mut index = BlockIndex::from_blocks(vec![vec![0, 1], vec![2, 3]]);
        // Position 2 is the first row of block 1, not the end of block 0.
        assert_eq!(index.insert(2, 7), Touched::Blocks(1..2));
        assert_eq!(sizes(&index), vec![2, 3]);
        // At the end: the last block, like the reference's `_find_block(len)`.
        assert_eq!(index.insert(5, 8), Touched::Blocks(1..2));
        assert_eq!(
            index.all_sort_keys().collect::<Vec<_>>(),
            vec![0, 1, 7, 2, 3, 8]
        );
        let mut empty = BlockIndex::default();
        assert_eq!(empty.insert(0, 3), Touched::Blocks(0..1));
        assert_eq!(empty.all_sort_keys().collect::<Vec<_>>(), vec![3]);
    }

    #[test]
    fn test_insert_at_the_end_of_a_full_last_block_splits_it() {
        let mut index = BlockIndex::from_blocks(vec![(0..1024).collect()]);
        assert_eq!(index.insert(1024, 2000), Touched::From(0));
        assert_eq!(sizes(&index), vec![512, 513]);
        assert_eq!(index.sort_key(1024), Some(2000));
    }

    #[test]
    fn test_remove_inside_one_block_keeps_the_numbering() {
        let mut index = BlockIndex::from_blocks(vec![vec![0, 1, 2], vec![3, 4]]);
        let (removed, touched) = index.remove_range(1, 2);
        assert_eq!(removed, vec![1]);
        assert_eq!(touched, Touched::Blocks(0..1));
        assert_eq!(sizes(&index), vec![2, 2]);
        assert_eq!(index.sort_key(2), Some(3));
    }

    #[test]
    fn test_an_emptied_block_is_removed_and_later_blocks_renumbered() {
        let mut index = BlockIndex::from_blocks(vec![vec![0, 1], vec![2], vec![3, 4]]);
        let (removed, touched) = index.remove_range(2, 3);
        assert_eq!(removed, vec![2]);
        assert_eq!(touched, Touched::From(1));
        assert_eq!(sizes(&index), vec![2, 2]);
        assert_eq!(index.sort_key(2), Some(3));
        assert_eq!(index.len(), 4);
    }

    #[test]
    fn test_remove_across_blocks_matches_deleting_row_by_row() {
        let blocks = vec![vec![0, 1, 2], vec![3, 4], vec![5], vec![6, 7, 8], vec![9]];
        for start in 0..10u64 {
            for stop in start + 1..=10 {
                let mut bulk = BlockIndex::from_blocks(blocks.clone());
                let (removed, _) = bulk.remove_range(start, stop);
                assert_eq!(removed, (start..stop).collect::<Vec<_>>());
                // The reference: delete(i) for i in reversed(range(start, stop)).
                let mut one_by_one = BlockIndex::from_blocks(blocks.clone());
                for i in (start..stop).rev() {
                    one_by_one.remove_range(i, i + 1);
                }
                assert_eq!(bulk, one_by_one, "{start}..{stop}");
            }
        }
    }

    #[test]
    fn test_remove_touches_only_changed_blocks_unless_one_empties() {
        let mut index = BlockIndex::from_blocks(vec![vec![0, 1], vec![2, 3], vec![4, 5]]);
        assert_eq!(index.remove_range(1, 3).1, Touched::Blocks(0..2));
        assert_eq!(index.remove_range(1, 3).1, Touched::From(1));
        assert_eq!(index.all_sort_keys().collect::<Vec<_>>(), vec![0, 5]);
        assert_eq!(sizes(&index), vec![1, 1]);
        assert_eq!(index.remove_range(0, 2).1, Touched::From(0));
        assert!(index.is_empty());
        assert_eq!(index.n_blocks(), 0);
    }

    #[test]
    fn test_sort_keys_of_a_range_cross_block_borders() {
        let index = BlockIndex::from_blocks(vec![vec![10, 11], vec![12], vec![13, 14]]);
        assert_eq!(index.sort_keys(1, 4).collect::<Vec<_>>(), vec![11, 12, 13]);
        assert_eq!(
            index.sort_keys(0, 5).collect::<Vec<_>>(),
            vec![10, 11, 12, 13, 14]
        );
        assert_eq!(index.sort_keys(3, 3).count(), 0);
        assert_eq!(index.sort_keys(5, 5).count(), 0);
    }

    #[test]
    fn test_clear_empties_the_index() {
        let mut index = BlockIndex::from_blocks(vec![vec![1, 2]]);
        assert_eq!(index.clear(), Touched::From(0));
        assert_eq!(index, BlockIndex::default());
    }
}
