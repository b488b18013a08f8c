//! Commit generations in shared memory: what lets a client answer `len()` and serve rows it
//! already holds without a round trip while nothing changed.
//!
//! The daemon keeps one file beside its socket (`<socket>.gen`, mode 0600 in the 0700
//! socket directory): a 64-byte header (magic, the daemon's epoch) and [`SLOTS`] slots of
//! one cache line each. A store whose data only the daemon changes (capability
//! `exclusive`) is given a slot while it is open; `Opened.published` names it
//! ([`SlotRef`]: index, tag, epoch). The daemon publishes `(generation, len)` there after
//! every commit, before it answers the writers, and bumps the generation whenever the store
//! is (re)opened; while the store's files are released, or once the slot is given back, the
//! slot's tag is zero, so no client trusts it.
//!
//! Clients map the file read-only ([`View`]) and trust a slot only while its tag and the
//! header's epoch are the ones their `Opened` named: a slot reused for another store has
//! another tag, and a restarted daemon writes another epoch into the same file (it never
//! replaces the file, so old mappings see the change). Each slot is a seqlock: the daemon
//! makes the sequence odd, writes, makes it even, so a reader that sees the same even
//! sequence before and after read a consistent `(tag, generation, len)`.
//!
//! The daemon ([`Publisher`]) only ever writes the file, from state it keeps in its own
//! memory, so nothing another process writes into it can mislead the daemon.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering, fence};
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};

/// Slots in the file: stores open at once that get a published generation (the others are
/// served by round trips, as without one).
pub const SLOTS: usize = 4096;
const LINE: usize = 64;
/// Bytes of the file: the header line and one line per slot.
pub const FILE_LEN: usize = LINE * (1 + SLOTS);
const MAGIC: u64 = u64::from_le_bytes(*b"ASBGEN01");
/// Reads of a slot that found a write in progress before giving up (the caller then asks
/// the daemon).
const READ_TRIES: u32 = 64;

/// Where a store's generation is published: sent in `Opened.published`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotRef {
    /// Slot number in the file.
    pub index: u32,
    /// Nonzero; the slot holds this store's state only while it carries this tag.
    pub tag: u64,
    /// The daemon's epoch; the file's header carries it while that daemon runs.
    pub epoch: u64,
}

/// A store's published state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Published {
    /// Bumped by every commit and every (re)open of the store.
    pub generation: u64,
    /// Rows after that commit.
    pub len: u64,
}

#[repr(C)]
struct Header {
    magic: AtomicU64,
    epoch: AtomicU64,
}

#[repr(C)]
struct RawSlot {
    seq: AtomicU64,
    tag: AtomicU64,
    generation: AtomicU64,
    len: AtomicU64,
}

/// One mapping of the file, unmapped on drop.
#[derive(Debug)]
struct Mapping {
    ptr: NonNull<u8>,
}

// SAFETY: the mapping is only accessed through atomics.
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

impl Mapping {
    fn new(file: &File, writable: bool) -> std::io::Result<Self> {
        let prot = if writable {
            libc::PROT_READ | libc::PROT_WRITE
        } else {
            libc::PROT_READ
        };
        // SAFETY: a shared mapping of FILE_LEN bytes of a file checked (or made) at least
        // that long; it lives as long as this value.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                FILE_LEN,
                prot,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let ptr = NonNull::new(ptr.cast::<u8>()).ok_or_else(std::io::Error::last_os_error)?;
        Ok(Self { ptr })
    }

    fn header(&self) -> &Header {
        // SAFETY: page-aligned, inside the mapping, only used through atomics.
        unsafe { &*self.ptr.as_ptr().cast::<Header>() }
    }

    fn slot(&self, index: usize) -> &RawSlot {
        assert!(index < SLOTS, "slot {index} out of range");
        // SAFETY: line `1 + index` lies inside the mapping (checked above); 64-byte aligned.
        unsafe { &*self.ptr.as_ptr().add(LINE * (1 + index)).cast::<RawSlot>() }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, unmapped once; no reference outlives `self`.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), FILE_LEN);
        }
    }
}

/// The daemon's side: the file, its epoch, and the free slots.
#[derive(Debug)]
pub struct Publisher {
    map: Mapping,
    epoch: u64,
    free: Mutex<Vec<u32>>,
    next_tag: AtomicU64,
}

impl Publisher {
    /// Creates (or takes over) the file at `path` for a daemon starting now: every slot
    /// cleared, then a new epoch written, so clients of a previous daemon trust nothing in
    /// it. The same file is reused, never replaced: an old client's mapping sees the change.
    pub fn create(path: &Path) -> std::io::Result<Arc<Self>> {
        let file = open_sized(path, FILE_LEN as u64)?;
        let map = Mapping::new(&file, true)?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_micros() as u64;
        // Never zero (zero is "no daemon"), and different from the previous daemon's.
        let epoch = (now ^ u64::from(std::process::id()).rotate_left(40)) | 1;
        let header = map.header();
        header.epoch.store(0, Ordering::Release);
        for i in 0..SLOTS {
            let s = map.slot(i);
            s.tag.store(0, Ordering::Relaxed);
            s.generation.store(0, Ordering::Relaxed);
            s.len.store(0, Ordering::Relaxed);
            s.seq.store(0, Ordering::Relaxed);
        }
        header.magic.store(MAGIC, Ordering::Relaxed);
        header.epoch.store(epoch, Ordering::Release);
        Ok(Arc::new(Self {
            map,
            epoch,
            free: Mutex::new((0..SLOTS as u32).rev().collect()),
            // Tags start at the epoch's clock, like store ids: a tag kept from a previous
            // daemon never names a slot of this one.
            next_tag: AtomicU64::new(now.max(1)),
        }))
    }

