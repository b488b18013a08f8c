//! The frame stream delivers whole frames across partial writes, pipelined frames and the
//! busy-poll/blocking boundary, and reports a clean close; memory follows the bytes that
//! arrive, within a shared budget, and time limits end stalled frames.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use asebytes_protocol::budget::MemoryBudget;
use asebytes_protocol::frame::{self, Envelope};
use asebytes_protocol::stream::FrameStream;
use asebytes_protocol::{Error, Request};

#[test]
fn frames_arrive_whole_when_written_byte_by_byte() {
    let (a, mut b) = UnixStream::pair().unwrap();
    let mut rx = FrameStream::new(a);
    let bytes = frame::encode(11, &Request::Ping).unwrap();
    let writer = std::thread::spawn(move || {
        for byte in &bytes {
            b.write_all(std::slice::from_ref(byte)).unwrap();
            std::thread::yield_now();
        }
        b
    });
    let body = rx.recv(1024).unwrap().to_vec();
    let env: Envelope<Request> = frame::decode(&body).unwrap();
    assert_eq!((env.id, env.body), (11, Request::Ping));
    drop(writer.join().unwrap());
    assert!(matches!(rx.recv(1024), Err(Error::Closed)));
}

#[test]
fn pipelined_frames_are_split_correctly() {
    let (a, b) = UnixStream::pair().unwrap();
    let mut rx = FrameStream::new(a);
    let mut tx = FrameStream::new(b);
    let mut all = Vec::new();
    for id in 0..100u64 {
        frame::encode_into(&mut all, id, &Request::Status).unwrap();
    }
    tx.send(&all).unwrap();
    for id in 0..100u64 {
        let env: Envelope<Request> = frame::decode(rx.recv(1024).unwrap()).unwrap();
        assert_eq!(env.id, id);
    }
}

#[test]
fn blocking_read_after_spin_budget_still_receives() {
    let (a, b) = UnixStream::pair().unwrap();
    let mut rx = FrameStream::new(a);
    rx.set_spin(Duration::from_micros(1));
    let mut tx = FrameStream::new(b);
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let h = std::thread::spawn(move || {
        go_rx.recv().unwrap();
        tx.send(&frame::encode(5, &Request::Ping).unwrap()).unwrap();
        tx
    });
    go_tx.send(()).unwrap();
    let env: Envelope<Request> = frame::decode(rx.recv(1024).unwrap()).unwrap();
    assert_eq!(env.id, 5);
    drop(h.join().unwrap());
}

#[test]
fn close_inside_a_frame_is_an_error_not_a_clean_close() {
    let (a, mut b) = UnixStream::pair().unwrap();
    let mut rx = FrameStream::new(a);
    b.write_all(&[0, 0, 0, 10, 1, 2]).unwrap();
    drop(b);
    match rx.recv(1024) {
        Err(Error::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof),
        other => panic!(
            "expected UnexpectedEof, got {:?}",
            other.map(|b| b.to_vec())
        ),
    }
}

#[test]
fn oversized_frame_is_refused() {
    let (a, mut b) = UnixStream::pair().unwrap();
    let mut rx = FrameStream::new(a);
    b.write_all(&(1u32 << 20).to_be_bytes()).unwrap();
    assert!(matches!(rx.recv(1024), Err(Error::FrameTooLarge { .. })));
}

#[test]
fn large_frame_arrives_intact_across_many_partial_reads() {
    let (a, b) = UnixStream::pair().unwrap();
    let mut rx = FrameStream::new(a);
    let mut tx = FrameStream::new(b);
    let payload: Vec<u8> = (0..16 * 1024 * 1024u32).map(|i| (i % 253) as u8).collect();
    let frame_bytes = frame::encode(9, &serde_bytes::ByteBuf::from(payload.clone())).unwrap();
    let h = std::thread::spawn(move || {
        tx.send(&frame_bytes).unwrap();
        tx.send(&frame::encode(10, &Request::Ping).unwrap())
            .unwrap();
        tx
    });
    let env: Envelope<serde_bytes::ByteBuf> = frame::decode(rx.recv(usize::MAX).unwrap()).unwrap();
    assert_eq!(env.id, 9);
    assert!(
        env.body.as_slice() == payload.as_slice(),
        "payload corrupted"
    );
    let next: Envelope<Request> = frame::decode(rx.recv(1024).unwrap()).unwrap();
    assert_eq!((next.id, next.body), (10, Request::Ping));
    drop(h.join().unwrap());
}

