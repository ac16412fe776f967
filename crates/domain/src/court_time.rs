//! The court's calendar time: Asia/Shanghai (the court's day, year and
//! local clock), in one place for every module that speaks of "today".
//! Pure functions; the time zone database is bundled (`jiff`).

use jiff::Timestamp;

/// The court's time zone (Asia/Shanghai).
pub fn court_tz() -> jiff::tz::TimeZone {
    jiff::tz::TimeZone::get("Asia/Shanghai").expect("bundled tzdb has Asia/Shanghai")
}

/// The day `at` falls on in the court's time zone.
pub fn court_day(at: Timestamp) -> jiff::civil::Date {
    at.to_zoned_datetime(court_tz()).date()
}

/// The year a ticket is numbered in: the court's.
pub fn court_year(at: Timestamp) -> i16 {
    at.to_zoned_datetime(court_tz()).year()
}

/// `at` as the court's clock shows it, `2026-12-01 17:00:00`.
pub fn local(at: Timestamp) -> String {
    at.to_zoned_datetime(court_tz())
        .strftime("%Y-%m-%d %H:%M:%S")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_courts_day_turns_at_midnight_in_qingdao() {
        let before: Timestamp = "2026-12-07T15:59:59Z".parse().unwrap();
        let after: Timestamp = "2026-12-07T16:00:00Z".parse().unwrap();
        assert_eq!(court_day(before).to_string(), "2026-12-07");
        assert_eq!(court_day(after).to_string(), "2026-12-08");
        assert_eq!(local(after), "2026-12-08 00:00:00");
        let new_year: Timestamp = "2026-12-31T16:00:00Z".parse().unwrap();
        assert_eq!(court_year(new_year), 2027);
    }
}