    /// This daemon's epoch.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// A free slot with a new tag, not yet trusted ([`Slot::open`] publishes it); `None`
    /// when every slot is taken (that store is then served by round trips).
    pub fn take(self: &Arc<Self>) -> Option<Slot> {
        let index = self
            .free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()?;
        let tag = self.next_tag.fetch_add(1, Ordering::Relaxed);
        Some(Slot {
            publisher: self.clone(),
            index,
            tag,
            state: Mutex::new(SlotState::default()),
        })
    }

    /// Slots given out now (tests, status).
    pub fn in_use(&self) -> usize {
        SLOTS
            - self
                .free
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .len()
    }
}

impl Drop for Publisher {
    /// A daemon that stops cleanly leaves a file nobody trusts (its slots are withdrawn
    /// already, as every store closed).
    fn drop(&mut self) {
        self.map.header().epoch.store(0, Ordering::Release);
    }
}

/// What the daemon last wrote into a slot, kept in its own memory.
#[derive(Debug, Default)]
struct SlotState {
    seq: u64,
    generation: u64,
    len: u64,
    trusted: bool,
}

/// One store's slot, owned by the daemon; cleared and given back on drop.
#[derive(Debug)]
pub struct Slot {
    publisher: Arc<Publisher>,
    index: u32,
    tag: u64,
    state: Mutex<SlotState>,
}

impl Slot {
    /// What `Opened.published` says about this slot.
    pub fn slot_ref(&self) -> SlotRef {
        SlotRef {
            index: self.index,
            tag: self.tag,
            epoch: self.publisher.epoch,
        }
    }

    /// The store was (re)opened with `len` rows: a new generation, trusted from now on.
    /// Whatever another program wrote while the daemon did not hold the store, clients see
    /// a generation they have not cached anything under.
    pub fn open(&self, len: u64) {
        self.update(|st| {
            st.generation += 1;
            st.len = len;
            st.trusted = true;
        });
    }

    /// A commit left the store with `len` rows. Publishes only while trusted: a commit
    /// racing a release cannot make a withdrawn slot trusted again.
    pub fn commit(&self, len: u64) {
        self.update(|st| {
            st.generation += 1;
            st.len = len;
        });
    }

    /// The daemon lets go of the store (released, closed, removed) or cannot tell its
    /// length: nobody may trust the slot until [`Slot::open`].
    pub fn withdraw(&self) {
        self.update(|st| {
            st.generation += 1;
            st.trusted = false;
        });
    }

    /// The state last published (tests).
    pub fn current(&self) -> Option<Published> {
        let st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        st.trusted.then_some(Published {
            generation: st.generation,
            len: st.len,
        })
    }

    fn update(&self, change: impl FnOnce(&mut SlotState)) {
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        change(&mut st);
        let raw = self.publisher.map.slot(self.index as usize);
        let tag = if st.trusted { self.tag } else { 0 };
        raw.seq.store(st.seq + 1, Ordering::Relaxed);
        fence(Ordering::Release);
        raw.tag.store(tag, Ordering::Relaxed);
        raw.generation.store(st.generation, Ordering::Relaxed);
        raw.len.store(st.len, Ordering::Relaxed);
        st.seq += 2;
        raw.seq.store(st.seq, Ordering::Release);
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.withdraw();
        self.publisher
            .free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(self.index);
    }
}

/// A client's read-only mapping of the file.
#[derive(Debug)]
pub struct View {
    map: Mapping,
}

impl View {
    /// Maps the file at `path` read-only. A file of another size is refused (an old layout,
    /// or not ours), so the caller asks the daemon instead.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        if len != FILE_LEN as u64 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{} has {len} bytes, not {FILE_LEN}", path.display()),
            ));
        }
        Ok(Self {
            map: Mapping::new(&file, false)?,
        })
    }

    /// The state published for `slot`, if it can be trusted now: the file belongs to the
    /// daemon that named the slot, the slot still carries the store's tag, and a
    /// consistent read succeeded. `None`: ask the daemon.
    pub fn read(&self, slot: &SlotRef) -> Option<Published> {
        let index = slot.index as usize;
        if index >= SLOTS || slot.tag == 0 {
            return None;
        }
        let header = self.map.header();
        if header.magic.load(Ordering::Relaxed) != MAGIC {
            return None;
        }
        let raw = self.map.slot(index);
        for _ in 0..READ_TRIES {
            let before = raw.seq.load(Ordering::Acquire);
            if before & 1 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let tag = raw.tag.load(Ordering::Relaxed);
            let generation = raw.generation.load(Ordering::Relaxed);
            let len = raw.len.load(Ordering::Relaxed);
            fence(Ordering::Acquire);
            if raw.seq.load(Ordering::Relaxed) != before {
                continue;
            }
            // The epoch is read after the slot: a daemon restarted meanwhile has changed it.
            if tag != slot.tag || header.epoch.load(Ordering::Acquire) != slot.epoch {
                return None;
            }
            return Some(Published { generation, len });
        }
        None
    }
}

