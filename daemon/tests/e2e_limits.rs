//! End-to-end tests of what one peer may cost the daemon: connections that never finish
//! the handshake, stall inside a frame or announce more than they send are closed, the
//! receive buffers of all connections share one bound, and none of it keeps the daemon
//! from idle exit or from serving everyone else.

mod e2e_common;

use std::io::Write;
use std::time::{Duration, Instant};

use asebytes_daemon::shutdown::Reason;
use asebytes_protocol::{Request, Response};
use e2e_common::{TestServer, closed_by_peer};

#[test]
fn a_peer_that_never_completes_the_handshake_is_closed_at_the_timeout() {
    let timeout = Duration::from_millis(200);
    let server = TestServer::start_with(|c| c.handshake_timeout = timeout);
    let start = Instant::now();
    let mut silent = server.raw();
    // Slow loris: part of a header, then nothing.
    let mut partial = server.raw();
    partial.write_all(&[0, 0]).unwrap();
    assert!(closed_by_peer(&mut silent), "silent peer still connected");
    assert!(
        closed_by_peer(&mut partial),
        "partial header still connected"
    );
    assert!(start.elapsed() >= timeout, "closed before the timeout");
    // Everyone else is served.
    assert_eq!(server.client().call(Request::Ping), Response::Pong);
}

#[test]
fn a_silent_connection_does_not_keep_the_daemon_from_idle_exit() {
    let server = TestServer::start_with(|c| {
        c.idle_timeout = Duration::from_millis(300);
        c.handshake_timeout = Duration::from_secs(600);
    });
    let _silent = server.raw();
    let shutdown = server.shutdown.clone();
    server.join().unwrap();
    assert_eq!(shutdown.reason(), Some(Reason::Idle));
}

#[test]
fn a_peer_that_stalls_inside_a_frame_is_closed_and_others_go_on() {
    let server = TestServer::start_with(|c| c.stall_timeout = Duration::from_millis(200));
    let staller = server.client();
    let mut sock = staller.stream.socket().try_clone().unwrap();
    // Announces 1 GiB, sends 100 kB of it.
    sock.write_all(&(1u32 << 30).to_be_bytes()).unwrap();
    sock.write_all(&vec![0xc0; 100_000]).unwrap();
    assert!(
        closed_by_peer(&mut sock),
        "a stalled frame kept the connection"
    );
    assert_eq!(server.client().call(Request::Ping), Response::Pong);
}

#[test]
fn receive_buffers_of_all_connections_share_one_bound() {
    let bound = 4 << 20;
    let server = TestServer::start_with(|c| c.max_buffered = bound);
    let mut hogs = Vec::new();
    for _ in 0..3 {
        let hog = server.client();
        let mut sock = hog.stream.socket().try_clone().unwrap();
        // Each announces 512 MiB and streams bytes until the daemon closes it.
        let feeder = std::thread::spawn(move || {
            let chunk = vec![0xc0; 256 << 10];
            if sock.write_all(&(512u32 << 20).to_be_bytes()).is_err() {
                return 0;
            }
            let mut sent = 0usize;
            while sock.write_all(&chunk).is_ok() {
                sent += chunk.len();
            }
            sent
        });
        hogs.push((hog, feeder));
    }
    for (hog, feeder) in hogs {
        let mut probe = hog.stream.socket().try_clone().unwrap();
        assert!(closed_by_peer(&mut probe), "a hog was not cut off");
        let sent = feeder.join().unwrap();
        assert!(sent < 2 * bound + (4 << 20), "{sent} bytes accepted");
    }
    // The bound is free again and a well-behaved client is served.
    let mut c = server.client();
    assert_eq!(c.call(Request::Ping), Response::Pong);
}
