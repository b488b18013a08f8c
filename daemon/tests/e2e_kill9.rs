//! `kill -9` of the daemon during concurrent appends from several client processes, and of
//! a client mid-batch, on every persistent backend the daemon serves: one test body
//! ([`e2e_common::kill9::run`]) per store kind. LMDB and Zarr must keep every acknowledged
//! batch through every kill (LMDB also with `durability="os"`); HDF5 and H5MD are measured against the rate their docs state.

mod e2e_common;

use e2e_common::kill9::{self, Promise};

/// The client processes the kill loop starts (see [`kill9::child_main`]); a no-op when
/// run as a test.
#[test]
fn kill9_client_process() {
    kill9::child_main();
}

#[cfg(feature = "lmdb")]
#[test]
fn kill9_lmdb() {
    kill9::run("lmdb", Promise::Always);
}

/// `durability="os"` acknowledges once a commit reached the OS: a killed daemon loses
/// nothing acknowledged all the same.
#[cfg(feature = "lmdb")]
#[test]
fn kill9_lmdb_durability_os() {
    kill9::run_with("lmdb", "durability=os", Promise::Always);
}

#[cfg(feature = "zarr")]
#[test]
fn kill9_zarr() {
    kill9::run("zarr", Promise::Always);
}

#[cfg(feature = "zarr")]
#[test]
fn kill9_zarr_padded() {
    kill9::run("zarrp", Promise::Always);
}

#[cfg(feature = "hdf5")]
#[test]
fn kill9_hdf5() {
    kill9::run("h5", Promise::Measured);
}

#[cfg(feature = "hdf5")]
#[test]
fn kill9_hdf5_padded() {
    kill9::run("h5p", Promise::Measured);
}

#[cfg(feature = "hdf5")]
#[test]
fn kill9_h5md() {
    kill9::run("h5md", Promise::Measured);
}
