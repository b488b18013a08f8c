//! The group-commit window: how long the writer actor holds a batch open for writes that
//! are about to arrive.
//!
//! Layer: inside [`crate::store`], used by [`super::writer`]. Group commit alone merges
//! what is already queued when a batch starts. When several clients each append one row
//! and wait for its acknowledgement, their next rows arrive a few microseconds apart, so
//! the first one would start a batch (and pay a whole flush) alone while the others queue
//! behind it. The window closes that gap: while the previous batch held writes of several
//! commands and its commit took longer than the window (a flush to disk, not a memory
//! store or an `os`-durability commit, where waiting would cost more than it saves), the
//! actor waits up to [`GroupWindow::max_wait`] (default 200 µs, env
//! `ASEBYTES_GROUP_COMMIT_US`, 0 turns it off) for as many commands as that batch had,
//! then commits. A lone writer (previous batch of one) never waits, and the wait follows
//! the number of writers and the cost of a commit batch by batch.

use std::time::Duration;

/// The window when `ASEBYTES_GROUP_COMMIT_US` is unset.
pub const DEFAULT_MAX_WAIT: Duration = Duration::from_micros(200);

/// The longest window the variable may set: a wait beyond this would cost a lone commit
/// more than the flush it saves.
pub const MAX_MAX_WAIT: Duration = Duration::from_millis(10);

/// How long to hold a batch open, learned from the batches before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupWindow {
    /// Longest wait for more writes (zero: never wait).
    pub max_wait: Duration,
    /// Commands in the previous batch (1 at start: nobody waits for a first writer).
    last_batch: usize,
    /// How long the previous batch took to apply and commit.
    last_cost: Duration,
}

impl GroupWindow {
    /// A window of at most `max_wait`.
    pub fn new(max_wait: Duration) -> Self {
        Self {
            max_wait,
            last_batch: 1,
            last_cost: Duration::ZERO,
        }
    }

    /// The window `ASEBYTES_GROUP_COMMIT_US` sets (microseconds, at most
    /// [`MAX_MAX_WAIT`]; an unparsable value keeps the default and says so in the log).
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`GroupWindow::from_env`] over any variable source.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        const VAR: &str = "ASEBYTES_GROUP_COMMIT_US";
        let max_wait = match lookup(VAR).map(|v| (v.trim().parse::<u64>(), v)) {
            None => DEFAULT_MAX_WAIT,
            Some((Ok(us), _)) => Duration::from_micros(us),
            Some((Err(_), v)) => {
                log::warn!("{VAR}={v:?} is not a number of microseconds; using the default");
                DEFAULT_MAX_WAIT
            }
        };
        Self::new(max_wait.min(MAX_MAX_WAIT))
    }

    /// Whether a batch of `have` commands should wait for more (until the window ends)
    /// rather than commit now.
    pub fn waits(&self, have: usize) -> bool {
        let worth_it = !self.max_wait.is_zero() && self.last_cost > self.max_wait;
        worth_it && have < self.last_batch
    }

    /// Records the size of the batch just committed and what its commit cost.
    pub fn committed(&mut self, commands: usize, cost: Duration) {
        self.last_batch = commands.max(1);
        self.last_cost = cost;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A commit that flushes to disk.
    const FLUSH: Duration = Duration::from_millis(2);

    #[test]
    fn test_a_lone_writer_never_waits() {
        let mut w = GroupWindow::new(DEFAULT_MAX_WAIT);
        assert!(!w.waits(1));
        w.committed(1, FLUSH);
        assert!(!w.waits(1));
    }

    #[test]
    fn test_the_window_follows_the_number_of_writers() {
        let mut w = GroupWindow::new(DEFAULT_MAX_WAIT);
        w.committed(4, FLUSH);
        assert!(w.waits(1));
        assert!(!w.waits(4));
        w.committed(2, FLUSH); // two writers left: wait for the two that remain
        assert!(w.waits(1));
        w.committed(0, FLUSH);
        assert!(!w.waits(1));
    }

    #[test]
    fn test_cheap_commits_never_wait() {
        let mut w = GroupWindow::new(DEFAULT_MAX_WAIT);
        w.committed(4, Duration::from_micros(30)); // memory, or an `os`-durability commit
        assert!(!w.waits(1));
    }

    #[test]
    fn test_zero_turns_it_off_and_the_variable_is_read() {
        let mut off = GroupWindow::from_lookup(|_| Some("0".into()));
        off.committed(8, FLUSH);
        assert!(!off.waits(1));
        let set = GroupWindow::from_lookup(|_| Some(" 50 ".into()));
        assert_eq!(set.max_wait, Duration::from_micros(50));
        let capped = GroupWindow::from_lookup(|_| Some("1000000".into()));
        assert_eq!(capped.max_wait, MAX_MAX_WAIT);
        let bad = GroupWindow::from_lookup(|_| Some("soon".into()));
        assert_eq!(bad.max_wait, DEFAULT_MAX_WAIT);
        assert_eq!(
            GroupWindow::from_lookup(|_| None).max_wait,
            DEFAULT_MAX_WAIT
        );
    }
}
