//! Local wall-clock time for `--until HH:MM` and report stamps: the next occurrence of a time of day in the
//! system's time zone (`TZ`, else `/etc/localtime`), daylight-saving changes included (jiff).

use std::time::SystemTime;

use jiff::Timestamp;
use jiff::tz::TimeZone;

/// Returns the first instant after `now` whose local time in `tz` is `hour:minute`. A time that
/// a clock change skips (02:30 on a spring-forward night) resolves to the instant after the gap;
/// a time that happens twice resolves to the first.
pub fn next_occurrence(
    now: Timestamp,
    tz: &TimeZone,
    hour: u8,
    minute: u8,
) -> Result<Timestamp, String> {
    let today = now.to_zoned_datetime(tz.clone()).date();
    let mut day = today;
    for _ in 0..3 {
        let at = day
            .at(hour as i8, minute as i8, 0, 0)
            .to_zoned_datetime(tz.clone())
            .map_err(|e| e.to_string())?;
        if at.timestamp() > now {
            return Ok(at.timestamp());
        }
        day = day.tomorrow().map_err(|e| e.to_string())?;
    }
    Err(format!("no {hour:02}:{minute:02} in the next days"))
}

/// Returns the next occurrence of `hour:minute` local time after now, as a system time.
pub fn next_local(hour: u8, minute: u8) -> Result<SystemTime, String> {
    let tz = TimeZone::try_system().unwrap_or(TimeZone::UTC);
    let at = next_occurrence(Timestamp::now(), &tz, hour, minute)?;
    SystemTime::try_from(at).map_err(|e| e.to_string())
}

/// Returns the local time now as `YYMMDD-HHMM` (the stamp of mode report directories).
pub fn stamp_now() -> String {
    let tz = TimeZone::try_system().unwrap_or(TimeZone::UTC);
    Timestamp::now()
        .to_zoned_datetime(tz)
        .strftime("%y%m%d-%H%M")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paris() -> TimeZone {
        // A POSIX rule, so the test needs no time-zone database.
        TimeZone::posix("CET-1CEST,M3.5.0,M10.5.0/3").unwrap()
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn later_today_or_tomorrow() {
        let tz = paris();
        // 22:00 local (UTC+1 in January) -> 07:00 local the next morning.
        let at = next_occurrence(ts("2026-01-10T21:00:00Z"), &tz, 7, 0).unwrap();
        assert_eq!(at, ts("2026-01-11T06:00:00Z"));
        // 05:00 local -> 07:00 the same day.
        let at = next_occurrence(ts("2026-01-10T04:00:00Z"), &tz, 7, 0).unwrap();
        assert_eq!(at, ts("2026-01-10T06:00:00Z"));
        // Exactly 07:00 now: the next one, tomorrow.
        let at = next_occurrence(ts("2026-01-10T06:00:00Z"), &tz, 7, 0).unwrap();
        assert_eq!(at, ts("2026-01-11T06:00:00Z"));
    }

    #[test]
    fn across_a_clock_change() {
        let tz = paris();
        // The night of 2026-03-29 loses an hour: 23:00 CET -> 07:00 CEST is 7 hours, not 8.
        let at = next_occurrence(ts("2026-03-28T22:00:00Z"), &tz, 7, 0).unwrap();
        assert_eq!(at, ts("2026-03-29T05:00:00Z"));
        // 02:30 does not exist that night: the instant after the gap.
        let at = next_occurrence(ts("2026-03-28T22:00:00Z"), &tz, 2, 30).unwrap();
        assert_eq!(at, ts("2026-03-29T01:30:00Z"));
    }

    #[test]
    fn the_system_zone_gives_a_time_within_a_day() {
        let at = next_local(7, 0).unwrap();
        let left = at.duration_since(SystemTime::now()).unwrap();
        assert!(left.as_secs() <= 24 * 3600 + 3600, "{left:?}");
    }
}
