//! The holiday calendar: one file per year in `config/holidays/`, from the
//! State Council's notice. Four kinds of day; a year without a file is
//! unknown, and said to be so.

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
    /// has no file and Monday to Friday are taken as working days).
    pub fn day(&self, d: Date) -> (DayType, bool) {
        let weekend = matches!(d.weekday(), Weekday::Saturday | Weekday::Sunday);
        let plain = if weekend {
            DayType::Weekend
        } else {
            DayType::Working
        };
        match self.years.get(&d.year()) {
            None => (plain, false),
            Some(y) if y.holidays.contains_key(&d) => (DayType::PublicHoliday, true),
            Some(y) if y.adjusted.contains(&d) => (DayType::AdjustedWorking, true),
            Some(_) => (plain, true),
        }
    }

    /// The holiday's name, for a public holiday.
    pub fn holiday_name(&self, d: Date) -> Option<&str> {
        self.years
            .get(&d.year())?
            .holidays
            .get(&d)
            .map(String::as_str)
    }

    /// From December on, next year's notice should be in: a warning if not.
    pub fn warning(&self, today: Date) -> Option<String> {
        if !self.knows(today.year()) {
            return Some(format!(
                "no holiday calendar for {}: Monday to Friday are taken as working days",
                today.year()
            ));
        }
        let next = today.year() + 1;
        (today.month() == 12 && !self.knows(next)).then(|| {
            format!("no holiday calendar for {next} yet: add config/holidays/{next}.toml from the State Council's notice")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn cal() -> Calendar {
        Calendar::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("config/holidays")).unwrap()
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
    fn unknown_year_is_said_to_be_unknown() {
        let c = cal();
        assert_eq!(c.day(date(2027, 1, 1)), (DayType::Working, false));
        assert_eq!(c.warning(date(2026, 11, 30)), None);
        assert!(c.warning(date(2026, 12, 1)).unwrap().contains("2027"));
        assert!(c
            .warning(date(2027, 1, 5))
            .unwrap()
            .contains("no holiday calendar for 2027"));
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
}
