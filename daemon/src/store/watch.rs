//! The commit watch of one store: a generation the writer actor bumps after every commit,
//! and a condition variable that wakes whoever waits for it (live follow).
//!
//! Layer: inside [`crate::store`]; bumped by [`super::writer`], waited on by
//! [`super::StoreHandle::follow`] on a connection thread. Nothing is queued per waiter:
//! a waiter learns *that* the store changed and reads the new length itself, so a slow
//! follower can never make the daemon buffer anything.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

#[derive(Debug, Default)]
struct State {
    generation: u64,
    /// Threads waiting in [`CommitWatch::wait_past`] now (followers, for `status`).
    waiting: u64,
    /// No more commits will come on this handle (shut down, removed, or the daemon is
    /// stopping): every wait returns at once.
    stopped: bool,
}

/// See the module docs.
#[derive(Debug, Default)]
pub(crate) struct CommitWatch {
    state: Mutex<State>,
    changed: Condvar,
}

impl CommitWatch {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The current generation.
    pub(crate) fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// A commit happened: bump the generation and wake every waiter.
    pub(crate) fn bump(&self) {
        self.lock().generation += 1;
        self.changed.notify_all();
    }

    /// No commit will follow on this handle: wake every waiter now and make later waits
    /// return at once.
    pub(crate) fn stop(&self) {
        self.lock().stopped = true;
        self.changed.notify_all();
    }

    /// Waits until the generation differs from `seen`, the watch is stopped, or
    /// `deadline` passes; returns the generation then. Spurious wake-ups are absorbed.
    pub(crate) fn wait_past(&self, seen: u64, deadline: Instant) -> u64 {
        let mut st = self.lock();
        st.waiting += 1;
        while st.generation == seen && !st.stopped {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            st = self
                .changed
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        st.waiting -= 1;
        st.generation
    }

    /// How many threads wait for a commit now.
    pub(crate) fn waiting(&self) -> u64 {
        self.lock().waiting
    }

    /// Whether [`CommitWatch::stop`] was called.
    pub(crate) fn is_stopped(&self) -> bool {
        self.lock().stopped
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_bump_wakes_a_waiter_at_once() {
        let watch = Arc::new(CommitWatch::default());
        let seen = watch.generation();
        let w = watch.clone();
        let waiter = std::thread::spawn(move || {
            let t = Instant::now();
            let g = w.wait_past(seen, Instant::now() + Duration::from_secs(30));
            (g, t.elapsed())
        });
        std::thread::sleep(Duration::from_millis(20));
        watch.bump();
        let (g, waited) = waiter.join().unwrap();
        assert_eq!(g, seen + 1);
        assert!(waited < Duration::from_secs(10), "{waited:?}");
    }

    #[test]
    fn a_wait_returns_at_its_deadline_or_at_once_when_stopped() {
        let watch = CommitWatch::default();
        let t = Instant::now();
        assert_eq!(watch.wait_past(0, t + Duration::from_millis(30)), 0);
        assert!(t.elapsed() >= Duration::from_millis(30));
        watch.stop();
        assert!(watch.is_stopped());
        let t = Instant::now();
        watch.wait_past(0, t + Duration::from_secs(30));
        assert!(t.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn a_commit_before_the_wait_is_not_missed() {
        let watch = CommitWatch::default();
        let seen = watch.generation();
        watch.bump();
        let t = Instant::now();
        assert_eq!(watch.wait_past(seen, t + Duration::from_secs(30)), seen + 1);
        assert!(t.elapsed() < Duration::from_secs(10));
    }
}
