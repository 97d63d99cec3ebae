//! Timestamps as the seed shows them: ISO-8601 UTC (`2025-01-10T12:00:00.000Z`),
//! always with milliseconds so clients can sort strings.

use time::OffsetDateTime;
use time::macros::format_description;

pub fn format_millis(unix_ms: i64) -> String {
    let format =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .format(&format)
        .unwrap_or_default()
}

pub fn now_rfc3339() -> String {
    let now = OffsetDateTime::now_utc();
    format_millis((now.unix_timestamp_nanos() / 1_000_000) as i64)
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_with_milliseconds_in_utc() {
        assert_eq!(
            super::format_millis(1_736_510_400_000),
            "2025-01-10T12:00:00.000Z"
        );
        assert_eq!(
            super::format_millis(1_736_510_400_042),
            "2025-01-10T12:00:00.042Z"
        );
    }
}
