//! The asebytes storage daemon: one process per user owns every open store, and any number
//! of Python processes (Jupyter kernels, DataLoader workers) share those stores safely over
//! a Unix socket.
//!
//! Plain OS threads, no async runtime: the backends block, and the latency floor is the
//! cross-CPU wake-up, which a thread per connection removes by busy-polling its own socket
//! for a few microseconds before blocking (`docs/architecture.md`).
//!
//! # Layout
//!
//! Read top to bottom; no layer calls upward.
//!
//! - [`cli`]: `asebytesd run | start | stop | status | install-service`; takes the lock,
//!   binds the socket, installs signal handlers.
//! - [`config`]: settings from defaults, environment and flags.
//! - [`server`]: the accept loop, the peer-uid check, one thread per connection, graceful
//!   shutdown; [`server::run`] is the entry point tests use.
//! - [`shutdown`]: the shutdown signal (flag + self-pipe, SIGTERM/SIGINT).
//! - [`startup`]: the typed readiness report of a daemon started on demand.
//! - [`idle`]: idle exit after `ASEBYTES_IDLE_TIMEOUT` seconds without connections.
//! - `connection`: handshake, framing and request dispatch for one peer.
//! - `registry`: canonical location → one shared store actor; store ids; who uses what.
//! - [`store`]: the per-store writer actor and the request semantics.
//! - [`backend`]: the storage engines behind one synchronous trait.
//! - [`launcher`]: the client side of auto-start (connect, or spawn and wait), shared
//!   with the Python client.
//! - [`limits`]: the soft descriptor limit, raised at start.
//! - [`paths`]: socket, log and lock locations; the private socket directory.
//! - [`error`]: the daemon's error type and its wire codes.

pub mod backend;
pub mod cli;
pub mod config;
mod connection;
pub mod error;
pub mod idle;
pub mod launcher;
pub mod limits;
pub mod paths;
mod registry;
pub mod server;
pub mod shutdown;
pub mod startup;
pub mod store;

pub use error::{Error, Result};

/// Identifies this build in the handshake (`Hello.build_id`, `Welcome.build_id`); set
/// `ASEBYTES_BUILD_ID` at compile time to stamp a release.
pub const BUILD_ID: &str = match option_env!("ASEBYTES_BUILD_ID") {
    Some(id) => id,
    None => concat!("asebytes-daemon/", env!("CARGO_PKG_VERSION")),
};
