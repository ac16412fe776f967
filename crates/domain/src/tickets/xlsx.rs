//! The `.xlsx` exports (`rust_xlsxwriter`, docs/adr/0013-charts.md): a
//! workbook of sheets, each with Chinese headers (bold, frozen), column
//! widths, numbers as numbers and dates as Excel dates in Asia/Shanghai
//! (a timestamp is shown as the court's clock reads it). Text is written
//! as a string cell, never as a formula, so no formula injection (the CSV
//! export needs [`super::csv::cell`] for that). The statistics' workbook
//! is [`stats`]; the registers build their [`Sheet`]s where their types are.

use jiff::civil::{Date, Time};
use jiff::Timestamp;
use rust_xlsxwriter::{ExcelDateTime, Format, Workbook, XlsxError};

use super::stats::{Figure, Report};
use crate::court_time::court_tz;
use crate::tickets::labels;

/// One cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    Number(f64),
    /// A share (0 to 1), shown as a percentage.
    Percent(f64),
    /// A day.
    Day(Date),
    /// A time of day.
    Clock(Time),
    /// A moment, as a date and time in Asia/Shanghai.
    At(Timestamp),
    Empty,
}

impl Cell {
    /// Text, or empty for none.
    pub fn text(v: Option<&str>) -> Cell {
        v.map_or(Cell::Empty, |v| Cell::Text(v.to_string()))
    }
}

/// A column: its header and width (in characters; a Chinese character
/// counts two).
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub header: &'static str,
    pub width: f64,
}

/// A sheet: its name, columns and rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Sheet {
    pub name: &'static str,
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Cell>>,
}

