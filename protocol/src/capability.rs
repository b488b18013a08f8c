//! What a backend can do. Sent to clients when a store is opened; checked by the daemon in
//! one place before any operation reaches a backend.

use serde::{Deserialize, Serialize};

/// Capability flags of an open store.
///
/// Naming: base operation (`write`), variant (`write_can_insert`), option (`read_with_keys`).
/// `#[serde(default)]`: a newer daemon may send flags an older client lacks, or omit new ones.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Capabilities {
    /// Rows can be read.
    pub read: bool,
    /// Only some keys of a row can be fetched.
    pub read_with_keys: bool,
    /// Any mutation at all (false for read-only opens).
    pub write: bool,
    /// Rows can be replaced in place (`db[i] = row`).
    pub write_can_set: bool,
    /// Rows can be inserted in the middle, shifting later rows.
    pub write_can_insert: bool,
    /// Rows can be deleted, shifting later rows.
    pub write_can_delete: bool,
    /// Keys can be merged into an existing row.
    pub write_can_update: bool,
    /// Keys can be removed from rows.
    pub write_can_drop_keys: bool,
    /// The whole store (all rows) can be removed from its container.
    pub write_can_remove: bool,
    /// Readers may bypass the writer actor and read a consistent snapshot concurrently.
    pub concurrent_readers: bool,
    /// Reads of several rows see one consistent snapshot.
    pub snapshots: bool,
    /// Data survives the daemon (false for `memory://`).
    pub persistent: bool,
    /// Several commands can share one all-or-nothing write (group commit merges queued
    /// writes only where this is set). Since protocol 2.
    pub atomic_batches: bool,
    /// Column reads can be answered as one array (`GetColumn::packed`). Since protocol 2.
    pub packed_columns: bool,
    /// Values are decoded by the backend (msgpack-numpy), not stored as given: a value
    /// must be msgpack-numpy, and reads return the backend's encoding of what it decoded.
    /// A client storing raw bytes (the blob tier) wraps each as a msgpack bin. A property
    /// rather than an ability, so [`Capabilities::all`] leaves it off. Added without a
    /// protocol bump: a daemon that does not send it reads as false (stored as given).
    pub typed_values: bool,
    /// While the daemon holds the store open, only its writer actor changes the data (no
    /// other program or daemon can write it meanwhile), so the daemon's commit generation
    /// covers every change: clients may then trust the generation it publishes in shared
    /// memory (`Opened.published`) and skip round trips while it is unchanged. Off for
    /// stores others change behind the daemon (Redis, MongoDB, files that grow). Added
    /// without a protocol bump: an older daemon omits it (read as false: every read asks).
    pub exclusive: bool,
}

impl Capabilities {
    /// Every capability: what the memory reference backend offers (values stored as given,
    /// so `typed_values` is off).
    pub fn all() -> Self {
        Self {
            read: true,
            read_with_keys: true,
            write: true,
            write_can_set: true,
            write_can_insert: true,
            write_can_delete: true,
            write_can_update: true,
            write_can_drop_keys: true,
            write_can_remove: true,
            concurrent_readers: true,
            snapshots: true,
            persistent: true,
            atomic_batches: true,
            packed_columns: true,
            typed_values: false,
            exclusive: true,
        }
    }

    /// The same flags with every write capability switched off.
    pub fn read_only(mut self) -> Self {
        self.write = false;
        self.write_can_set = false;
        self.write_can_insert = false;
        self.write_can_delete = false;
        self.write_can_update = false;
        self.write_can_drop_keys = false;
        self.write_can_remove = false;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::Capabilities;

    fn encode(caps: &impl serde::Serialize) -> Vec<u8> {
        rmp_serde::to_vec_named(caps).expect("encode")
    }

    #[test]
    fn typed_values_round_trips() {
        let caps = Capabilities {
            typed_values: true,
            ..Capabilities::read_only(Capabilities::all())
        };
        let back: Capabilities = rmp_serde::from_slice(&encode(&caps)).expect("decode");
        assert_eq!(back, caps);
    }

    #[test]
    fn a_peer_without_typed_values_reads_as_stored_as_given() {
        /// The flags as a daemon before `typed_values` sent them.
        #[derive(serde::Serialize)]
        struct Older {
            read: bool,
            packed_columns: bool,
        }
        let older = Older {
            read: true,
            packed_columns: true,
        };
        let caps: Capabilities = rmp_serde::from_slice(&encode(&older)).expect("decode");
        assert!(caps.read && caps.packed_columns);
        assert!(!caps.typed_values);
        // And an older peer reading ours ignores the flag it does not know.
        let ours = encode(&Capabilities {
            typed_values: true,
            ..Capabilities::all()
        });
        #[derive(serde::Deserialize)]
        struct OlderIn {
            read: bool,
        }
        let seen: OlderIn = rmp_serde::from_slice(&ours).expect("older peer decodes");
        assert!(seen.read);
    }
}
