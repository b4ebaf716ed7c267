//! The tape header: what a tape is and when its offset 0 was.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The Shadowcat version that built this crate, written into new tapes' headers.
pub const SHADOWCAT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// What a tape is: its id, its wall-clock anchor, the Shadowcat that wrote it, and the
/// user's name, tags and free-form metadata.
///
/// The format name and version are not part of it: they belong to the file, are written
/// by the format's writer and reported by its reader.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct TapeHeader {
    /// The tape's id, unique within a tape store.
    pub tape_id: String,
    /// The wall-clock time of offset 0, as RFC 3339 in UTC
    /// (`2025-06-18T09:30:00.000000000Z`). For people; `started_at_unix_ns` is authoritative.
    pub started_at: String,
    /// The wall-clock time of offset 0, in nanoseconds since the Unix epoch.
    pub started_at_unix_ns: u64,
    /// The version of the Shadowcat that recorded the tape.
    pub shadowcat_version: String,
    /// A name the user gave the tape.
    pub name: Option<String>,
    /// Tags the user gave the tape, in the order given.
    pub tags: Vec<String>,
    /// Free-form facts about the recording, such as `"mode": "forward"` and the upstream.
    pub metadata: BTreeMap<String, serde_json::Value>,
}

impl TapeHeader {
    /// A header for a tape whose offset 0 is the wall-clock time `started`, recorded by this
    /// Shadowcat version. Times before the Unix epoch count as the epoch.
    pub fn new(tape_id: impl Into<String>, started: SystemTime) -> Self {
        let unix_ns = started
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        Self::from_unix_ns(tape_id, unix_ns)
    }

    /// A header whose offset 0 is `unix_ns` nanoseconds after the Unix epoch.
    pub fn from_unix_ns(tape_id: impl Into<String>, unix_ns: u64) -> Self {
        Self {
            tape_id: tape_id.into(),
            started_at: format_rfc3339(unix_ns),
            started_at_unix_ns: unix_ns,
            shadowcat_version: SHADOWCAT_VERSION.to_owned(),
            name: None,
            tags: Vec::new(),
            metadata: BTreeMap::new(),
        }
    }

    /// Sets the name.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Adds a tag.
    pub fn with_tag(mut self, tag: impl Into<String>) -> Self {
        self.tags.push(tag.into());
        self
    }

    /// Sets one metadata entry.
    pub fn with_metadata(mut self, key: impl Into<String>, value: serde_json::Value) -> Self {
        self.metadata.insert(key.into(), value);
        self
    }

    /// Sets the Shadowcat version (by default, this build's).
    pub fn with_shadowcat_version(mut self, version: impl Into<String>) -> Self {
        self.shadowcat_version = version.into();
        self
    }

    /// The wall-clock time of offset 0.
    pub fn started(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_nanos(self.started_at_unix_ns)
    }

    /// The wall-clock time of a frame at `offset_ns`, in nanoseconds since the Unix epoch.
    pub fn unix_ns_at(&self, offset_ns: u64) -> u64 {
        self.started_at_unix_ns.saturating_add(offset_ns)
    }
}

/// Formats nanoseconds since the Unix epoch as RFC 3339 in UTC with nine fraction digits:
/// `1970-01-01T00:00:00.000000000Z`.
pub fn format_rfc3339(unix_ns: u64) -> String {
    let secs = unix_ns / 1_000_000_000;
    let nanos = unix_ns % 1_000_000_000;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, for non-negative day counts).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00.000000000Z");
        // 2000-02-29T12:34:56.789Z, a leap day in a year divisible by 400.
        assert_eq!(
            format_rfc3339(951_827_696_789_000_000),
            "2000-02-29T12:34:56.789000000Z"
        );
        assert_eq!(
            format_rfc3339(1_750_239_000_000_000_001),
            "2025-06-18T09:30:00.000000001Z"
        );
        assert_eq!(format_rfc3339(u64::MAX), "2554-07-21T23:34:33.709551615Z");
    }

    #[test]
    fn system_time_round_trips() {
        let t = UNIX_EPOCH + Duration::from_nanos(1_750_239_000_123_456_789);
        let header = TapeHeader::new("t", t);
        assert_eq!(header.started(), t);
        assert_eq!(header.started_at, "2025-06-18T09:30:00.123456789Z");
        assert_eq!(header.unix_ns_at(1), 1_750_239_000_123_456_790);
    }
}