/// Columns from `(header, width)` pairs.
pub fn columns(c: &[(&'static str, f64)]) -> Vec<Column> {
    c.iter()
        .map(|(header, width)| Column {
            header,
            width: *width,
        })
        .collect()
}

fn excel_day(d: Date) -> Result<ExcelDateTime, XlsxError> {
    ExcelDateTime::from_ymd(d.year() as u16, d.month() as u8, d.day() as u8)
}

/// The workbook of `sheets`, as the bytes of an `.xlsx` file.
pub fn workbook(sheets: &[Sheet]) -> Result<Vec<u8>, String> {
    build(sheets).map_err(|e| format!("xlsx: {e}"))
}

fn build(sheets: &[Sheet]) -> Result<Vec<u8>, XlsxError> {
    let mut wb = Workbook::new();
    let bold = Format::new().set_bold();
    let day = Format::new().set_num_format("yyyy-mm-dd");
    let at = Format::new().set_num_format("yyyy-mm-dd hh:mm:ss");
    let clock = Format::new().set_num_format("hh:mm");
    let percent = Format::new().set_num_format("0.0%");
    for s in sheets {
        let ws = wb.add_worksheet();
        ws.set_name(s.name)?;
        for (c, col) in s.columns.iter().enumerate() {
            let c = c as u16;
            ws.write_string_with_format(0, c, col.header, &bold)?;
            ws.set_column_width(c, col.width)?;
        }
        ws.set_freeze_panes(1, 0)?;
        for (r, row) in s.rows.iter().enumerate() {
            let r = r as u32 + 1;
            for (c, cell) in row.iter().enumerate() {
                let c = c as u16;
                match cell {
                    Cell::Text(t) => {
                        ws.write_string(r, c, t)?;
                    }
                    Cell::Number(n) => {
                        ws.write_number(r, c, *n)?;
                    }
                    Cell::Percent(n) => {
                        ws.write_number_with_format(r, c, *n, &percent)?;
                    }
                    Cell::Day(d) => {
                        ws.write_datetime_with_format(r, c, excel_day(*d)?, &day)?;
                    }
                    Cell::Clock(t) => {
                        let v = ExcelDateTime::from_hms(t.hour() as u16, t.minute() as u8, 0)?;
                        ws.write_datetime_with_format(r, c, v, &clock)?;
                    }
                    Cell::At(ts) => {
                        let local = court_tz().to_datetime(*ts);
                        let v = excel_day(local.date())?.and_hms(
                            local.hour() as u16,
                            local.minute() as u8,
                            local.second() as f64,
                        )?;
                        ws.write_datetime_with_format(r, c, v, &at)?;
                    }
                    Cell::Empty => {}
                }
            }
        }
    }
    wb.save_to_buffer()
}

/// The statistics as a workbook: 统计 (every figure: 栏目, 项目, 数值, and
/// the ids), 每日 (calls and leads per day), 超时工单 (the breaches).
pub fn stats(r: &Report) -> Result<Vec<u8>, String> {
    workbook(&stats_sheets(r))
}

/// The statistics' sheets ([`stats`]).
pub fn stats_sheets(r: &Report) -> Vec<Sheet> {
    let figures = r
        .rows()
        .into_iter()
        .map(|row| {
            let value = match row.value {
                Figure::Count(n) => Cell::Number(n as f64),
                Figure::Seconds(v) | Figure::Days(v) => v.map_or(Cell::Empty, Cell::Number),
                Figure::Rate(v) => Cell::Percent(v),
                Figure::Day(d) => Cell::Day(d),
            };
            vec![
                Cell::Text(row.group),
                Cell::Text(row.item),
                value,
                Cell::Text(row.section.to_string()),
                Cell::Text(row.key),
            ]
        })
        .collect();
    let days = r
        .per_day
        .iter()
        .zip(&r.leads_per_day)
        .map(|((d, n), (_, leads))| {
            vec![
                Cell::Day(*d),
                Cell::Number(*n as f64),
                Cell::Number(*leads as f64),
            ]
        })
        .collect();
    let breaches = r
        .breached
        .iter()
        .map(|b| {
            vec![
                Cell::Text(b.ticket.clone()),
                Cell::At(b.received_at),
                Cell::Text(
                    b.category
                        .map_or(labels::NO_CATEGORY, labels::category)
                        .into(),
                ),
                Cell::Text(labels::state(b.state).into()),
                b.acknowledged_by
                    .as_deref()
                    .map_or(Cell::Empty, |m| Cell::Text(r.member_name(m))),
                b.dispatched_after.map_or(Cell::Empty, |s| {
                    Cell::Number((s / 60.0 * 10.0).round() / 10.0)
                }),
            ]
        })
        .collect();
    vec![
        Sheet {
            name: "统计",
            columns: columns(&[
                ("栏目", 22.0),
                ("项目", 26.0),
                ("数值", 12.0),
                ("section", 16.0),
                ("key", 22.0),
            ]),
            rows: figures,
        },
        Sheet {
            name: "每日",
            columns: columns(&[("日期", 14.0), ("来电", 10.0), ("执行线索", 12.0)]),
            rows: days,
        },
        Sheet {
            name: "超时工单",
            columns: columns(&[
                ("工单号", 16.0),
                ("接报时间", 22.0),
                ("类别", 20.0),
                ("状态", 10.0),
                ("签收人", 12.0),
                ("出警用时（分钟）", 18.0),
            ]),
            rows: breaches,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tickets::stats::sample::sample;

    #[test]
    fn the_statistics_sheets_have_chinese_headers_and_typed_cells() {
        let r = sample();
        let sheets = stats_sheets(&r);
        let names: Vec<_> = sheets.iter().map(|s| s.name).collect();
        assert_eq!(names, ["统计", "每日", "超时工单"]);
        let headers: Vec<_> = sheets[0].columns.iter().map(|c| c.header).collect();
        assert_eq!(headers, ["栏目", "项目", "数值", "section", "key"]);
        let find = |section: &str, key: &str| {
            sheets[0]
                .rows
                .iter()
                .find(|row| {
                    row[3] == Cell::Text(section.into()) && row[4] == Cell::Text(key.into())
                })
                .unwrap_or_else(|| panic!("{section} {key}"))
                .clone()
        };
        assert_eq!(
            find("range", "from")[2],
            Cell::Day(jiff::civil::date(2026, 11, 30))
        );
        assert_eq!(find("category", "lead")[1], Cell::Text("执行线索".into()));
        assert_eq!(find("category", "lead")[2], Cell::Number(2.0));
        assert_eq!(find("unit", "unit-1")[1], Cell::Text("执行一组".into()));
        assert_eq!(find("five_minute", "rate")[2], Cell::Percent(0.5));
        // The breach: received 10:00 on 30 November in Qingdao.
        let b = &sheets[2].rows[0];
        assert_eq!(b[1], Cell::At("2026-11-30T02:00:00Z".parse().unwrap()));
        assert_eq!(b[4], Cell::Text("赵一".into()));
        assert_eq!(b[5], Cell::Number(10.0));
        // Every row as wide as its header.
        for s in &sheets {
            assert!(
                s.rows.iter().all(|r| r.len() == s.columns.len()),
                "{}",
                s.name
            );
        }
        let bytes = stats(&r).unwrap();
        assert_eq!(&bytes[..2], b"PK", "a zip file");
    }
}
