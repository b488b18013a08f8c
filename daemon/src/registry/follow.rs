//! Waking the followers of every open store when the daemon stops.
//!
//! Layer: inside [`super`]; called by [`crate::server`] at the start of a graceful
//! shutdown, so a connection waiting in `Follow` answers at once instead of holding the
//! drain until its wait times out.

use super::{Registry, Slot};

impl Registry {
    /// Wakes every follower of every open store now; later waits on those stores return
    /// at once.
    pub fn stop_followers(&self) {
        let inner = self.lock();
        for slot in inner.slots.values() {
            if let Slot::Ready(e) = slot {
                e.handle.stop_followers();
            }
        }
    }
}
