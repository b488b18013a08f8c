//! The client's read-only view of the commit generations the daemon publishes in shared
//! memory (`<socket>.gen`, [`asebytes_protocol::published`]): `len()` and cached rows
//! without a round trip while a store's generation is unchanged.
//!
//! One mapping per process, of the file beside the socket this process uses; it is made
//! when the first store that publishes is opened and survives `fork` (a shared read-only
//! mapping). A file that cannot be mapped leaves every read going to the daemon.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use asebytes_daemon::paths;
use asebytes_protocol::published::{Published, SlotRef, View};

use crate::pool;

/// Where one open store's generation is published, with the mapping to read it from.
#[derive(Debug, Clone)]
pub struct Watch {
    slot: SlotRef,
    view: Arc<View>,
}

impl Watch {
    /// The watch of a store whose `Opened.published` named `slot`; `None` if the file of
    /// this process's daemon cannot be mapped.
    pub fn of(slot: Option<SlotRef>) -> Option<Self> {
        let slot = slot?;
        Some(Self {
            slot,
            view: view()?,
        })
    }

    /// The store's length and version now, if the daemon publishes them and they can be
    /// trusted; `None`: ask the daemon.
    pub fn now(&self) -> Option<Seen> {
        let Published { generation, len } = self.view.read(&self.slot)?;
        Some(Seen {
            len,
            stamp: Stamp {
                epoch: self.slot.epoch,
                tag: self.slot.tag,
                generation,
            },
        })
    }
}

/// Which state of which store something was read under: the daemon (epoch), the store's
/// slot assignment (tag) and its generation. A generation alone is not enough: a restarted
/// daemon, or the same store re-opened into another slot, counts generations afresh.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stamp {
    /// The daemon's epoch.
    pub epoch: u64,
    /// The slot's tag.
    pub tag: u64,
    /// The store's generation in that slot.
    pub generation: u64,
}

/// A store's published state as a client uses it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seen {
    /// Rows now.
    pub len: u64,
    /// The version those rows are.
    pub stamp: Stamp,
}

/// The mapping of `<socket>.gen` for this process's socket (mapped again if the socket
/// changed, as tests do).
static VIEW: Mutex<Option<(PathBuf, Arc<View>)>> = Mutex::new(None);

fn view() -> Option<Arc<View>> {
    let path = paths::gen_path(&pool::socket());
    let mut guard = VIEW.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((p, v)) = guard.as_ref()
        && *p == path
    {
        return Some(v.clone());
    }
    let view = Arc::new(View::open(&path).ok()?);
    *guard = Some((path, view.clone()));
    Some(view)
}
