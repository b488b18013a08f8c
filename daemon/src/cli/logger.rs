//! The daemon's logger: one line per event with a UTC timestamp, to the log file beside
//! the socket (or to stderr with `--foreground-log`).
//!
//! Layer: installed by `asebytesd run` ([`crate::cli`]) before anything logs.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::config::Config;

/// Log lines go to the log file (or stderr with `--foreground-log`), one per event, with
/// a UTC timestamp.
struct Logger {
    level: log::LevelFilter,
    sink: Mutex<Box<dyn Write + Send>>,
}

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= self.level
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = format!(
            "{} {:<5} {}\n",
            utc_timestamp(SystemTime::now()),
            record.level(),
            record.args()
        );
        let mut sink = self
            .sink
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let _ = sink.write_all(line.as_bytes());
    }

    fn flush(&self) {
        let _ = self
            .sink
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .flush();
    }
}

pub(super) fn init_logging(config: &Config, foreground: bool) {
    let sink: Box<dyn Write + Send> = if foreground {
        Box::new(io::stderr())
    } else {
        match OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&config.log_file)
        {
            Ok(f) => Box::new(f),
            Err(e) => {
                eprintln!(
                    "asebytesd: cannot open log file {}: {e}; logging to stderr",
                    config.log_file.display()
                );
                Box::new(io::stderr())
            }
        }
    };
    let logger = Logger {
        level: config.log_level,
        sink: Mutex::new(sink),
    };
    // A host process (Python) may already have a logger; then ours is not needed.
    if log::set_boxed_logger(Box::new(logger)).is_ok() {
        log::set_max_level(config.log_level);
    }
}

/// `2026-11-25T02:20:00.123Z`.
fn utc_timestamp(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86400, secs % 86400);
    // Civil-from-days (Howard Hinnant's algorithm), valid for every date after 1970.
    let z = days as i64 + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_are_utc_civil_dates() {
        let t = UNIX_EPOCH + Duration::from_millis(1_795_487_400_123);
        assert_eq!(utc_timestamp(t), "2026-11-24T02:30:00.123Z");
        assert_eq!(utc_timestamp(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
    }
}
