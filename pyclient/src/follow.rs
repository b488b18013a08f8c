//! Live follow, native half: the `Follow` request both stores send, and the rule that it
//! is only sent to a daemon that negotiated protocol [`version::FOLLOW`].
//!
//! A follow request waits in the daemon until the store has more rows than the client has
//! seen (answered the moment a commit makes it so) or its timeout passes, and answers
//! `(generation, len)`. The loop around it (heartbeat slices, reading the new rows in
//! batches, stop and idle timeout) is the Python facades' shared code
//! (`asebytes._follow`), the same for the sync and the async facades.

use asebytes_protocol::Request;
use asebytes_protocol::request::Follow;
use asebytes_protocol::version;
use pyo3::prelude::*;

use crate::errors::{AsebytesValueError, UnsupportedOperationError};
use crate::ops::{Finish, Plan, Spec};

impl Spec {
    /// `follow_wait(seen, timeout)`: wait up to `timeout` seconds for more than `seen` rows.
    pub fn follow(&self, seen: u64, timeout: f64) -> PyResult<Plan> {
        if !timeout.is_finite() || timeout < 0.0 {
            return Err(AsebytesValueError::new_err(format!(
                "follow_wait timeout must be a finite number of seconds >= 0, got {timeout}"
            )));
        }
        let req = Request::Follow(Follow {
            store: 0,
            from: seen,
            timeout_ms: (timeout * 1000.0).round() as u64,
        });
        Ok(Plan {
            req,
            finish: Finish::Committed,
        })
    }
}

/// The oldest protocol that has `req`.
pub fn needs_protocol(req: &Request) -> u32 {
    match req {
        Request::Follow(_) => version::FOLLOW,
        _ => version::HANDSHAKE,
    }
}

/// `Ok` if a daemon that negotiated `negotiated` understands `req`; otherwise the error
/// that says what to do, raised before anything is sent.
pub fn check_protocol(req: &Request, negotiated: u32) -> PyResult<()> {
    let needs = needs_protocol(req);
    if negotiated >= needs {
        return Ok(());
    }
    Err(UnsupportedOperationError::new_err(format!(
        "'{}' needs protocol {needs}, but the running asebytes daemon speaks protocol \
         {negotiated} (an older build); stop it with `asebytesd stop` and the next call \
         starts this build's daemon",
        req.name()
    )))
}
