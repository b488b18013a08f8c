//! HTTP to the Hub with the ureq agent hf-hub itself uses: byte ranges of a remote file
//! (`Range: bytes=a-b` → `206`), and the mapping of HTTP failures to backend errors
//! (401/403 → `PermissionDenied`, 404 → `NotFound`, no connection → `Unavailable`).
//! The token travels only in the `Authorization` header and never appears in a message.
//!
//! Layer: inside [`super`] (the hub backend), under [`super::resolve`] and
//! [`super::parquet`].

use std::io::Read;
use std::time::Duration;

use bytes::Bytes;

use crate::backend::{Error, ErrorKind, Result};

/// The largest file read whole when a server ignores `Range` (a test server, a proxy).
const MAX_WHOLE_FILE: u64 = 64 << 20;

/// A connection to one endpoint with one token.
#[derive(Clone)]
pub struct Http {
    agent: ureq::Agent,
    token: Option<String>,
}

impl std::fmt::Debug for Http {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http")
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .finish_non_exhaustive()
    }
}

/// What was asked, for messages (`dataset 'owner/name'`, `file 'main/a.parquet'`).
pub type What<'a> = &'a str;

impl Http {
    /// An agent that follows redirects (the Hub sends LFS files to a CDN) and reads proxies
    /// from the environment, as hf-hub's does.
    pub fn new(token: Option<String>) -> Self {
        let agent = ureq::AgentBuilder::new()
            .try_proxy_from_env(true)
            .timeout_connect(Duration::from_secs(30))
            .timeout_read(Duration::from_secs(120))
            .build();
        Self { agent, token }
    }

    fn get(&self, url: &str) -> ureq::Request {
        let req = self.agent.get(url);
        match &self.token {
            Some(t) => req.set("Authorization", &format!("Bearer {t}")),
            None => req,
        }
    }

    /// `length` bytes of `url` from `start`.
    pub fn range(&self, url: &str, what: What<'_>, start: u64, length: usize) -> Result<Bytes> {
        if length == 0 {
            return Ok(Bytes::new());
        }
        let last = start + length as u64 - 1;
        let resp = self
            .get(url)
            .set("Range", &format!("bytes={start}-{last}"))
            .call()
            .map_err(|e| failure(what, e))?;
        if resp.status() != 206 && start != 0 {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "{what}: the server ignored a byte-range request (status {})",
                    resp.status()
                ),
            ));
        }
        read_exact(resp, what, length)
    }

    /// The last `length` bytes of `url` (fewer if the file is smaller) and the file's size.
    pub fn tail(&self, url: &str, what: What<'_>, length: usize) -> Result<(Bytes, u64)> {
        let resp = self
            .get(url)
            .set("Range", &format!("bytes=-{length}"))
            .call()
            .map_err(|e| failure(what, e))?;
        let size = match (resp.status(), resp.header("Content-Range")) {
            (206, Some(cr)) => cr
                .rsplit('/')
                .next()
                .and_then(|s| s.trim().parse::<u64>().ok()),
            (200, _) => resp.header("Content-Length").and_then(|s| s.parse().ok()),
            _ => None,
        }
        .ok_or_else(|| {
            Error::new(
                ErrorKind::Unsupported,
                format!("{what}: the server gave no file size for a byte-range request"),
            )
        })?;
        let whole = resp.status() == 200;
        if whole && size > MAX_WHOLE_FILE {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!("{what}: the server ignored a byte-range request for a {size}-byte file"),
            ));
        }
        let want = if whole { size as usize } else { length };
        let body = read_exact(resp, what, want)?;
        // A 200 answer is the whole file: keep its tail.
        let keep = body.len().min(length);
        Ok((body.slice(body.len() - keep..), size))
    }

    /// The body of `url` as text, at most `limit` bytes.
    pub fn text(&self, url: &str, what: What<'_>, limit: usize) -> Result<String> {
        let resp = self.get(url).call().map_err(|e| failure(what, e))?;
        let mut buf = Vec::new();
        resp.into_reader()
            .take(limit as u64)
            .read_to_end(&mut buf)
            .map_err(|e| io_failure(what, &e))?;
        String::from_utf8(buf)
            .map_err(|_| Error::new(ErrorKind::Corrupt, format!("{what} is not UTF-8 text")))
    }
}

fn read_exact(resp: ureq::Response, what: What<'_>, length: usize) -> Result<Bytes> {
    let mut buf = Vec::new();
    resp.into_reader()
        .take(length as u64)
        .read_to_end(&mut buf)
        .map_err(|e| io_failure(what, &e))?;
    Ok(Bytes::from(buf))
}

fn io_failure(what: What<'_>, e: &std::io::Error) -> Error {
    Error::new(
        ErrorKind::Unavailable,
        format!("{what}: reading from the Hub failed: {e}"),
    )
}

/// The backend error for a failed request about `what`.
pub fn failure(what: What<'_>, e: ureq::Error) -> Error {
    match e {
        ureq::Error::Status(401 | 403, _) => Error::new(
            ErrorKind::PermissionDenied,
            format!(
                "{what} is gated or private and the Hub refused access: accept its terms on \
                 the Hub and set HF_TOKEN (or pass token=) to a token that may read it"
            ),
        ),
        ureq::Error::Status(404, _) => {
            Error::new(ErrorKind::NotFound, format!("{what} not found on the Hub"))
        }
        ureq::Error::Status(code, _) => Error::new(
            ErrorKind::Unavailable,
            format!("{what}: the Hub answered HTTP {code}"),
        ),
        ureq::Error::Transport(t) => Error::new(
            ErrorKind::Unavailable,
            format!("{what}: cannot reach the Hub ({})", t.kind()),
        ),
    }
}

/// Whether `e` means the Hub could not be reached at all (so the HF cache may answer).
pub fn unreachable(e: &Error) -> bool {
    e.kind == ErrorKind::Unavailable
}
