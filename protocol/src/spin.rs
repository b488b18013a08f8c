//! Who may busy-poll: a machine-wide count of waiters that are spinning right now.
//!
//! A bounded busy-poll on both ends of a connection removes the ~30 µs wake-up of a
//! blocked peer (`notes/ipc-floor.md`), but only while there are free cores: eight clients
//! spinning on two cores take the CPU from the daemon thread that would answer them, and
//! every round trip gets slower (17 → 70-120 µs per `db[i]` measured). So every waiter —
//! client or daemon connection thread, in any process — first takes a seat in a shared
//! counter; it spins only if fewer waiters than this machine has cores already spin, and
//! otherwise blocks at once, handing its core to whoever will answer.
//!
//! The counter lives in a small file beside the daemon's socket (`<socket>.spin`), mapped
//! shared by the daemon and every client of it ([`attach`]). Without one (a stream that
//! was never attached, or a file that cannot be mapped) a per-process counter serves the
//! same purpose within the process. A seat is held only for the ≤ 50 µs of one spin; a
//! process killed during that window leaves its seat taken, which only makes spinning
//! rarer, and the daemon zeroes the counter when it starts. `ASEBYTES_SPIN_GATE=0` turns
//! the gate off (everyone spins, the old behaviour, for comparison).
//!
//! Seats alone are not enough: eight readers on two cores keep both cores busy decoding
//! and answering even when only two of them spin, and a spinner then holds a core the
//! answer needs (measured: the gate alone changed nothing, 0.99× the ungated aggregate).
//! So a waiter also needs the machine to have a free core: the kernel's count of runnable
//! tasks (`/proc/loadavg`, read at most once a millisecond per process) must not exceed
//! the cores. A lone reader on a quiet machine still spins; a crowded one blocks at once.

use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Instant;

/// Bytes of the shared file: one counter, padded to a cache line.
const FILE_LEN: usize = 64;

/// The per-process counter used until (or unless) a shared one is attached.
static LOCAL: AtomicU32 = AtomicU32::new(0);
/// The shared counter, once attached.
static SHARED: OnceLock<&'static AtomicU32> = OnceLock::new();
/// How many may spin at once, and whether the gate is on.
static LIMIT: OnceLock<Option<u32>> = OnceLock::new();

fn limit() -> Option<u32> {
    *LIMIT.get_or_init(|| {
        let off = std::env::var("ASEBYTES_SPIN_GATE").is_ok_and(|v| v == "0" || v == "off");
        if off {
            return None;
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Some(u32::try_from(cores).unwrap_or(u32::MAX))
    })
}

/// How often the runnable count is read again (µs).
const CROWDED_EVERY_US: u64 = 1000;
/// When the runnable count was last read (µs since [`EPOCH`], plus one; 0: never).
static CROWDED_AT: AtomicU64 = AtomicU64::new(0);
/// Whether more tasks were runnable than there are cores, at the last read.
static CROWDED: AtomicBool = AtomicBool::new(false);
static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Whether more tasks are runnable machine-wide than there are cores (`max`), read from
/// `/proc/loadavg`'s `running/total` field at most once per [`CROWDED_EVERY_US`]. Where it
/// cannot be read, never crowded (the seats still bound the spinning).
fn crowded(max: u32) -> bool {
    let now = EPOCH.get_or_init(Instant::now).elapsed().as_micros() as u64 + 1;
    let at = CROWDED_AT.load(Ordering::Relaxed);
    if at != 0 && now.saturating_sub(at) < CROWDED_EVERY_US {
        return CROWDED.load(Ordering::Relaxed);
    }
    let crowded = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| runnable(&s))
        .is_some_and(|n| n > max);
    CROWDED.store(crowded, Ordering::Relaxed);
    CROWDED_AT.store(now, Ordering::Relaxed);
    crowded
}

/// The runnable count of a `/proc/loadavg` line (`0.86 1.48 1.60 3/512 12345` → 3).
fn runnable(loadavg: &str) -> Option<u32> {
    loadavg
        .split_whitespace()
        .nth(3)?
        .split('/')
        .next()?
        .parse()
        .ok()
}

