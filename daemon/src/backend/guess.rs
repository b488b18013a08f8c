//! Sort keys a store has seen, by row position: guesses that let a read of a few rows of a
//! server store (MongoDB, Redis: layouts that map positions to sort keys on the server)
//! name the rows it wants in the same server call that confirms where they are.
//!
//! Layer: shared by the readers and the writer of one store ([`super::mongodb`],
//! [`super::redis`]). A guess is never served on its own word: the read asks for the
//! sort keys at the same positions in the same call (MongoDB: the metadata's slice of
//! `sort_keys`; Redis: `LINDEX` inside the `MULTI`/`EXEC`), and a row is served only when
//! the server names the guessed sort key; otherwise the read asks again for the right rows
//! (one more call, as when nothing is guessed). Sort keys are never reused, so stale
//! guesses, left by another daemon or an asebytes 0.3.3 client that inserted or deleted
//! rows, cost one call, never a wrong row, and the contract's "every acknowledged write is
//! visible to every later read" holds without asking anyone to invalidate anything.
//!
//! Bounded: at most [`CAPACITY`] positions (forgotten all at once when full). Each read
//! learns the slice it brought back, which reaches [`AHEAD`] rows past the last row asked
//! for when those are not known yet, so a walk `db[0], db[1], …` is one call per row after
//! the first.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

/// Most positions remembered (16 bytes each, plus the map's overhead).
pub const CAPACITY: usize = 1 << 16;
/// Sort keys read past the last position asked for, when those are not known yet.
pub const AHEAD: u64 = 256;
/// Sort keys read before the first position asked for, when those are not known yet.
pub const BEHIND: u64 = 32;
/// Widest run of positions one guessed read covers (a wider request reads the sort keys
/// first, then the rows, as without guesses).
pub const MAX_SPAN: u64 = 4096;
/// Most rows one guessed read asks for (the rows come back in one reply, which MongoDB
/// caps at 16 MiB per document but not per batch; larger requests take the plain path).
pub const MAX_ROWS: usize = 64;

/// The positions' sort keys seen last.
#[derive(Debug, Default)]
pub struct Guesses {
    seen: Mutex<HashMap<u64, i64>>,
}

/// A run of positions `start..start + len` of the metadata's `sort_keys` to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// First position.
    pub start: u64,
    /// Positions.
    pub len: u64,
}

impl Guesses {
    fn seen(&self) -> std::sync::MutexGuard<'_, HashMap<u64, i64>> {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The guessed sort key of each position (`None` where none is known).
    pub fn get(&self, positions: &[u64]) -> Vec<Option<i64>> {
        let seen = self.seen();
        positions.iter().map(|p| seen.get(p).copied()).collect()
    }

    /// The slice of `sort_keys` a guessed read of `positions` asks for: the positions'
    /// own run, widened to the rows around it that are not known yet. `None` when the
    /// positions are too many or too spread for one guessed read.
    pub fn window(&self, positions: &[u64]) -> Option<Window> {
        let (&lo, &hi) = (positions.iter().min()?, positions.iter().max()?);
        if positions.len() > MAX_ROWS || hi - lo >= MAX_SPAN {
            return None;
        }
        let seen = self.seen();
        let start = if lo > 0 && !seen.contains_key(&(lo - 1)) {
            lo.saturating_sub(BEHIND)
        } else {
            lo
        };
        let end = if seen.contains_key(&(hi + 1)) {
            hi + 1
        } else {
            hi + 1 + AHEAD
        };
        Some(Window {
            start,
            len: end - start,
        })
    }

    /// Remembers that `sort_keys[start + j] == sks[j]`.
    pub fn learn(&self, start: u64, sks: &[i64]) {
        let mut seen = self.seen();
        if seen.len() + sks.len() > CAPACITY {
            seen.clear();
        }
        for (pos, &sk) in (start..).zip(sks.iter().take(CAPACITY)) {
            seen.insert(pos, sk);
        }
    }

    /// Forgets every guess (rows moved: an insert or delete shifted positions).
    pub fn forget(&self) {
        self.seen().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_unknown_positions_are_not_guessed() {
        let g = Guesses::default();
        assert_eq!(g.get(&[0, 3]), vec![None, None]);
        g.learn(2, &[7, 9]);
        assert_eq!(g.get(&[1, 2, 3, 4]), vec![None, Some(7), Some(9), None]);
        g.forget();
        assert_eq!(g.get(&[2]), vec![None]);
    }

    #[test]
    fn test_the_window_reaches_past_what_is_known_only() {
        let g = Guesses::default();
        assert_eq!(
            g.window(&[0]),
            Some(Window {
                start: 0,
                len: 1 + AHEAD
            })
        );
        assert_eq!(
            g.window(&[100]),
            Some(Window {
                start: 100 - BEHIND,
                len: BEHIND + 1 + AHEAD
            })
        );
        g.learn(0, &(0..300).collect::<Vec<_>>());
        assert_eq!(g.window(&[5, 3]), Some(Window { start: 3, len: 3 }));
        assert_eq!(g.window(&[]), None);
        assert_eq!(g.window(&[0, MAX_SPAN]), None);
        let many: Vec<u64> = (0..=MAX_ROWS as u64).collect();
        assert_eq!(g.window(&many), None);
    }

    #[test]
    fn test_memory_is_bounded() {
        let g = Guesses::default();
        let sks: Vec<i64> = (0..CAPACITY as i64).collect();
        g.learn(0, &sks);
        assert_eq!(g.get(&[0]), vec![Some(0)]);
        g.learn(CAPACITY as u64, &[1]);
        assert_eq!(g.get(&[0, CAPACITY as u64]), vec![None, Some(1)]);
        g.learn(0, &(0..2 * CAPACITY as i64).collect::<Vec<_>>());
        assert_eq!(g.seen().len(), CAPACITY);
    }
}
