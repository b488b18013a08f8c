//! The Rust contract suite: every rule of `spec/CONTRACT.md` that the daemon's store layer
//! owns, run against every backend through `StoreHandle` (writer actor + backend).
//!
//! Layer: test-only, on top of the daemon library. One file per area; each exports
//! `trials(fx, out)`. Trials are named `contract::<backend>::<test>`; a test the backend's
//! capabilities rule out is still listed, as ignored, so the matrix shows in the output.

mod columns;
mod concurrency;
mod errors;
mod lifecycle;
mod oracle;
mod read;
#[cfg(feature = "asefiles")]
mod readonly;
#[cfg(feature = "hub")]
mod readonly_hub;
mod write;

use libtest_mimic::Arguments;

fn main() {
    let args = Arguments::from_args();
    let mut trials = Vec::new();
    #[cfg(feature = "asefiles")]
    readonly::trials(&mut trials);
    for fx in asebytes_tests::backends() {
        read::trials(&fx, &mut trials);
        write::trials(&fx, &mut trials);
        columns::trials(&fx, &mut trials);
        errors::trials(&fx, &mut trials);
        concurrency::trials(&fx, &mut trials);
        lifecycle::trials(&fx, &mut trials);
        oracle::trials(&fx, &mut trials);
    }
    let conclusion = libtest_mimic::run(&args, trials);
    asebytes_tests::stop_servers();
    conclusion.exit();
}
