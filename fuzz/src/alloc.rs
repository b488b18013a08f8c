//! A global allocator that bounds what one fuzz input may make the code under test hold:
//! [`within_limit`] runs one input and aborts the process (a crash libFuzzer reports and
//! saves) the moment live heap bytes exceed the input's limit. Outside it nothing is
//! checked, so libFuzzer's own bookkeeping and the seeds are free.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// What one input may hold beyond what was live before it, whatever its length claims:
/// the frame stream's first read chunk and serde's cautious preallocations (at most 1 MiB
/// per sequence being decoded) fit many times over; a buffer sized by an announced length
/// (up to 1 GiB) does not.
pub const FIXED_LIMIT: usize = 16 << 20;
/// Bytes the limit grows by per input byte: decoded values may be larger than their
/// encoding (a `nil` byte becomes a 32-byte `Value`).
pub const PER_INPUT_BYTE: usize = 64;

/// The allocator; install it with `#[global_allocator]` in each fuzz target.
#[derive(Debug)]
pub struct Limited;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
/// Live bytes allowed while an input runs; `usize::MAX` between inputs.
static CEILING: AtomicUsize = AtomicUsize::new(usize::MAX);

fn over_limit(size: usize) -> ! {
    const MSG: &[u8] =
        b"asebytes-fuzz: an allocation took the live heap beyond this input's limit\n";
    // SAFETY: writes a static buffer to stderr; no allocation happens here.
    unsafe {
        libc::write(2, MSG.as_ptr().cast(), MSG.len());
    }
    let _ = size;
    std::process::abort()
}

fn account(size: usize) {
    let live = LIVE.fetch_add(size, Ordering::Relaxed) + size;
    PEAK.fetch_max(live, Ordering::Relaxed);
    if live > CEILING.load(Ordering::Relaxed) {
        over_limit(size);
    }
}

// SAFETY: forwards every call to the system allocator; only counts bytes.
unsafe impl GlobalAlloc for Limited {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        account(layout.size());
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        account(layout.size());
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            account(new_size - layout.size());
        } else {
            LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// The live-heap limit for an input of `len` bytes.
pub fn limit_for(len: usize) -> usize {
    FIXED_LIMIT + PER_INPUT_BYTE * len
}

/// Runs `f` on an input of `len` bytes with the heap bounded by [`limit_for`]; returns
/// the peak bytes it held.
pub fn within_limit(len: usize, f: impl FnOnce()) -> usize {
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    CEILING.store(base + limit_for(len), Ordering::Relaxed);
    f();
    CEILING.store(usize::MAX, Ordering::Relaxed);
    PEAK.load(Ordering::Relaxed) - base
}
