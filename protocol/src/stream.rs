//! A blocking frame stream over a Unix socket, used by both the daemon's connection
//! threads and the client.
//!
//! Waiting for the next frame first busy-polls (non-blocking `recv` with a CPU relax hint)
//! for a short bounded time, then blocks. On these machines a peer blocked on another CPU
//! takes ~30 µs to wake, which would dwarf everything else a request costs
//! (`notes/ipc-floor.md`); spinning only while a conversation is active and backing off to
//! a blocking read keeps an idle peer at zero CPU.
//!
//! Memory follows the bytes that actually arrive, not the length a frame announces: the
//! receive buffer at most doubles per growth, and a stream given a [`MemoryBudget`]
//! reserves every growth there first. Optional time limits bound how long a peer may leave
//! a frame unfinished ([`FrameStream::set_stall_timeout`]) and how long a whole frame may
//! take ([`FrameStream::recv_by`]); without them a wait costs no extra system call.

use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use crate::budget::MemoryBudget;
use crate::error::{Error, Result};
use crate::frame::{HEADER_LEN, body_len};
use crate::spin;

/// Default busy-poll budget before a blocking read.
pub const DEFAULT_SPIN: Duration = Duration::from_micros(50);

/// The busy-poll budget in force: `ASEBYTES_SPIN_US` (microseconds, 0 disables) or the default.
pub fn spin_budget() -> Duration {
    std::env::var("ASEBYTES_SPIN_US")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_micros)
        .unwrap_or(DEFAULT_SPIN)
}

/// Frames over one connected Unix socket.
#[derive(Debug)]
pub struct FrameStream {
    sock: UnixStream,
    /// Receive buffer; only `buf[pos..end]` holds unread data. Its length only grows, so
    /// no frame pays for zero-filling memory that a previous frame already initialised.
    buf: Vec<u8>,
    /// Start of unread bytes.
    pos: usize,
    /// End of received bytes.
    end: usize,
    spin: Duration,
    /// Where growth beyond the first chunk is reserved, if anywhere.
    budget: Option<MemoryBudget>,
    /// Longest wait for more bytes once a frame has begun.
    stall: Option<Duration>,
}

const READ_CHUNK: usize = 64 * 1024;

/// A short pause between polls. Each poll is already a syscall (~0.3 µs); a longer pause
/// only delays noticing what arrived (32 pauses took ~0.8 µs on these CPUs and added
/// ~0.7 µs to every round trip).
fn relax() {
    for _ in 0..2 {
        std::hint::spin_loop();
    }
}

impl FrameStream {
    /// Wraps a connected, blocking socket.
    pub fn new(sock: UnixStream) -> Self {
        Self {
            sock,
            buf: vec![0; READ_CHUNK],
            pos: 0,
            end: 0,
            spin: spin_budget(),
            budget: None,
            stall: None,
        }
    }

    /// Counts growth of the receive buffer beyond its first chunk against `budget`; a frame
    /// that needs more than the budget has left fails with an `OutOfMemory` i/o error.
    pub fn set_budget(&mut self, budget: MemoryBudget) {
        self.release_growth();
        self.buf.truncate(READ_CHUNK);
        self.buf.shrink_to_fit();
        self.budget = Some(budget);
    }

    /// Limits each wait for more bytes of a frame that has begun (`None`: no limit); a peer
    /// that stalls longer gets a `TimedOut` i/o error. Waiting between frames stays unbounded.
    pub fn set_stall_timeout(&mut self, stall: Option<Duration>) {
        self.stall = stall;
    }

    /// Bytes the receive buffer holds (allocated), for tests and status.
    pub fn buffer_len(&self) -> usize {
        self.buf.len()
    }

    /// The underlying socket.
    pub fn socket(&self) -> &UnixStream {
        &self.sock
    }

    /// Sets the busy-poll budget (zero disables spinning).
    pub fn set_spin(&mut self, spin: Duration) {
        self.spin = spin;
    }

