//! The daily activity register (rule 第四十四条(四)): each officer's
//! enforcement activities of a day — when, the case, the measure, the
//! result, the ticket when there is one. Append-only, as the ticket
//! timeline: one Redis stream per day (`activity:{YYYY-MM-DD}`), never
//! trimmed; a correction is a new entry naming the one it corrects, and the
//! register shows both.

use jiff::civil::{Date, Time};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::model::Measure;
use super::store::{Store, StoreError};

/// One entry as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Activity {
    /// The entry's id in the day's stream (set when read).
    #[serde(default)]
    pub id: String,
    pub member: String,
    pub day: Date,
    /// When it took place, `HH:MM` in Asia/Shanghai.
    pub time: Time,
    pub case_number: Option<String>,
    pub measure: Measure,
    pub result: String,
    pub ticket: Option<String>,
    /// The entry of the same day (and officer) this one corrects.
    pub corrects: Option<String>,
    pub recorded_at: Timestamp,
    /// The later entry that corrects this one (set when read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corrected_by: Option<String>,
}

/// What an officer submits, checked: a day not in the future and at most
/// `MAX_DAYS_BACK` ago, a case number and a result of sensible length.
#[derive(Debug, Clone, PartialEq)]
pub struct NewActivity(Activity);

/// An entry may be recorded (or corrected) this many days later at most.
pub const MAX_DAYS_BACK: i32 = 7;

impl NewActivity {
    #[allow(clippy::too_many_arguments)]
    pub fn parse(
        member: &str,
        today: Date,
        day: Date,
        time: Time,
        case_number: Option<&str>,
        measure: Measure,
        result: &str,
        ticket: Option<&str>,
        corrects: Option<&str>,
        now: Timestamp,
    ) -> Result<NewActivity, &'static str> {
        if day > today {
            return Err("day: not in the future");
        }
        if today
            .since(day)
            .map_or(true, |s| s.get_days() > MAX_DAYS_BACK)
        {
            return Err("day: at most 7 days ago (the register is kept day by day)");
        }
        if case_number.is_some_and(|c| c.trim().is_empty() || c.len() > 64) {
            return Err("case_number: 1 to 64 bytes");
        }
        if result.trim().is_empty() || result.len() > 4000 {
            return Err("result: 1 to 4000 bytes");
        }
        Ok(NewActivity(Activity {
            id: String::new(),
            member: member.to_string(),
            day,
            time,
            case_number: case_number.map(str::to_string),
            measure,
            result: result.to_string(),
            ticket: ticket.map(str::to_string),
            corrects: corrects.map(str::to_string),
            recorded_at: now,
            corrected_by: None,
        }))
    }

    pub fn day(&self) -> Date {
        self.0.day
    }

    pub fn corrects(&self) -> Option<&str> {
        self.0.corrects.as_deref()
    }
}

impl Store {
    /// Appends an entry to its day's register; its id.
    pub async fn add_activity(&self, a: &NewActivity) -> Result<String, StoreError> {
        let data = serde_json::to_string(&a.0).map_err(|e| StoreError::Corrupt {
            number: "activity".into(),
            problem: e.to_string(),
        })?;
        let mut c = self.conn.clone();
        Ok(redis::cmd("XADD")
            .arg(self.key(&format!("activity:{}", a.0.day)))
            .arg("*")
            .arg("data")
            .arg(data)
            .query_async(&mut c)
            .await?)
    }

    /// A day's register in the order recorded, each entry with the one
    /// that corrects it (if any).
    pub async fn activities(&self, day: Date) -> Result<Vec<Activity>, StoreError> {
        let mut c = self.conn.clone();
        let rows: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
            .arg(self.key(&format!("activity:{day}")))
            .arg("-")
            .arg("+")
            .query_async(&mut c)
            .await?;
        let mut out: Vec<Activity> = Vec::with_capacity(rows.len());
        for (id, fields) in rows {
            let Some((_, data)) = fields.iter().find(|(k, _)| k == "data") else {
                continue;
            };
            let mut a: Activity = serde_json::from_str(data).map_err(|e| StoreError::Corrupt {
                number: format!("activity {id}"),
                problem: e.to_string(),
            })?;
            a.id = id;
            out.push(a);
        }
        let corrections: Vec<(String, String)> = out
            .iter()
            .filter_map(|a| a.corrects.clone().map(|c| (c, a.id.clone())))
            .collect();
        for (corrected, by) in corrections {
            if let Some(a) = out.iter_mut().find(|a| a.id == corrected) {
                a.corrected_by = Some(by);
            }
        }
        Ok(out)
    }
}

/// The register's columns, as the CSV and the `.xlsx` head them.
const COLUMNS: [(&str, f64); 11] = [
    ("编号", 18.0),
    ("人员编号", 14.0),
    ("人员", 10.0),
    ("日期", 12.0),
    ("时间", 8.0),
    ("案号", 24.0),
    ("措施", 10.0),
    ("结果", 40.0),
    ("工单", 14.0),
    ("更正", 18.0),
    ("被更正", 18.0),
];

