//! Idle exit: counts live connections and, when there have been none for the idle timeout,
//! triggers the [`Shutdown`]. A timeout of zero means never (sccache's convention).
//!
//! Open stores without connections do not keep the daemon alive: a later client re-opens
//! them (memory stores are lost with the daemon; that is documented). Owned by
//! [`crate::server`], which hands a [`Busy`] guard to every connection thread.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::shutdown::{Reason, Shutdown};

/// Connection counter with an idle deadline.
#[derive(Clone, Debug)]
pub struct IdleTimer {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    limit: Option<Duration>,
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Debug)]
struct State {
    active: usize,
    idle_since: Instant,
    stopped: bool,
}

/// Marks one live connection; dropping it may start the idle countdown.
#[derive(Debug)]
pub struct Busy {
    inner: Arc<Inner>,
}

impl IdleTimer {
    /// A timer that fires after `limit` without connections (`None`: never).
    pub fn new(limit: Option<Duration>) -> Self {
        Self {
            inner: Arc::new(Inner {
                limit,
                state: Mutex::new(State {
                    active: 0,
                    idle_since: Instant::now(),
                    stopped: false,
                }),
                changed: Condvar::new(),
            }),
        }
    }

    /// Counts a new connection until the guard is dropped.
    pub fn busy(&self) -> Busy {
        self.inner.lock().active += 1;
        Busy {
            inner: self.inner.clone(),
        }
    }

    /// Live connections right now.
    pub fn active(&self) -> usize {
        self.inner.lock().active
    }

    /// Waits for idle expiry on a thread of its own and triggers `shutdown` then; returns
    /// `None` when idle exit is disabled. The thread ends at expiry or at [`Self::stop`].
    pub fn spawn_watcher(&self, shutdown: Shutdown) -> std::io::Result<Option<JoinHandle<()>>> {
        let Some(limit) = self.inner.limit else {
            return Ok(None);
        };
        let inner = self.inner.clone();
        std::thread::Builder::new()
            .name("asebytesd-idle".into())
            .spawn(move || {
                let mut st = inner.lock();
                loop {
                    if st.stopped {
                        return;
                    }
                    if st.active > 0 {
                        st = inner
                            .changed
                            .wait(st)
                            .unwrap_or_else(PoisonError::into_inner);
                        continue;
                    }
                    let deadline = st.idle_since + limit;
                    let now = Instant::now();
                    if now >= deadline {
                        drop(st);
                        log::info!("no connections for {}s; shutting down", limit.as_secs());
                        shutdown.trigger(Reason::Idle);
                        return;
                    }
                    st = inner
                        .changed
                        .wait_timeout(st, deadline - now)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
            })
            .map(Some)
    }

    /// Ends the watcher thread without firing.
    pub fn stop(&self) {
        self.inner.lock().stopped = true;
        self.inner.changed.notify_all();
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let mut st = self.inner.lock();
        st.active -= 1;
        if st.active == 0 {
            st.idle_since = Instant::now();
            self.inner.changed.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wait_triggered(s: &Shutdown, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if s.is_triggered() {
                return true;
            }
            crate::shutdown::wait_readable(&[s.wake_fd()], 10).unwrap();
        }
        s.is_triggered()
    }

    #[test]
    fn fires_after_the_last_connection_leaves() {
        let timer = IdleTimer::new(Some(Duration::from_millis(50)));
        let shutdown = Shutdown::new().unwrap();
        let guard = timer.busy();
        let start = Instant::now();
        let watcher = timer.spawn_watcher(shutdown.clone()).unwrap().unwrap();
        assert!(
            !wait_triggered(&shutdown, Duration::from_millis(150)),
            "fired while a connection was live"
        );
        assert_eq!(timer.active(), 1);
        drop(guard);
        assert!(wait_triggered(&shutdown, Duration::from_secs(10)));
        assert!(start.elapsed() >= Duration::from_millis(200));
        assert_eq!(shutdown.reason(), Some(Reason::Idle));
        watcher.join().unwrap();
    }

    #[test]
    fn zero_means_never_and_stop_ends_the_watcher() {
        let shutdown = Shutdown::new().unwrap();
        assert!(
            IdleTimer::new(None)
                .spawn_watcher(shutdown.clone())
                .unwrap()
                .is_none()
        );
        let timer = IdleTimer::new(Some(Duration::from_secs(3600)));
        let watcher = timer.spawn_watcher(shutdown.clone()).unwrap().unwrap();
        timer.stop();
        watcher.join().unwrap();
        assert!(!shutdown.is_triggered());
    }
}
