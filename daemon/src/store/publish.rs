//! The store's side of the shared-memory publication ([`asebytes_protocol::published`]):
//! after every commit the writer actor publishes the new generation and length, before it
//! answers the writers, so a client that reads the slot after an acknowledged write sees
//! the write's generation; and a handle that lets go of its backend withdraws the slot
//! first, so nobody trusts it while another program may change the files.
//!
//! Layer: inside [`crate::store`]. The registry hands a handle its slot
//! ([`super::StoreHandle::publish_to`]); only stores whose backend has capability
//! `exclusive` get one.

use asebytes_protocol::published::Slot;

use super::writer::Shared;
use crate::backend::Reader;

/// A commit is done: publish the length it left (or, if that cannot be read, withdraw the
/// slot, so clients ask the daemon).
pub(crate) fn committed(shared: &Shared, reader: &dyn Reader) {
    let Some(slot) = shared.published.get() else {
        return;
    };
    match reader.snapshot().and_then(|s| s.len()) {
        Ok(len) => slot.commit(len),
        Err(_) => slot.withdraw(),
    }
}

/// The store is going away or letting go of its files: nobody may trust the slot now.
pub(crate) fn withdraw(shared: &Shared) {
    if let Some(slot) = shared.published.get() {
        slot.withdraw();
    }
}

/// The slot this store publishes to from now on, if it has one.
pub(crate) fn slot(shared: &Shared) -> Option<&Slot> {
    shared.published.get().map(AsRef::as_ref)
}
