//! The protocol fuzzer's harness: what the daemon does with the bytes a peer sends, with
//! every check the fuzzer should fail on.
//!
//! - [`session`]: a connection as the daemon reads it. The input is written into one end of
//!   a socket pair; a [`FrameStream`] with a receive budget reads the first frame under the
//!   handshake cap and decodes it as a `Hello` (negotiating the version, or recovering the
//!   id to refuse), then reads frames under the daemon's frame cap and decodes each as a
//!   request ([`request`]).
//! - [`request`]: one frame body decoded as an `Envelope<Request>`; a request that decodes
//!   re-encodes to bytes that decode to the same bytes again, and every field value it
//!   carries goes through the value codec ([`codec`]), as the columnar backends do.
//! - [`codec`]: one stored field value decoded by the msgpack-numpy codec; a value that
//!   decodes re-encodes, and that encoding is stable.
//!
//! Each target runs its input under [`alloc::within_limit`]: a panic or a heap beyond the
//! input's limit is a crash.

pub mod alloc;
pub mod seeds;

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use asebytes_protocol::budget::MemoryBudget;
use asebytes_protocol::codec;
use asebytes_protocol::frame::{self, DEFAULT_MAX_FRAME_LEN, HANDSHAKE_MAX_FRAME_LEN};
use asebytes_protocol::stream::FrameStream;
use asebytes_protocol::{Hello, Request, Row, version};
use serde::de::IgnoredAny;

/// Longest input a target takes (libFuzzer's `-max_len` is set to it too): a socket pair
/// buffers it whole, so the session never blocks.
pub const MAX_INPUT: usize = 64 * 1024;

/// The receive budget of the fuzzed stream: small, so a frame announcing a gigabyte runs
/// into it.
pub const BUDGET: usize = 256 * 1024;

/// One connection's bytes, read as the daemon reads them.
pub fn session(data: &[u8]) {
    if data.len() > MAX_INPUT {
        return;
    }
    let (mut peer, ours) = UnixStream::pair().expect("socketpair");
    peer.set_nonblocking(true).expect("nonblocking");
    // A socket pair takes 64 KiB at once on Linux; what does not fit is simply not sent.
    let _ = peer.write_all(data);
    drop(peer);
    let mut stream = FrameStream::new(ours);
    stream.set_spin(Duration::ZERO);
    stream.set_budget(MemoryBudget::new(BUDGET));
    let Ok(body) = stream.recv(HANDSHAKE_MAX_FRAME_LEN) else {
        return;
    };
    handshake(body);
    while let Ok(body) = stream.recv(DEFAULT_MAX_FRAME_LEN) {
        request(body);
    }
}

/// The daemon's reading of the first frame: a `Hello` whose versions it negotiates, or
/// garbage whose id (if the envelope decodes) the refusal carries.
pub fn handshake(body: &[u8]) {
    match frame::decode::<Hello>(body) {
        Ok(env) => {
            let _ = version::negotiate(env.body.min_protocol, env.body.protocol);
        }
        Err(_) => {
            let _ = frame::decode::<IgnoredAny>(body);
        }
    }
}

/// One frame body as a request.
pub fn request(body: &[u8]) {
    let env = match frame::decode::<Request>(body) {
        Ok(env) => env,
        Err(_) => {
            let _ = frame::decode::<IgnoredAny>(body);
            return;
        }
    };
    let again = frame::encode(env.id, &env.body).expect("a decoded request re-encodes");
    let back = frame::decode::<Request>(&again[frame::HEADER_LEN..])
        .expect("a re-encoded request decodes");
    let twice = frame::encode(back.id, &back.body).expect("re-encodes twice");
    assert_eq!(again, twice, "a request's encoding is stable");
    for row in rows_of(&env.body) {
        for (_, value) in row {
            codec(value);
        }
    }
}

/// The rows a request carries.
fn rows_of(req: &Request) -> Vec<&Row> {
    match req {
        Request::Extend(r) => r.rows.iter().flatten().collect(),
        Request::SetMany(r) => r.rows.iter().flatten().collect(),
        Request::Insert(r) => r.row.iter().collect(),
        Request::Set(r) => r.row.iter().collect(),
        Request::Update(r) => vec![&r.data],
        Request::UpdateMany(r) => r.data.iter().collect(),
        _ => Vec::new(),
    }
}

/// One stored field value through the codec.
pub fn codec(bytes: &[u8]) {
    let Ok(value) = codec::decode(bytes) else {
        return;
    };
    let Ok(encoded) = codec::encode(&value) else {
        return;
    };
    let back = codec::decode(&encoded).expect("a re-encoded value decodes");
    let twice = codec::encode(&back).expect("a decoded value re-encodes");
    assert_eq!(encoded, twice, "a value's encoding is stable");
}

/// libFuzzer's initialisation for target `name`: with `ABT_FUZZ_WRITE_SEEDS=<dir>` set,
/// writes the target's seed inputs into `dir` and exits (how `fuzz/run` makes a corpus
/// without a second build).
pub fn init(name: &str) {
    if let Some(dir) = std::env::var_os("ABT_FUZZ_WRITE_SEEDS") {
        let dir = std::path::PathBuf::from(dir);
        match seeds::write(name, &dir) {
            Ok(n) => {
                println!("{n} seeds for {name} in {}", dir.display());
                std::process::exit(0);
            }
            Err(e) => {
                eprintln!("cannot write seeds into {}: {e}", dir.display());
                std::process::exit(1);
            }
        }
    }
}
