//! The case directory: which judge or unit handles a case, as the court's
//! case system exports it (`[cases] file`, a CSV, reloadable like the
//! roster). A consultation goes to its case's handler (an unknown case to
//! the desk), a lead's escalation names the handler, the handler sees the
//! case's tickets. Cases are known by the digits of their number: a caller
//! keys `202602031234` for （2026）鲁0203执1234号, and the export may
//! write either.
//!
//! ```text
//! case_number,handler
//! （2026）鲁0203执1234号,m-zhao
//! 202602035678,unit-2
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// `[cases]` in the main configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CaseSettings {
    /// The case directory (relative to the configuration file); none:
    /// every case is unknown and consultations go to the desk.
    pub file: Option<PathBuf>,
    /// A consultation is answered within this many working days (the
    /// court's calendar: holidays off, adjusted Saturdays on).
    pub answer_working_days: u32,
    /// Reports naming the same case within this many days are linked.
    pub link_days: u32,
    /// A new lead on a case whose earlier lead is dispatched and not closed
    /// goes to the officers already on it instead of a second dispatch.
    pub join_dispatched: bool,
}

impl Default for CaseSettings {
    fn default() -> Self {
        CaseSettings {
            file: None,
            answer_working_days: 3,
            link_days: 7,
            join_dispatched: true,
        }
    }
}

/// The digits of a case number: how callers key it and how it is looked up.
pub fn case_digits(case: &str) -> String {
    case.chars().filter(char::is_ascii_digit).collect()
}

/// Case (its digits) → handler (a member or a unit id).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaseDirectory {
    handlers: HashMap<String, String>,
    /// Where each case was listed: the line, for the roster check's errors.
    lines: HashMap<String, usize>,
    file: String,
}

/// The fields of a CSV line (RFC 4180 quoting; `""` is a quote).
fn fields(line: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                out.last_mut().expect("one field").push('"');
            }
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(String::new()),
            c => out.last_mut().expect("one field").push(c),
        }
    }
    out.into_iter().map(|f| f.trim().to_string()).collect()
}

impl CaseDirectory {
    pub fn load(path: &Path) -> Result<CaseDirectory, String> {
        let file = path.display().to_string();
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("{file}: cannot read: {e}"))?;
        CaseDirectory::parse(&text, &file)
    }

    /// Parses the CSV (a byte-order mark, as Excel writes, is dropped;
    /// empty lines and lines starting with `#` are skipped). Every error
    /// names the file, the line and the field.
    pub fn parse(text: &str, file: &str) -> Result<CaseDirectory, String> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut dir = CaseDirectory {
            file: file.to_string(),
            ..Default::default()
        };
        let mut header = true;
        for (i, line) in text.lines().enumerate() {
            let n = i + 1;
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            let f = fields(line);
            if std::mem::take(&mut header) {
                if f.len() < 2 || f[0] != "case_number" || f[1] != "handler" {
                    return Err(format!(
                        "{file}: line {n}: the header must be case_number,handler"
                    ));
                }
                continue;
            }
            if f.len() != 2 {
                return Err(format!(
                    "{file}: line {n}: {} fields, expected case_number,handler",
                    f.len()
                ));
            }
            let digits = case_digits(&f[0]);
            if digits.is_empty() {
                return Err(format!(
                    "{file}: line {n}: case_number: {:?} has no digits",
                    f[0]
                ));
            }
            if f[1].is_empty() {
                return Err(format!("{file}: line {n}: handler: empty"));
            }
            if let Some(first) = dir.lines.get(&digits) {
                if dir.handlers.get(&digits) != Some(&f[1]) {
                    return Err(format!(
                        "{file}: line {n}: case_number: {:?} is listed on line {first} with another handler",
                        f[0]
                    ));
                }
            }
            dir.lines.entry(digits.clone()).or_insert(n);
            dir.handlers.insert(digits, f[1].clone());
        }
        if header {
            return Err(format!(
                "{file}: line 1: the header must be case_number,handler"
            ));
        }
        Ok(dir)
    }

    /// The handler (member or unit id) of a case, by the digits of its
    /// number.
    pub fn handler_of(&self, case: &str) -> Option<&str> {
        self.handlers.get(&case_digits(case)).map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.handlers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.handlers.is_empty()
    }

    /// Each handler that `known` (a roster member or unit) does not know,
    /// naming file, line and field.
    pub fn unknown_handlers(&self, known: impl Fn(&str) -> bool) -> Vec<String> {
        let mut out: Vec<(usize, String)> = self
            .handlers
            .iter()
            .filter(|(_, h)| !known(h))
            .map(|(case, h)| {
                let line = self.lines.get(case).copied().unwrap_or(0);
                (
                    line,
                    format!(
                        "{}: line {line}: handler: {h:?} is no member or unit of the roster",
                        self.file
                    ),
                )
            })
            .collect();
        out.sort();
        out.into_iter().map(|(_, e)| e).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases_are_found_by_their_digits() {
        let text = "\u{feff}case_number,handler\r\n\"（2026）鲁0203执1234号\",m-zhao\r\n# a comment\r\n\r\n202602035678,unit-2\r\n";
        let d = CaseDirectory::parse(text, "cases.csv").unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(d.handler_of("202602031234"), Some("m-zhao"));
        assert_eq!(d.handler_of("(2026)鲁0203执1234号"), Some("m-zhao"));
        assert_eq!(d.handler_of("202602035678"), Some("unit-2"));
        assert_eq!(d.handler_of("999"), None);
        let unknown = d.unknown_handlers(|h| h == "m-zhao");
        assert_eq!(
            unknown,
            ["cases.csv: line 5: handler: \"unit-2\" is no member or unit of the roster"]
        );
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let e = |t: &str| CaseDirectory::parse(t, "c.csv").unwrap_err();
        assert_eq!(
            e("case,who\n1,m\n"),
            "c.csv: line 1: the header must be case_number,handler"
        );
        assert_eq!(
            e(""),
            "c.csv: line 1: the header must be case_number,handler"
        );
        assert_eq!(
            e("case_number,handler\n1,m,x\n"),
            "c.csv: line 2: 3 fields, expected case_number,handler"
        );
        assert_eq!(
            e("case_number,handler\n\n执字号,m\n"),
            "c.csv: line 3: case_number: \"执字号\" has no digits"
        );
        assert_eq!(
            e("case_number,handler\n12,\n"),
            "c.csv: line 2: handler: empty"
        );
        assert_eq!(
            e("case_number,handler\n12,a\n(12),b\n"),
            "c.csv: line 3: case_number: \"(12)\" is listed on line 2 with another handler"
        );
        // The same handler twice is no conflict.
        assert!(CaseDirectory::parse("case_number,handler\n12,a\n(12),a\n", "c").is_ok());
    }
}
