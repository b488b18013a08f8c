//! A mock HuggingFace Hub for the contract suite's read-only part: one dataset repo served
//! from a directory on a free loopback port, answering what the hub backend asks (the
//! repo listing `GET /api/datasets/<repo>/revision/<rev>`, and `GET
//! /datasets/<repo>/resolve/<rev>/<path>` with `Range` → `206` + `Content-Range`, `ETag`
//! and `X-Repo-Commit`). One connection per request (`Connection: close`).
//!
//! Layer: test-only; `tests/python/_hub_server.py` is the richer Python twin.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

/// The commit every revision of the mock repo resolves to.
pub const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

/// A running mock Hub; stops when dropped.
#[derive(Debug)]
pub struct MockHub {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MockHub {
    /// Serves the files under `root` as the dataset repo `repo` (`owner/name`).
    pub fn start(root: &Path, repo: &str) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let url = format!("http://{}", listener.local_addr()?);
        let stop = Arc::new(AtomicBool::new(false));
        let (root, repo, flag) = (root.to_path_buf(), repo.to_string(), stop.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(mut conn) = conn {
                    // A failed answer only fails the request that asked.
                    let _ = answer(&mut conn, &root, &repo);
                }
            }
        });
        Ok(Self {
            url,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for MockHub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.url.trim_start_matches("http://"));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn files(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(root, &path, out);
        } else if let Ok(rel) = path.strip_prefix(root) {
            out.push(rel.to_string_lossy().into_owned());
        }
    }
}

fn answer(conn: &mut TcpStream, root: &Path, repo: &str) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 65536 {
        if conn.read(&mut byte)? == 0 {
            return Ok(());
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    let mut lines = head.lines();
    let target = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("/")
        .replace("%2F", "/");
    let range = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.eq_ignore_ascii_case("range"))
        .map(|(_, v)| v.trim().to_string());
    let api = format!("/api/datasets/{repo}/revision/");
    let resolve = format!("/datasets/{repo}/resolve/");
    if target.starts_with(&api) {
        let mut names = Vec::new();
        files(root, root, &mut names);
        names.sort();
        let siblings: Vec<String> = names
            .iter()
            .map(|n| format!(r#"{{"rfilename": "{n}"}}"#))
            .collect();
        let body = format!(
            r#"{{"sha": "{SHA}", "siblings": [{}]}}"#,
            siblings.join(", ")
        );
        return send(conn, "200 OK", &[], body.as_bytes());
    }
    let Some(rest) = target.strip_prefix(&resolve) else {
        return send(conn, "404 Not Found", &[], b"not found");
    };
    let path: PathBuf = root.join(rest.split_once('/').map_or("", |(_, p)| p));
    let Ok(data) = std::fs::read(&path) else {
        return send(conn, "404 Not Found", &[], b"Entry not found");
    };
    let size = data.len();
    let headers = vec![
        ("ETag".to_string(), format!("\"{size}-{}\"", path.display())),
        ("X-Repo-Commit".to_string(), SHA.to_string()),
    ];
    let Some(spec) = range.as_deref().and_then(|r| r.strip_prefix("bytes=")) else {
        return send(conn, "200 OK", &headers, &data);
    };
    let (first, last) = spec.split_once('-').unwrap_or((spec, ""));
    let (start, stop) = match (first.parse::<usize>(), last.parse::<usize>()) {
        (Err(_), Ok(n)) => (size.saturating_sub(n), size),
        (Ok(a), Ok(b)) => (a, (b + 1).min(size)),
        (Ok(a), Err(_)) => (a, size),
        _ => (0, size),
    };
    if start >= stop {
        return send(conn, "416 Range Not Satisfiable", &[], b"");
    }
    let mut headers = headers;
    headers.push((
        "Content-Range".to_string(),
        format!("bytes {start}-{}/{size}", stop - 1),
    ));
    send(conn, "206 Partial Content", &headers, &data[start..stop])
}

fn send(
    conn: &mut TcpStream,
    status: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    conn.write_all(out.as_bytes())?;
    conn.write_all(body)?;
    conn.flush()
}