fn counter() -> &'static AtomicU32 {
    SHARED.get().copied().unwrap_or(&LOCAL)
}

/// Maps the shared counter at `path` (created if missing, mode 0600). With `reset` the
/// counter starts at zero (the daemon, at start). The first successful attach in a process
/// wins; later calls do nothing. Errors leave the per-process counter in use.
pub fn attach(path: &Path, reset: bool) -> std::io::Result<()> {
    if SHARED.get().is_some() {
        return Ok(());
    }
    let file = crate::published::open_sized(path, FILE_LEN as u64)?;
    // SAFETY: a shared read/write mapping of FILE_LEN bytes of a file at least that long;
    // it is never unmapped (it lives for the process), so the reference stays valid. The
    // kernel page-aligns the address, which satisfies AtomicU32's alignment.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            FILE_LEN,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: see above; the mapping is valid, aligned and shared by design with other
    // processes, which only touch it through atomics.
    let shared: &'static AtomicU32 = unsafe { &*(ptr as *const AtomicU32) };
    if reset {
        shared.store(0, Ordering::Relaxed);
    }
    if SHARED.set(shared).is_err() {
        // Another thread attached first; this mapping stays unused (64 bytes).
    }
    Ok(())
}

/// A seat among the spinning waiters; given back on drop.
#[derive(Debug)]
pub struct Seat(Option<&'static AtomicU32>);

impl Drop for Seat {
    fn drop(&mut self) {
        if let Some(c) = self.0 {
            // Never below zero, even if a reset raced with this seat.
            let _ = c.fetch_update(Ordering::Release, Ordering::Relaxed, |n| n.checked_sub(1));
        }
    }
}

/// A seat if fewer waiters than cores spin now and no more tasks than cores are runnable
/// (always, with the gate off); `None`: block instead of spinning.
pub fn take_seat() -> Option<Seat> {
    let Some(max) = limit() else {
        return Some(Seat(None));
    };
    if crowded(max) {
        return None;
    }
    seat_among(max)
}

/// A seat if fewer than `max` waiters spin now.
fn seat_among(max: u32) -> Option<Seat> {
    let c = counter();
    c.fetch_update(Ordering::Acquire, Ordering::Relaxed, |n| {
        (n < max).then_some(n + 1)
    })
    .ok()
    .map(|_| Seat(Some(c)))
}

/// How many waiters spin right now (tests, status).
pub fn spinning() -> u32 {
    counter().load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runnable_count_is_the_fourth_field_before_the_slash() {
        assert_eq!(runnable("0.86 1.48 1.60 3/512 12345\n"), Some(3));
        assert_eq!(runnable("0.00 0.00 0.00 11/77 6193"), Some(11));
        assert_eq!(runnable("garbage"), None);
        assert_eq!(runnable(""), None);
    }

    /// One test: attaching swaps the counter in use, so the steps must not interleave.
    #[test]
    fn seats_are_bounded_by_the_cores_shared_through_the_file_and_given_back() {
        let path = std::env::temp_dir().join(format!("asebytes-spin-{}.spin", std::process::id()));
        attach(&path, true).unwrap();
        let max = limit().expect("the gate is on in tests") as usize;
        // (Seats alone: whether this machine is crowded right now is not the question.)
        let take = || seat_among(max as u32);
        let seats: Vec<Seat> = std::iter::from_fn(take).take(max + 5).collect();
        assert_eq!(seats.len(), max, "no more seats than cores");
        assert!(take().is_none());
        // Another mapping of the file (another process) sees the same count.
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), FILE_LEN);
        assert_eq!(
            u32::from_ne_bytes(bytes[..4].try_into().unwrap()) as usize,
            max
        );
        drop(seats);
        assert_eq!(spinning(), 0);
        assert!(take().is_some());
        std::fs::remove_file(&path).unwrap();
    }
}
