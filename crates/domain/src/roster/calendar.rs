//! The holiday calendar: one file per year in `config/holidays/`, from the
//! State Council's notice. Four kinds of day. A year without a file gets
//! provisional dates: the statutory holidays of 全国年节及纪念日放假办法 (as
//! revised in 2024, in force since 2025) computed for it — New Year 1 day,
//! Spring Festival 4 days from New Year's Eve, Qingming 1, Labour Day 2,
//! Dragon Boat 1, Mid-Autumn 1, National Day 3 — without the notice's
//! adjusted working days (调休), and said to be provisional.

use std::collections::BTreeMap;
use std::path::Path;

use jiff::civil::{Date, Weekday};
use serde::Deserialize;

use super::RosterError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayType {
    Working,
    Weekend,
    PublicHoliday,
    /// 调休: a weekend day that is worked.
    AdjustedWorking,
}

impl DayType {
    pub fn is_working(self) -> bool {
        matches!(self, DayType::Working | DayType::AdjustedWorking)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DayType::Working => "working day",
            DayType::Weekend => "weekend",
            DayType::PublicHoliday => "public holiday",
            DayType::AdjustedWorking => "adjusted working day",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct YearFile {
    year: i16,
    source: String,
    holidays: Vec<HolidayRange>,
    adjusted_working_days: Vec<Date>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct HolidayRange {
    name: String,
    from: Date,
    to: Date,
}

/// What one year's notice says.
#[derive(Debug, Clone, Default)]
pub struct Year {
    pub source: String,
    holidays: BTreeMap<Date, String>,
    adjusted: Vec<Date>,
}

/// Every year the court has a notice for.
#[derive(Debug, Clone, Default)]
pub struct Calendar {
    years: BTreeMap<i16, Year>,
}

impl Calendar {
    /// Loads every `*.toml` in `dir`.
    pub fn load(dir: &Path) -> Result<Calendar, RosterError> {
        let mut cal = Calendar::default();
        let entries = std::fs::read_dir(dir).map_err(|e| RosterError::Read {
            file: dir.display().to_string(),
            error: e.to_string(),
        })?;
        let mut paths: Vec<_> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        for p in paths {
            let file = p.display().to_string();
            let text = std::fs::read_to_string(&p).map_err(|e| RosterError::Read {
                file: file.clone(),
                error: e.to_string(),
            })?;
            cal.add(&text, &file)?;
        }
        Ok(cal)
    }

    /// Adds one year's file (`file` names it in errors).
    pub fn add(&mut self, text: &str, file: &str) -> Result<(), RosterError> {
        let y: YearFile = toml::from_str(text).map_err(|e| RosterError::Invalid {
            file: file.to_string(),
            entry: "calendar".into(),
            problem: e.message().to_string(),
        })?;
        let bad = |entry: String, problem: String| RosterError::Invalid {
            file: file.to_string(),
            entry,
            problem,
        };
        let mut year = Year {
            source: y.source,
            ..Default::default()
        };
        for h in &y.holidays {
            if h.from > h.to || h.from.year() != y.year || h.to.year() != y.year {
                return Err(bad(
                    format!("holidays {}", h.name),
                    format!("{}..{} is not a range within {}", h.from, h.to, y.year),
                ));
            }
            let mut d = h.from;
            while d <= h.to {
                year.holidays.insert(d, h.name.clone());
                d = d.tomorrow().expect("within the year");
            }
        }
        for d in &y.adjusted_working_days {
            if d.year() != y.year || !matches!(d.weekday(), Weekday::Saturday | Weekday::Sunday) {
                return Err(bad(
                    format!("adjusted_working_days {d}"),
                    "must be a Saturday or Sunday of the file's year".into(),
                ));
            }
            if year.holidays.contains_key(d) {
                return Err(bad(
                    format!("adjusted_working_days {d}"),
                    "is also listed as a holiday".into(),
                ));
            }
        }
        year.adjusted = y.adjusted_working_days;
        if self.years.insert(y.year, year).is_some() {
            return Err(bad("year".into(), format!("{} is given twice", y.year)));
        }
        Ok(())
    }

    pub fn knows(&self, year: i16) -> bool {
        self.years.contains_key(&year)
    }

    /// The kind of a day, and whether a notice says so (`false`: the year
    /// has no file and its provisional statutory holidays are used).
    pub fn day(&self, d: Date) -> (DayType, bool) {
        let weekend = matches!(d.weekday(), Weekday::Saturday | Weekday::Sunday);
        let plain = if weekend {
            DayType::Weekend
        } else {
            DayType::Working
        };
        match self.years.get(&d.year()) {
            None if statutory_holiday(d).is_some() => (DayType::PublicHoliday, false),
            None => (plain, false),
            Some(y) if y.holidays.contains_key(&d) => (DayType::PublicHoliday, true),
            Some(y) if y.adjusted.contains(&d) => (DayType::AdjustedWorking, true),
            Some(_) => (plain, true),
        }
    }

    /// The holiday's name, for a public holiday.
    pub fn holiday_name(&self, d: Date) -> Option<&str> {
        match self.years.get(&d.year()) {
            Some(y) => y.holidays.get(&d).map(String::as_str),
            None => statutory_holiday(d),
        }
    }

    /// The `n`th working day after `day`: the day itself is not counted
    /// (期间开始的日不计算在内, 民事诉讼法第八十五条), public holidays are off and
    /// adjusted weekend days (调休) are worked. `n` = 0 is `day` itself if it
    /// is a working day, else the next one. A year without a notice counts
    /// by its provisional statutory holidays. Bounded: past `n` × 14 + 30
    /// days without enough working days (no real calendar), the day reached.
    pub fn working_day_after(&self, day: Date, n: u32) -> Date {
        let mut d = day;
        let mut left = n;
        if n == 0 && self.day(d).0.is_working() {
            return d;
        }
        let limit = u64::from(n) * 14 + 30;
        for _ in 0..limit {
            let Ok(next) = d.tomorrow() else { return d };
            d = next;
            if self.day(d).0.is_working() {
                left = left.saturating_sub(1);
                if left == 0 {
                    return d;
                }
            }
        }
        d
    }

    /// From December on, next year's notice should be in: a warning if not.
    pub fn warning(&self, today: Date) -> Option<String> {
        if !self.knows(today.year()) {
            return Some(provisional(today.year()));
        }
        let next = today.year() + 1;
        (today.month() == 12 && !self.knows(next)).then(|| provisional(next))
    }
}

/// What is said of a year without a notice.
pub fn provisional(year: i16) -> String {
    format!(
        "provisional holiday dates for {year} (the statutory holidays, no adjusted working days): \
add the State Council notice as config/holidays/{year}.toml"
    )
}

/// The statutory holiday on `d`, by 全国年节及纪念日放假办法 (2024 revision),
/// for a year without a notice.
fn statutory_holiday(d: Date) -> Option<&'static str> {
    let y = d.year();
    let day = |m, dd| Date::new(y, m, dd).ok();
    let within = |from: Option<Date>, days: i64| {
        from.is_some_and(|f| d >= f && (d - f).get_days() < days as i32)
    };
    let lunar = |m: u8, dd: u8| {
        lunar_lite::lunar_to_solar(lunar_lite::LunarDate {
            year: i32::from(y),
            month: m,
            day: dd,
            is_leap_month: false,
        })
        .ok()
        .and_then(|s| Date::new(s.year as i16, s.month as i8, s.day as i8).ok())
    };
    if within(day(1, 1), 1) {
        Some("元旦")
    } else if within(lunar(1, 1).and_then(|ny| ny.yesterday().ok()), 4) {
        // New Year's Eve and the first three days.
        Some("春节")
    } else if within(day(4, qingming(y)), 1) {
        Some("清明节")
    } else if within(day(5, 1), 2) {
        Some("劳动节")
    } else if within(lunar(5, 5), 1) {
        Some("端午节")
    } else if within(lunar(8, 15), 1) {
        Some("中秋节")
    } else if within(day(10, 1), 3) {
        Some("国庆节")
    } else {
        None
    }
}

/// The April day of 清明 (the sun at 15°), by the usual formula for
/// 2001-2099: `⌊Y·0.2422 + 4.81⌋ − ⌊Y/4⌋` with `Y` the year's last two
/// digits.
fn qingming(year: i16) -> i8 {
    let y = f64::from(year.rem_euclid(100));
    ((y * 0.2422 + 4.81).floor() - (y / 4.0).floor()) as i8
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn cal() -> Calendar {
        Calendar::load(
            &Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../..")
                .join("config/holidays"),
        )
        .unwrap()
    }

    #[test]
    fn the_known_days_of_2026() {
        let c = cal();
        let day = |m, d| c.day(date(2026, m, d)).0;
        assert_eq!(day(2, 14), DayType::AdjustedWorking);
        assert_eq!(day(2, 28), DayType::AdjustedWorking);
        let mut d = date(2026, 2, 15);
        while d <= date(2026, 2, 23) {
            assert_eq!(c.day(d).0, DayType::PublicHoliday, "{d}");
            assert_eq!(c.holiday_name(d), Some("春节"));
            d = d.tomorrow().unwrap();
        }
        assert_eq!(day(2, 24), DayType::Working);
        assert_eq!(day(1, 1), DayType::PublicHoliday);
        assert_eq!(day(1, 4), DayType::AdjustedWorking);
        assert_eq!(day(3, 7), DayType::Weekend);
        assert_eq!(day(10, 7), DayType::PublicHoliday);
        assert_eq!(day(10, 8), DayType::Working);
        assert_eq!(day(10, 10), DayType::AdjustedWorking);
        assert_eq!(day(9, 20), DayType::AdjustedWorking);
        // 2026 has 33 holiday days in 7 ranges and 6 worked weekend days.
        let all: Vec<Date> = (0..365)
            .map(|i| date(2026, 1, 1) + jiff::Span::new().days(i))
            .collect();
        let holidays = all
            .iter()
            .filter(|d| c.day(**d).0 == DayType::PublicHoliday)
            .count();
        assert_eq!(holidays, 3 + 9 + 3 + 5 + 3 + 3 + 7);
        assert_eq!(
            all.iter()
                .filter(|d| c.day(**d).0 == DayType::AdjustedWorking)
                .count(),
            6
        );
    }

    #[test]
    fn working_days_skip_holidays_and_count_adjusted_saturdays() {
        let c = cal();
        let after = |y, m, d, n| c.working_day_after(date(y, m, d), n);
        // A plain week: Monday + 3 = Thursday; Friday + 3 = Wednesday.
        assert_eq!(after(2026, 12, 7, 3), date(2026, 12, 10));
        assert_eq!(after(2026, 12, 4, 3), date(2026, 12, 9));
        // Thursday 12 February: Friday 13 (1), the adjusted Saturday 14
        // (2), the Spring Festival 15-23 off, Tuesday 24 (3).
        assert_eq!(after(2026, 2, 12, 1), date(2026, 2, 13));
        assert_eq!(after(2026, 2, 12, 2), date(2026, 2, 14));
        assert_eq!(after(2026, 2, 12, 3), date(2026, 2, 24));
        // Received on a holiday: counting starts after it.
        assert_eq!(after(2026, 10, 3, 1), date(2026, 10, 8));
        // National Day: Wednesday 30 September, Thursday 8 October (1),
        // Friday 9 (2), the adjusted Saturday 10 (3).
        assert_eq!(after(2026, 9, 30, 3), date(2026, 10, 10));
        // Zero: the day itself when it is worked, else the next.
        assert_eq!(after(2026, 2, 14, 0), date(2026, 2, 14));
        assert_eq!(after(2026, 2, 15, 0), date(2026, 2, 24));
        // Across the year's end into a year without a notice.
        assert_eq!(after(2026, 12, 30, 2), date(2027, 1, 4));
    }

    #[test]
    fn unknown_year_is_said_to_be_unknown() {
        let c = cal();
        // New Year's Day by the statute; a plain Monday a working day.
        assert_eq!(c.day(date(2027, 1, 1)), (DayType::PublicHoliday, false));
        assert_eq!(c.day(date(2027, 1, 4)), (DayType::Working, false));
        assert_eq!(c.warning(date(2026, 11, 30)), None);
        assert!(c.warning(date(2026, 12, 1)).unwrap().contains("2027"));
        assert!(c
            .warning(date(2027, 1, 5))
            .unwrap()
            .contains("provisional holiday dates for 2027"));
    }

    #[test]
    fn bad_files_name_the_entry() {
        let mut c = Calendar::default();
        let err = c
            .add(
                "year = 2026\nsource = \"x\"\nholidays = []\nadjusted_working_days = [\"2026-03-04\"]\n",
                "h.toml",
            )
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("h.toml") && err.contains("adjusted_working_days 2026-03-04"),
            "{err}"
        );
    }

    #[test]
    fn a_year_without_a_notice_gets_the_statutory_holidays_provisionally() {
        let c = cal();
        assert!(!c.knows(2027));
        let holiday = |y, m, d| {
            let (kind, known) = c.day(date(y, m, d));
            assert!(!known, "{y}-{m}-{d} is provisional");
            (kind == DayType::PublicHoliday)
                .then(|| c.holiday_name(date(y, m, d)).unwrap().to_string())
        };
        // Spring Festival 2027: New Year's Day of the lunar year is 6
        // February; the four days start on New Year's Eve.
        assert_eq!(holiday(2027, 2, 4), None);
        for d in 5..=8 {
            assert_eq!(holiday(2027, 2, d).as_deref(), Some("春节"), "2027-02-{d}");
        }
        assert_eq!(holiday(2027, 2, 9), None);
        assert_eq!(holiday(2027, 1, 1).as_deref(), Some("元旦"));
        assert_eq!(holiday(2027, 4, 5).as_deref(), Some("清明节"));
        assert_eq!(holiday(2027, 5, 1).as_deref(), Some("劳动节"));
        assert_eq!(holiday(2027, 5, 2).as_deref(), Some("劳动节"));
        assert_eq!(holiday(2027, 5, 3), None);
        assert_eq!(holiday(2027, 6, 9).as_deref(), Some("端午节"));
        assert_eq!(holiday(2027, 9, 15).as_deref(), Some("中秋节"));
        for d in 1..=3 {
            assert_eq!(holiday(2027, 10, d).as_deref(), Some("国庆节"));
        }
        assert_eq!(holiday(2027, 10, 4), None, "a Monday after, no 调休 known");
        // Qingming by its formula, years with a known date.
        for (y, d) in [(2023, 5), (2024, 4), (2025, 4), (2026, 5), (2028, 4)] {
            assert_eq!(qingming(y), d, "{y}");
        }
        // The 2026 notice wins over the statute for 2026.
        assert_eq!(c.day(date(2026, 2, 23)), (DayType::PublicHoliday, true));
        assert_eq!(c.day(date(2026, 2, 14)), (DayType::AdjustedWorking, true));
        assert!(c
            .warning(date(2027, 3, 1))
            .unwrap()
            .starts_with("provisional holiday dates for 2027"));
    }
}
