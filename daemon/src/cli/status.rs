//! `asebytesd status [--json]`: what the running daemon holds — its clients (pid, program,
//! since when, how many stores) and its stores (length, users, whether released, idle
//! time, requests in flight, queued writes). What a user runs instead of `fuser`.
//!
//! Layer: the top, with the rest of [`crate::cli`]; one `Status` request over the wire.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use asebytes_protocol::response::Status;
use asebytes_protocol::{Request, Response};

use super::control::request;
use crate::launcher;

/// `asebytesd status`; `json` prints the answer as JSON (the fields of the protocol's
/// `Status`) instead of text.
pub(super) fn status(socket: &Path, json: bool) -> i32 {
    let mut stream = match launcher::connect(socket) {
        Ok((stream, _)) => stream,
        Err(e) if e.is_no_daemon() => {
            eprintln!(
                "no asebytesd is running on {} (start one with `asebytesd start`)",
                socket.display()
            );
            return 1;
        }
        Err(e) => {
            eprintln!("asebytesd: {e}");
            return 1;
        }
    };
    match request(&mut stream, &Request::Status) {
        Ok(Response::Status(s)) if json => match serde_json::to_string_pretty(&s) {
            Ok(text) => {
                println!("{text}");
                0
            }
            Err(e) => {
                eprintln!("asebytesd: cannot format the status as JSON: {e}");
                1
            }
        },
        Ok(Response::Status(s)) => {
            print!("{}", format_status(&s, unix_now()));
            0
        }
        Ok(other) => {
            eprintln!("asebytesd: the daemon answered {other:?} to status");
            1
        }
        Err(e) => {
            eprintln!("asebytesd: {e}");
            1
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// The text `asebytesd status` prints, with connection ages relative to `now` (seconds
/// since the Unix epoch).
pub fn format_status(s: &Status, now: u64) -> String {
    let secs_or_never = |n: u64| match n {
        0 => "never".to_string(),
        n => format!("{n}s"),
    };
    let mut out = format!(
        "asebytesd {} (protocol {})\n\
         pid:          {}\n\
         uptime:       {}\n\
         clients:      {}\n\
         idle timeout: {}\n\
         store idle:   {}\n\
         socket:       {}\n",
        s.version,
        s.protocol,
        s.pid,
        format_duration(s.uptime_secs),
        s.clients,
        secs_or_never(s.idle_timeout_secs),
        secs_or_never(s.store_idle_secs),
        s.socket
    );
    if !s.connections.is_empty() {
        let rows: Vec<Vec<String>> = s
            .connections
            .iter()
            .map(|c| {
                vec![
                    c.pid.to_string(),
                    format_duration(now.saturating_sub(c.since)),
                    c.stores.to_string(),
                    c.program.clone(),
                ]
            })
            .collect();
        out.push('\n');
        out.push_str(&table(
            &["PID", "CONNECTED", "STORES", "PROGRAM"],
            &rows,
            &[false, false, false, true],
        ));
    }
    if s.stores.is_empty() {
        out.push_str("\nstores:       none open\n");
        return out;
    }
    let rows: Vec<Vec<String>> = s
        .stores
        .iter()
        .map(|st| {
            vec![
                st.canonical.clone(),
                st.backend.clone(),
                st.len.to_string(),
                st.clients.to_string(),
                st.commits.to_string(),
                if st.released { "released" } else { "open" }.to_string(),
                format!("{}s", st.idle_secs),
                st.in_flight.to_string(),
                st.queued.to_string(),
                st.followers.to_string(),
                space(st.space_used, st.space_reserved),
            ]
        })
        .collect();
    out.push('\n');
    out.push_str(&table(
        &[
            "STORE",
            "BACKEND",
            "LEN",
            "CLIENTS",
            "COMMITS",
            "FILES",
            "IDLE",
            "ACTIVE",
            "QUEUED",
            "FOLLOWING",
            "SPACE",
        ],
        &rows,
        &[
            true, true, false, false, false, true, false, false, false, false, false,
        ],
    ));
    out
}

/// A text table; `left[i]` says whether column `i` is left-aligned (text) or
/// right-aligned (numbers).
fn table(headers: &[&str], rows: &[Vec<String>], left: &[bool]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut l = String::new();
        for ((cell, w), &left) in cells.into_iter().zip(&widths).zip(left) {
            let pad = " ".repeat(w.saturating_sub(cell.chars().count()));
            if left {
                l.push_str(cell);
                l.push_str(&pad);
            } else {
                l.push_str(&pad);
                l.push_str(cell);
            }
            l.push_str("  ");
        }
        l.trim_end().to_string() + "\n"
    };
    let mut out = line(headers.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// `used/reserved` in binary units (`1.5M/10G`), or `-` when the backend reports none.
fn space(used: u64, reserved: u64) -> String {
    if reserved == 0 {
        return "-".into();
    }
    format!("{}/{}", bytes(used), bytes(reserved))
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "K", "M", "G", "T", "P"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 || value >= 10.0 || value.fract() == 0.0 {
        format!("{value:.0}{}", UNITS[unit])
    } else {
        format!("{value:.1}{}", UNITS[unit])
    }
}

fn format_duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}d {h:02}h {m:02}m {s:02}s")
    } else {
        format!("{h:02}h {m:02}m {s:02}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use asebytes_protocol::response::{ClientStatus, StoreStatus};

    fn sample() -> Status {
        Status {
            version: "0.1.0".into(),
            protocol: 1,
            pid: 42,
            uptime_secs: 3725,
            clients: 2,
            socket: "/s".into(),
            idle_timeout_secs: 0,
            store_idle_secs: 5,
            stores: vec![
                StoreStatus {
                    canonical: "lmdb:///d/x.lmdb#default".into(),
                    backend: "lmdb".into(),
                    len: 10,
                    clients: 1,
                    commits: 3,
                    idle_secs: 1,
                    in_flight: 2,
                    queued: 1,
                    followers: 1,
                    released: false,
                    space_used: 1536 * 1024,
                    space_reserved: 10 << 30,
                    cache_fills: 0,
                },
                StoreStatus {
                    canonical: "lmdb:///d/y.lmdb#default".into(),
                    backend: "lmdb".into(),
                    len: 4,
                    clients: 1,
                    released: true,
                    idle_secs: 70,
                    ..StoreStatus::default()
                },
            ],
            connections: vec![ClientStatus {
                conn: 1,
                pid: 1234,
                program: "python3 -m ipykernel_launcher -f k.json".into(),
                since: 1000,
                stores: 2,
            }],
        }
    }

    fn row_of(text: &str, start: &str) -> Vec<String> {
        let line = text.lines().find(|l| l.starts_with(start)).expect(text);
        line.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn status_text_lists_clients_and_stores() {
        let text = format_status(&sample(), 1065);
        assert!(text.contains("pid:          42"), "{text}");
        assert!(text.contains("uptime:       01h 02m 05s"), "{text}");
        assert!(text.contains("idle timeout: never"), "{text}");
        assert!(text.contains("store idle:   5s"), "{text}");
        assert_eq!(
            row_of(&text, "lmdb:///d/x"),
            [
                "lmdb:///d/x.lmdb#default",
                "lmdb",
                "10",
                "1",
                "3",
                "open",
                "1s",
                "2",
                "1",
                "1",
                "1.5M/10G"
            ]
        );
        assert_eq!(
            row_of(&text, "lmdb:///d/y"),
            [
                "lmdb:///d/y.lmdb#default",
                "lmdb",
                "4",
                "1",
                "0",
                "released",
                "70s",
                "0",
                "0",
                "0",
                "-"
            ]
        );
        let client = row_of(&text, "1234");
        assert_eq!(client[..5], ["1234", "00h", "01m", "05s", "2"]);
        assert!(
            text.contains("python3 -m ipykernel_launcher -f k.json"),
            "{text}"
        );
    }

    #[test]
    fn status_text_without_stores_says_so() {
        let s = Status {
            connections: vec![],
            stores: vec![],
            ..sample()
        };
        let text = format_status(&s, 0);
        assert!(text.contains("stores:       none open"), "{text}");
        assert!(!text.contains("PROGRAM"), "{text}");
    }

    #[test]
    fn status_json_has_every_field() {
        let json = serde_json::to_value(sample()).unwrap();
        assert_eq!(json["connections"][0]["pid"], 1234);
        assert_eq!(json["stores"][1]["released"], true);
        assert_eq!(json["store_idle_secs"], 5);
    }
}