/// A day's register as CSV (the bureau's export): a UTF-8 byte-order mark
/// (Excel reads UTF-8 only with it), Chinese headers, each member by the
/// roster's name beside the id (`name_of`), the measure by its name.
pub fn csv(entries: &[Activity], name_of: impl Fn(&str) -> Option<String>) -> String {
    // Text a person wrote goes through the one CSV cell writer (quoted when
    // need be, formulas neutralised); ids, dates and times are ours.
    let field = super::csv::cell;
    let head: Vec<&str> = COLUMNS.iter().map(|(h, _)| *h).collect();
    let mut out = format!("\u{feff}{}\n", head.join(","));
    for a in entries {
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{}\n",
            a.id,
            field(&a.member),
            field(&name_of(&a.member).unwrap_or_default()),
            a.day,
            a.time.strftime("%H:%M"),
            field(a.case_number.as_deref().unwrap_or("")),
            crate::tickets::labels::measure(a.measure),
            field(&a.result),
            field(a.ticket.as_deref().unwrap_or("")),
            a.corrects.as_deref().unwrap_or(""),
            a.corrected_by.as_deref().unwrap_or(""),
        ));
    }
    out
}

/// A day's register as `.xlsx` ([`sheet`]).
pub fn xlsx(
    entries: &[Activity],
    name_of: impl Fn(&str) -> Option<String>,
) -> Result<Vec<u8>, String> {
    crate::tickets::xlsx::workbook(&[sheet(entries, name_of)])
}

/// The register's sheet: the CSV's columns, the day a date, the time a
/// time of day, text as text (never a formula).
pub fn sheet(
    entries: &[Activity],
    name_of: impl Fn(&str) -> Option<String>,
) -> crate::tickets::xlsx::Sheet {
    use crate::tickets::xlsx::{columns, Cell, Sheet};
    let rows = entries
        .iter()
        .map(|a| {
            vec![
                Cell::Text(a.id.clone()),
                Cell::Text(a.member.clone()),
                Cell::text(name_of(&a.member).as_deref()),
                Cell::Day(a.day),
                Cell::Clock(a.time),
                Cell::text(a.case_number.as_deref()),
                Cell::Text(crate::tickets::labels::measure(a.measure).into()),
                Cell::Text(a.result.clone()),
                Cell::text(a.ticket.as_deref()),
                Cell::text(a.corrects.as_deref()),
                Cell::text(a.corrected_by.as_deref()),
            ]
        })
        .collect();
    Sheet {
        name: "执法活动登记",
        columns: columns(&COLUMNS),
        rows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The CSV and the sheet have the same Chinese columns; the sheet's
    /// cells are typed, the member named, the measure by its name.
    #[test]
    fn the_exports_share_their_columns_and_the_sheet_types_its_cells() {
        use crate::tickets::xlsx::Cell;
        let a = Activity {
            id: "1-0".into(),
            member: "u1-officer".into(),
            day: jiff::civil::date(2026, 12, 1),
            time: jiff::civil::time(9, 30, 0, 0),
            case_number: Some("(2026)鲁0203执1号".into()),
            measure: Measure::Seal,
            result: "=1+1".into(),
            ticket: None,
            corrects: None,
            recorded_at: "2026-12-01T02:00:00Z".parse().unwrap(),
            corrected_by: None,
        };
        let name = |m: &str| (m == "u1-officer").then(|| "一组执行员".to_string());
        let text = csv(std::slice::from_ref(&a), name);
        let s = sheet(std::slice::from_ref(&a), name);
        let head: Vec<&str> = s.columns.iter().map(|c| c.header).collect();
        assert_eq!(
            text.lines().next().unwrap(),
            format!("\u{feff}{}", head.join(","))
        );
        assert_eq!(
            text.lines().nth(1).unwrap(),
            "1-0,u1-officer,一组执行员,2026-12-01,09:30,(2026)鲁0203执1号,查封,'=1+1,,,"
        );
        let row = &s.rows[0];
        assert_eq!(row.len(), s.columns.len());
        assert_eq!(row[2], Cell::Text("一组执行员".into()));
        assert_eq!(row[3], Cell::Day(a.day));
        assert_eq!(row[4], Cell::Clock(a.time));
        assert_eq!(row[6], Cell::Text("查封".into()));
        // A string cell in the workbook: never a formula.
        assert_eq!(row[7], Cell::Text("=1+1".into()));
        assert_eq!(row[8], Cell::Empty);
    }

    #[test]
    fn entries_are_for_the_last_week_and_not_the_future() {
        let today = jiff::civil::date(2026, 12, 1);
        let now: Timestamp = "2026-12-01T02:00:00Z".parse().unwrap();
        let t = jiff::civil::time(9, 30, 0, 0);
        let ok = |day| {
            NewActivity::parse(
                "u1-officer",
                today,
                day,
                t,
                Some("(2026)鲁0203执1号"),
                Measure::Search,
                "搜查住所",
                None,
                None,
                now,
            )
        };
        assert!(ok(today).is_ok());
        assert!(ok(jiff::civil::date(2026, 11, 24)).is_ok());
        assert_eq!(
            ok(jiff::civil::date(2026, 11, 23)).unwrap_err(),
            "day: at most 7 days ago (the register is kept day by day)"
        );
        assert_eq!(
            ok(jiff::civil::date(2026, 12, 2)).unwrap_err(),
            "day: not in the future"
        );
        let blank = NewActivity::parse(
            "u1-officer",
            today,
            today,
            t,
            None,
            Measure::Other,
            " ",
            None,
            None,
            now,
        );
        assert_eq!(blank.unwrap_err(), "result: 1 to 4000 bytes");
    }
}
