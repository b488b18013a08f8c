//! The decoders never allocate more than a constant factor of their input, however the
//! input lies about lengths: the value codec's tree decoder, and request decoding (measured
//! with a counting allocator, so this is its own test binary).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use asebytes_protocol::codec::decode;

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator and only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), Ordering::SeqCst) + layout.size();
        PEAK.fetch_max(live, Ordering::SeqCst);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::SeqCst);
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// The counters are global: tests of this binary measure one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Peak bytes allocated while decoding `bytes` (the result is dropped).
fn peak_of(bytes: &[u8]) -> usize {
    peak_while(|| drop(decode(bytes)))
}

/// Runs one test alone among this binary's tests.
fn alone() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Peak bytes allocated while `f` runs.
fn peak_while(f: impl FnOnce()) -> usize {
    let base = LIVE.load(Ordering::SeqCst);
    PEAK.store(base, Ordering::SeqCst);
    f();
    PEAK.load(Ordering::SeqCst) - base
}

#[test]
fn nested_containers_announcing_huge_lengths_allocate_little() {
    let _alone = alone();
    // 500 nested array32 / map32 headers, each announcing as many items as bytes remain,
    // then 64 KiB of nils: every level's claim passes the "enough bytes left" check.
    for is_map in [false, true] {
        let depth = 500;
        let tail = 1 << 16;
        let mut bytes = Vec::new();
        for level in 0..depth {
            let remaining = ((depth - level) * 7 + tail) as u32;
            if is_map {
                bytes.push(0xdf);
                bytes.extend_from_slice(&(remaining / 4).to_be_bytes());
                bytes.extend_from_slice(b"\xa1k");
            } else {
                bytes.push(0xdd);
                bytes.extend_from_slice(&(remaining / 2).to_be_bytes());
            }
        }
        bytes.extend(std::iter::repeat_n(0xc0u8, tail));
        let peak = peak_of(&bytes);
        assert!(
            peak < 400 * bytes.len(),
            "decoding {} bytes peaked at {peak} bytes",
            bytes.len()
        );
    }
}

#[test]
fn an_open_request_with_nested_arrays_as_an_option_value_allocates_little() {
    let _alone = alone();
    // Found by fuzz/ (target `request`): an option whose value is 500 nested array16
    // headers, each announcing 56 540 items. serde's `untagged` buffered it first, with a
    // megabyte preallocated per level (half a gigabyte from 1.5 KB).
    let mut body = vec![0x82];
    body.extend_from_slice(b"\xa2id\x01\xa4body\x81\xa4Open\x82");
    body.extend_from_slice(b"\xa8location\xa1x\xa7options\x81\xa1o");
    body.extend(std::iter::repeat_n([0xdc, 0xdc, 0xdc], 500).flatten());
    let peak = peak_while(|| {
        let decoded = asebytes_protocol::frame::decode::<asebytes_protocol::Request>(&body);
        assert!(decoded.is_err(), "an array is no option value");
    });
    assert!(
        peak < 64 * 1024,
        "decoding {} bytes peaked at {peak} bytes",
        body.len()
    );
}