/// Opens (creating it, mode 0600) a small file shared through a mapping beside the
/// daemon's socket, sized to exactly `len` bytes (this file, `<socket>.spin`).
pub(crate) fn open_sized(path: &Path, len: u64) -> std::io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)?;
    if file.metadata()?.len() != len {
        file.set_len(len)?;
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("asebytes-gen-{}-{name}", std::process::id()))
    }

    #[test]
    fn a_client_reads_what_the_daemon_published_and_nothing_once_withdrawn() {
        let path = temp("publish");
        let publisher = Publisher::create(&path).unwrap();
        let view = View::open(&path).unwrap();
        let slot = publisher.take().unwrap();
        let r = slot.slot_ref();
        assert_eq!(view.read(&r), None, "not trusted before it is opened");
        slot.open(3);
        let first = view.read(&r).unwrap();
        assert_eq!(first.len, 3);
        slot.commit(5);
        let second = view.read(&r).unwrap();
        assert_eq!(second.len, 5);
        assert!(second.generation > first.generation);
        slot.withdraw();
        assert_eq!(view.read(&r), None);
        slot.commit(6);
        assert_eq!(
            view.read(&r),
            None,
            "a commit does not make a withdrawn slot trusted"
        );
        slot.open(6);
        let reopened = view.read(&r).unwrap();
        assert!(reopened.generation > second.generation + 1);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_reused_slot_has_a_new_tag_and_the_old_ref_is_not_trusted() {
        let path = temp("reuse");
        let publisher = Publisher::create(&path).unwrap();
        let view = View::open(&path).unwrap();
        let old = publisher.take().unwrap();
        old.open(1);
        let old_ref = old.slot_ref();
        drop(old);
        assert_eq!(publisher.in_use(), 0, "given back on drop");
        let new = publisher.take().unwrap();
        new.open(7);
        assert_eq!(new.slot_ref().index, old_ref.index, "the same slot, reused");
        assert_ne!(new.slot_ref().tag, old_ref.tag);
        assert_eq!(view.read(&old_ref), None);
        assert_eq!(view.read(&new.slot_ref()).unwrap().len, 7);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_restarted_daemon_invalidates_the_old_mappings_of_its_file() {
        let path = temp("restart");
        let first = Publisher::create(&path).unwrap();
        let view = View::open(&path).unwrap();
        let slot = first.take().unwrap();
        slot.open(4);
        let r = slot.slot_ref();
        assert!(view.read(&r).is_some());
        // A second daemon on the same file (the first one was killed: its state is gone
        // without a clean close).
        std::mem::forget(slot);
        let second = Publisher::create(&path).unwrap();
        assert_ne!(second.epoch(), first.epoch());
        assert_eq!(view.read(&r), None, "the old mapping sees the new daemon");
        let again = second.take().unwrap();
        again.open(4);
        // Same index (both start from slot 0), a tag and epoch the old ref never matches.
        assert_eq!(view.read(&r), None);
        assert!(view.read(&again.slot_ref()).is_some());
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn out_of_range_refs_and_foreign_files_are_refused_not_read() {
        let path = temp("foreign");
        std::fs::write(&path, b"not a generation file").unwrap();
        assert!(View::open(&path).is_err());
        let publisher = Publisher::create(&path).unwrap();
        let view = View::open(&path).unwrap();
        let bogus = SlotRef {
            index: u32::MAX,
            tag: 1,
            epoch: publisher.epoch(),
        };
        assert_eq!(view.read(&bogus), None);
        drop(publisher);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn concurrent_reads_never_see_a_torn_pair() {
        let path = temp("torn");
        let publisher = Publisher::create(&path).unwrap();
        let slot = Arc::new(publisher.take().unwrap());
        slot.open(0);
        let r = slot.slot_ref();
        let writer = {
            let slot = slot.clone();
            std::thread::spawn(move || {
                for n in 1..=20_000u64 {
                    // generation and len move together: len == generation - 1.
                    slot.commit(n);
                }
            })
        };
        let view = View::open(&path).unwrap();
        let mut seen = 0;
        while !writer.is_finished() || seen == 0 {
            if let Some(p) = view.read(&r) {
                assert_eq!(p.len + 1, p.generation, "a consistent pair");
                seen += 1;
            }
        }
        writer.join().unwrap();
        std::fs::remove_file(&path).unwrap();
    }
}
