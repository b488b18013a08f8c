//! A gate a registry key is marked busy with (being opened, closed, released or
//! re-opened): whoever finds the key busy waits on it, then looks again.
//!
//! Layer: inside [`super`].

use std::sync::{Condvar, Mutex, PoisonError};

/// Opened once, by whoever marked the key busy, when that work is done.
#[derive(Debug, Default)]
pub(super) struct Gate {
    done: Mutex<bool>,
    cv: Condvar,
}

impl Gate {
    /// Blocks until the gate is released.
    pub(super) fn wait(&self) {
        let mut done = self.done.lock().unwrap_or_else(PoisonError::into_inner);
        while !*done {
            done = self.cv.wait(done).unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Wakes every waiter, now and later.
    pub(super) fn release(&self) {
        *self.done.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.cv.notify_all();
    }
}
