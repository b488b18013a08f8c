//! Releasing the GIL around blocking socket I/O, in one place.
//!
//! Every wait on the daemon (connect, spawn, send, receive) goes through [`blocking`], so
//! other Python threads run while one waits, and nothing that touches Python objects can
//! sneak into the released section (`Ungil` bounds). Decoding happens after it returns,
//! with the GIL held.

use pyo3::Python;
use pyo3::marker::Ungil;

/// Runs `f` with the GIL released and returns its result.
pub fn blocking<T, F>(py: Python<'_>, f: F) -> T
where
    F: Ungil + FnOnce() -> T,
    T: Ungil,
{
    py.detach(f)
}