#[test]
fn sender_falls_back_to_blocking_when_the_reader_is_slow() {
    for spin in [
        Duration::ZERO,
        Duration::from_micros(5),
        Duration::from_millis(2),
    ] {
        let (a, b) = UnixStream::pair().unwrap();
        let mut rx = FrameStream::new(a);
        let mut tx = FrameStream::new(b);
        tx.set_spin(spin);
        let payload = vec![7u8; 4 * 1024 * 1024];
        let frame_bytes = frame::encode(3, &serde_bytes::ByteBuf::from(payload.clone())).unwrap();
        // Far more than the socket buffer holds: whatever the timing, the sender finds the
        // buffer full many times and must wait for the reader.
        let h = std::thread::spawn(move || {
            tx.send(&frame_bytes).unwrap();
            tx
        });
        let env: Envelope<serde_bytes::ByteBuf> =
            frame::decode(rx.recv(usize::MAX).unwrap()).unwrap();
        assert_eq!(env.id, 3);
        assert!(env.body.as_slice() == payload.as_slice());
        drop(h.join().unwrap());
    }
}

#[test]
fn send_to_a_closed_peer_is_an_error() {
    let (a, b) = UnixStream::pair().unwrap();
    drop(a);
    let mut tx = FrameStream::new(b);
    let err = tx.send(&frame::encode(1, &Request::Ping).unwrap());
    assert!(matches!(err, Err(Error::Io(_))), "{err:?}");
}

fn io_kind<T: std::fmt::Debug>(r: Result<T, Error>) -> std::io::ErrorKind {
    match r {
        Err(Error::Io(e)) => e.kind(),
        other => panic!("expected an i/o error, got {other:?}"),
    }
}

#[test]
fn announced_length_alone_allocates_nothing_and_a_stall_times_out() {
    let (a, mut b) = UnixStream::pair().unwrap();
    let mut rx = FrameStream::new(a);
    rx.set_stall_timeout(Some(Duration::from_millis(50)));
    // A 1 GiB frame announced, 100 kB of it sent, then silence.
    b.write_all(&(1u32 << 30).to_be_bytes()).unwrap();
    b.write_all(&vec![0x90; 100_000]).unwrap();
    let kind = io_kind(rx.recv(usize::MAX).map(<[u8]>::len));
    assert_eq!(kind, std::io::ErrorKind::TimedOut);
    assert!(
        rx.buffer_len() < 1 << 20,
        "buffer grew to {} bytes for 100 kB received",
        rx.buffer_len()
    );
}

#[test]
fn growth_beyond_the_shared_budget_is_refused_and_returned_on_drop() {
    let budget = MemoryBudget::new(1 << 20);
    let (a, b) = UnixStream::pair().unwrap();
    let mut rx = FrameStream::new(a);
    rx.set_budget(budget.clone());
    let mut tx = FrameStream::new(b);
    let payload = vec![1u8; 4 << 20];
    let frame_bytes = frame::encode(1, &serde_bytes::ByteBuf::from(payload)).unwrap();
    let sender = std::thread::spawn(move || {
        let _ = tx.send(&frame_bytes);
    });
    let kind = io_kind(rx.recv(usize::MAX).map(<[u8]>::len));
    assert_eq!(kind, std::io::ErrorKind::OutOfMemory);
    assert!(budget.used() <= budget.limit());
    drop(rx);
    sender.join().unwrap();
    assert_eq!(budget.used(), 0, "a dropped stream returns its share");

    // Within the budget, a frame arrives and its growth is returned once it shrinks.
    let (a, b) = UnixStream::pair().unwrap();
    let mut rx = FrameStream::new(a);
    rx.set_budget(budget.clone());
    let mut tx = FrameStream::new(b);
    tx.send(&frame::encode(2, &Request::Ping).unwrap()).unwrap();
    let env: Envelope<Request> = frame::decode(rx.recv(1024).unwrap()).unwrap();
    assert_eq!(env.id, 2);
    drop(rx);
    assert_eq!(budget.used(), 0);
}

#[test]
fn recv_by_a_deadline_fails_for_a_silent_peer_and_passes_a_prompt_one() {
    let (a, b) = UnixStream::pair().unwrap();
    let mut rx = FrameStream::new(a);
    let deadline = Instant::now() + Duration::from_millis(50);
    let kind = io_kind(rx.recv_by(1024, Some(deadline)).map(<[u8]>::len));
    assert_eq!(kind, std::io::ErrorKind::TimedOut);
    assert!(Instant::now() >= deadline);
    let mut tx = FrameStream::new(b);
    tx.send(&frame::encode(4, &Request::Ping).unwrap()).unwrap();
    let far = Instant::now() + Duration::from_secs(30);
    let env: Envelope<Request> = frame::decode(rx.recv_by(1024, Some(far)).unwrap()).unwrap();
    assert_eq!(env.id, 4);
}
