//! Fuzz target `codec`: see [`asebytes_fuzz::codec`].
#![no_main]

use asebytes_fuzz::alloc::{Limited, within_limit};

#[global_allocator]
static ALLOC: Limited = Limited;

libfuzzer_sys::fuzz_target!(init: asebytes_fuzz::init("codec"), |data: &[u8]| {
    within_limit(data.len(), || asebytes_fuzz::codec(data));
});
