//! CSV cells for every export (the statistics, the activity register):
//! RFC 4180 quoting, and text neutralised against formula injection
//! (OWASP "CSV Injection"): a spreadsheet runs a cell that starts with `=`,
//! `+`, `-`, `@`, a tab or a carriage return, so such a cell gets a leading
//! `'` and is read as text. Numbers and dates the gateway writes itself go
//! out as they are; whatever came from a person (a result, a case number, a
//! name, a category) goes through [`cell`].

/// One text cell, safe to open in a spreadsheet: a leading `=` `+` `-` `@`
/// tab or CR prefixed with `'`; in double quotes (inner quotes doubled)
/// when it holds a comma, a quote or a line break.
pub fn cell(text: &str) -> String {
    let risky = text
        .chars()
        .next()
        .is_some_and(|c| matches!(c, '=' | '+' | '-' | '@' | '\t' | '\r'));
    let text = match risky {
        true => format!("'{text}"),
        false => text.to_string(),
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::cell;

    #[test]
    fn formulas_become_text_and_separators_are_quoted() {
        assert_eq!(
            cell("=HYPERLINK(\"http://x\",\"y\")"),
            "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\""
        );
        assert_eq!(cell("+1+1"), "'+1+1");
        assert_eq!(cell("-2"), "'-2");
        assert_eq!(cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(cell("\tx"), "'\tx");
        assert_eq!(cell("\rx"), "\"'\rx\"");
        assert_eq!(cell("搜查住所"), "搜查住所");
        assert_eq!(cell("a, b"), "\"a, b\"");
        assert_eq!(cell("a=b"), "a=b", "only the first character counts");
        assert_eq!(cell(""), "");
    }
}
