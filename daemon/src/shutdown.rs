//! The shutdown signal: one flag every thread can check, plus a self-pipe the accept loop
//! waits on, so a `Shutdown` request, the idle timer or SIGTERM/SIGINT all wake it the
//! same way.
//!
//! Used by [`crate::server`] (waits on it), `connection` (checks it between
//! frames, triggers it for a `Shutdown` request) and [`crate::idle`] (triggers it).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// Why the daemon is shutting down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// A client sent `Shutdown` (`asebytesd stop`).
    Requested,
    /// No connection for the idle timeout.
    Idle,
    /// SIGTERM or SIGINT.
    Signal(i32),
}

/// A cloneable, one-shot shutdown trigger.
#[derive(Clone, Debug)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    triggered: AtomicBool,
    reason: Mutex<Option<Reason>>,
    wake_read: OwnedFd,
    wake_write: OwnedFd,
}

/// Write end of the pipe of the [`Shutdown`] that receives signals; -1 when none does.
/// A signal handler may only touch atomics and call async-signal-safe functions.
static SIGNAL_FD: AtomicI32 = AtomicI32::new(-1);
/// The last signal caught, 0 for none.
static SIGNAL_NO: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(sig: libc::c_int) {
    SIGNAL_NO.store(sig, Ordering::SeqCst);
    let fd = SIGNAL_FD.load(Ordering::SeqCst);
    if fd >= 0 {
        // SAFETY: write(2) is async-signal-safe; the buffer is a valid one-byte static.
        unsafe { libc::write(fd, b"s".as_ptr().cast(), 1) };
    }
}

impl Shutdown {
    /// A fresh, untriggered signal.
    pub fn new() -> io::Result<Self> {
        let mut fds = [0; 2];
        // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe2 succeeded, so both fds are open and owned by nobody else.
        let (wake_read, wake_write) =
            unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        Ok(Self {
            inner: Arc::new(Inner {
                triggered: AtomicBool::new(false),
                reason: Mutex::new(None),
                wake_read,
                wake_write,
            }),
        })
    }

    /// Starts the shutdown (idempotent: the first reason is kept).
    pub fn trigger(&self, reason: Reason) {
        {
            let mut r = self
                .inner
                .reason
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if r.is_none() {
                *r = Some(reason);
            }
        }
        self.inner.triggered.store(true, Ordering::SeqCst);
        self.wake();
    }

    /// Whether the shutdown has started.
    pub fn is_triggered(&self) -> bool {
        self.inner.triggered.load(Ordering::SeqCst)
    }

    /// Why the shutdown started, if it has.
    pub fn reason(&self) -> Option<Reason> {
        *self
            .inner
            .reason
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Routes SIGTERM and SIGINT to this signal (for the process's one daemon). A second
    /// SIGINT gets the default action, so a stuck shutdown can still be interrupted.
    pub fn install_signal_handlers(&self) -> io::Result<()> {
        SIGNAL_FD.store(self.inner.wake_write.as_raw_fd(), Ordering::SeqCst);
        for sig in [libc::SIGTERM, libc::SIGINT] {
            // SAFETY: a zeroed sigaction is valid; we set a handler that only touches
            // atomics and write(2), and pass valid pointers.
            unsafe {
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
                sa.sa_flags = libc::SA_RESTART | libc::SA_RESETHAND;
                libc::sigemptyset(&mut sa.sa_mask);
                if libc::sigaction(sig, &sa, std::ptr::null_mut()) != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
        }
        Ok(())
    }

    /// The fd that becomes readable when the shutdown is triggered or a signal arrives.
    pub(crate) fn wake_fd(&self) -> RawFd {
        self.inner.wake_read.as_raw_fd()
    }

    /// Empties the wake pipe and turns a caught signal into a trigger. Called by the
    /// waiter after [`Self::wake_fd`] became readable.
    pub(crate) fn absorb_wakeups(&self) {
        let mut buf = [0u8; 64];
        // SAFETY: reading into a valid local buffer from our own non-blocking pipe.
        while unsafe { libc::read(self.wake_fd(), buf.as_mut_ptr().cast(), buf.len()) } > 0 {}
        if SIGNAL_FD.load(Ordering::SeqCst) == self.inner.wake_write.as_raw_fd() {
            let sig = SIGNAL_NO.swap(0, Ordering::SeqCst);
            if sig != 0 {
                self.trigger(Reason::Signal(sig));
            }
        }
    }

    fn wake(&self) {
        // SAFETY: writing one byte from a valid static buffer to our own pipe; a full pipe
        // (EAGAIN) already guarantees a wake-up.
        unsafe { libc::write(self.inner.wake_write.as_raw_fd(), b"w".as_ptr().cast(), 1) };
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The fd number may be reused after close; stop the handler writing to it.
        let _ = SIGNAL_FD.compare_exchange(
            self.wake_write.as_raw_fd(),
            -1,
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
    }
}

/// Waits until one of `fds` is readable (or hung up) or `timeout_ms` passes (-1 = forever);
/// returns, per fd, whether it is ready.
pub(crate) fn wait_readable(fds: &[RawFd], timeout_ms: i32) -> io::Result<Vec<bool>> {
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    loop {
        // SAFETY: `pfds` is a valid array of `pfds.len()` pollfd structs.
        let r = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, timeout_ms) };
        if r >= 0 {
            return Ok(pfds.iter().map(|p| p.revents != 0).collect());
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trigger_keeps_first_reason_and_wakes_the_waiter() {
        let s = Shutdown::new().unwrap();
        assert!(!s.is_triggered());
        assert_eq!(wait_readable(&[s.wake_fd()], 0).unwrap(), vec![false]);
        let t = s.clone();
        std::thread::spawn(move || t.trigger(Reason::Idle))
            .join()
            .unwrap();
        s.trigger(Reason::Requested);
        assert!(s.is_triggered());
        assert_eq!(s.reason(), Some(Reason::Idle));
        assert_eq!(wait_readable(&[s.wake_fd()], 1000).unwrap(), vec![true]);
        s.absorb_wakeups();
        assert_eq!(wait_readable(&[s.wake_fd()], 0).unwrap(), vec![false]);
    }
}
