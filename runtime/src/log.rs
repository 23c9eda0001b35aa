//! Messages for the user and for podman: one line on stderr, and with --log a copy
//! in the file, as runc writes it (`--log-format json`: one JSON object per line).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::{Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

struct Logger {
    file: Option<File>,
    format: Format,
    debug: bool,
}

static LOGGER: OnceLock<Mutex<Logger>> = OnceLock::new();

pub fn init(path: Option<&Path>, format: Format, debug: bool) -> std::io::Result<()> {
    let file = match path {
        Some(p) => Some(OpenOptions::new().create(true).append(true).open(p)?),
        None => None,
    };
    let _ = LOGGER.set(Mutex::new(Logger {
        file,
        format,
        debug,
    }));
    Ok(())
}

fn emit(level: &str, msg: &str) {
    let Some(lock) = LOGGER.get() else {
        if level != "debug" {
            eprintln!("minirun: {msg}");
        }
        return;
    };
    let mut l = lock.lock().unwrap_or_else(|e| e.into_inner());
    if level == "debug" && !l.debug {
        return;
    }
    let line = match l.format {
        Format::Json => {
            serde_json::json!({"level": level, "msg": msg, "time": now_rfc3339()}).to_string()
        }
        Format::Text => format!("time=\"{}\" level={level} msg={:?}", now_rfc3339(), msg),
    };
    match l.file.as_mut() {
        Some(f) => {
            let _ = writeln!(f, "{line}");
        }
        None if level == "debug" => eprintln!("{line}"),
        None => {}
    }
    if level != "debug" {
        eprintln!("minirun: {msg}");
    }
}

pub fn error(msg: &str) {
    emit("error", msg);
}

pub fn warn(msg: &str) {
    emit("warning", msg);
}

pub fn debug(msg: &str) {
    emit("debug", msg);
}

/// Now as RFC 3339 with nanoseconds in UTC, the form runc and podman use.
pub fn now_rfc3339() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(d.as_secs() as i64, d.subsec_nanos())
}

pub fn rfc3339(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(rfc3339(1_795_000_000, 5), "2026-11-18T11:06:40.000000005Z");
        assert_eq!(rfc3339(951_782_400, 0), "2000-02-29T00:00:00.000000000Z");
    }
}