    /// Writes one complete frame (prefix included, as [`crate::frame::encode`] makes it).
    ///
    /// A frame larger than the socket buffer is written as the peer drains it; while the
    /// buffer is full the sender busy-polls (within the budget) rather than sleeping, so a
    /// peer reading on another CPU never waits for this thread to be woken.
    pub fn send(&mut self, frame: &[u8]) -> Result<()> {
        let mut rest = frame;
        while !rest.is_empty() {
            match self.spin_send(rest) {
                Ok(Some(n)) => rest = &rest[n..],
                // The buffer stayed full for the whole budget: block until it drains.
                Ok(None) => {
                    let n = self.sock.write(rest)?;
                    rest = &rest[n..];
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Non-blocking `send` until some bytes go out or the budget runs out (`Ok(None)`).
    /// Once the socket is full it polls only with a seat among the spinning waiters
    /// ([`spin::take_seat`]); without one it returns at once and the caller blocks.
    fn spin_send(&mut self, data: &[u8]) -> io::Result<Option<usize>> {
        let fd = self.sock.as_raw_fd();
        let mut deadline = None;
        let mut seat = None;
        loop {
            // SAFETY: `data` is a valid, readable buffer of `data.len()` bytes.
            let r = unsafe {
                libc::send(
                    fd,
                    data.as_ptr().cast(),
                    data.len(),
                    libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                )
            };
            if r >= 0 {
                return Ok(Some(r as usize));
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::WouldBlock {
                return Err(err);
            }
            if seat.is_none() {
                seat = spin::take_seat();
                if seat.is_none() {
                    return Ok(None);
                }
            }
            let now = Instant::now();
            if now >= *deadline.get_or_insert(now + self.spin) {
                return Ok(None);
            }
            relax();
        }
    }

    /// Reads the next frame body, at most `max` bytes long.
    ///
    /// Returns [`Error::Closed`] if the peer closed cleanly between frames and an
    /// `UnexpectedEof` i/o error if it closed inside one.
    pub fn recv(&mut self, max: usize) -> Result<&[u8]> {
        self.recv_by(max, None)
    }

    /// [`Self::recv`], failing with a `TimedOut` i/o error if the whole frame has not
    /// arrived by `deadline` (`None`: no deadline). The daemon bounds the handshake so.
    pub fn recv_by(&mut self, max: usize, deadline: Option<Instant>) -> Result<&[u8]> {
        self.compact();
        self.fill_to(HEADER_LEN, true, deadline)?;
        let header: [u8; HEADER_LEN] = self.buf[self.pos..self.pos + HEADER_LEN]
            .try_into()
            .expect("header");
        let len = body_len(header, max)?;
        self.fill_to(HEADER_LEN + len, false, deadline)?;
        let start = self.pos + HEADER_LEN;
        self.pos = start + len;
        Ok(&self.buf[start..start + len])
    }

    /// Moves unread bytes to the front, and returns memory a huge frame left behind.
    fn compact(&mut self) {
        if self.pos == self.end {
            self.pos = 0;
            self.end = 0;
        } else if self.pos > 0 {
            self.buf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.pos = 0;
        }
        if self.buf.len() > 16 * READ_CHUNK && self.end < READ_CHUNK {
            self.release_growth();
            self.buf.truncate(READ_CHUNK);
            self.buf.shrink_to_fit();
        }
    }

    /// Returns the budget's share of the buffer (everything beyond the first chunk).
    fn release_growth(&mut self) {
        if let Some(budget) = &self.budget {
            budget.release(self.buf.len().saturating_sub(READ_CHUNK));
        }
    }

    /// Makes room for more bytes of a frame that ends at `target`: room for what is
    /// pipelined behind a small frame, and for a large one at most double what has
    /// arrived, so an announced length alone never allocates anything.
    fn grow(&mut self, target: usize) -> Result<()> {
        let old = self.buf.len();
        let floor = self.end + READ_CHUNK;
        let new = target.max(floor).min(self.end.saturating_mul(2).max(floor));
        if new <= old {
            return Ok(());
        }
        if let Some(budget) = &self.budget {
            let wanted = new - old;
            if !budget.try_reserve(wanted) {
                let msg = format!(
                    "the receive buffers of all connections would exceed their limit of {} \
                     bytes ({} in use, {wanted} more wanted)",
                    budget.limit(),
                    budget.used(),
                );
                return Err(io::Error::new(io::ErrorKind::OutOfMemory, msg).into());
            }
        }
        self.buf.resize(new, 0);
        Ok(())
    }

    /// Ensures `n` unread bytes are buffered.
    fn fill_to(&mut self, n: usize, at_frame_start: bool, deadline: Option<Instant>) -> Result<()> {
        let target = self.pos + n;
        while self.end < target {
            if self.end == self.buf.len() {
                self.grow(target)?;
            }
            let in_frame = !at_frame_start || self.end > self.pos;
            // Every wait spins first, also inside a frame: a large frame arrives in pieces
            // as the sender fills the socket buffer, and sleeping between pieces would cost
            // a wake-up each.
            let got = match self.spin_read(self.end) {
                Ok(None) => match self.wait_readable(in_frame, deadline) {
                    Ok(()) => self.sock.read(&mut self.buf[self.end..]),
                    Err(e) => Err(e),
                },
                Ok(Some(k)) => Ok(k),
                Err(e) => Err(e),
            };
            match got {
                Ok(0) => {
                    return if at_frame_start && self.end == self.pos {
                        Err(Error::Closed)
                    } else {
                        Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "peer closed inside a frame",
                        )
                        .into())
                    };
                }
                Ok(k) => self.end += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Before a blocking read: waits until the socket is readable within the time limits
    /// that apply (the stall timeout inside a frame, the caller's deadline), or fails with
    /// `TimedOut`. Returns at once, without a system call, when no limit applies.
    fn wait_readable(&self, in_frame: bool, deadline: Option<Instant>) -> io::Result<()> {
        let stall = self.stall.filter(|_| in_frame).map(|s| Instant::now() + s);
        let limit = match (stall, deadline) {
            (None, None) => return Ok(()),
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) | (None, Some(a)) => a,
        };
        let mut pfd = libc::pollfd {
            fd: self.sock.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        loop {
            let left = limit.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let what = if deadline == Some(limit) {
                    "the peer did not complete a frame in time"
                } else {
                    "the peer stalled inside a frame"
                };
                return Err(io::Error::new(io::ErrorKind::TimedOut, what));
            }
            let ms = left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
            // SAFETY: one valid pollfd, count 1.
            let r = unsafe { libc::poll(&mut pfd, 1, ms) };
            if r > 0 {
                return Ok(());
            }
            if r < 0 {
                let err = io::Error::last_os_error();
                if err.kind() != io::ErrorKind::Interrupted {
                    return Err(err);
                }
            }
        }
    }

    /// Polls with non-blocking `recv` until data arrives or the budget runs out.
    /// `Ok(None)` means nothing arrived in time (the caller then blocks). The first poll
    /// is free; polling on needs a seat among the spinning waiters ([`spin::take_seat`]),
    /// so more waiters than cores block instead of taking the core their answer needs.
    fn spin_read(&mut self, at: usize) -> io::Result<Option<usize>> {
        if self.spin.is_zero() {
            return Ok(None);
        }
        let fd = self.sock.as_raw_fd();
        let deadline = Instant::now() + self.spin;
        let mut seat = None;
        loop {
            let dst = &mut self.buf[at..];
            // SAFETY: `dst` is a valid, writable buffer of `dst.len()` bytes owned by us.
            let r =
                unsafe { libc::recv(fd, dst.as_mut_ptr().cast(), dst.len(), libc::MSG_DONTWAIT) };
            if r >= 0 {
                return Ok(Some(r as usize));
            }
            let err = io::Error::last_os_error();
            match err.kind() {
                io::ErrorKind::WouldBlock => {}
                io::ErrorKind::Interrupted => continue,
                _ => return Err(err),
            }
            if seat.is_none() {
                seat = spin::take_seat();
                if seat.is_none() {
                    return Ok(None);
                }
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            relax();
        }
    }
}

impl Drop for FrameStream {
    fn drop(&mut self) {
        self.release_growth();
    }
}
