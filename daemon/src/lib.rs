//! The asebytes daemon (placeholder during bring-up).
pub mod backend;
