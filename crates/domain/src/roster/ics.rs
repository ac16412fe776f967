//! The duty as an iCalendar feed (RFC 5545): one VEVENT per duty block,
//! times in UTC (`Z`), SUMMARY in Chinese (`值班：执行一组`), DESCRIPTION
//! naming the unit, its vehicle, its members and the court police officer
//! on duty; CRLF line ends, lines folded at 75 octets (never inside a
//! character), text escaped (§3.3.11). A member's feed has the blocks they
//! hold; everyone's (the desk's, the director's) has every block. The UID
//! names the block and the member, so a calendar that subscribes updates an
//! event in place and drops one a swap took away.

use std::fmt::Write as _;

use jiff::Timestamp;

use super::blocks::{role_zh, Block, BlockKind, Post, CREW};
use super::Member;

/// Whose feed.
#[derive(Debug, Clone, Copy)]
pub enum Feed<'a> {
    /// The blocks this member holds.
    Member(&'a Member),
    /// Every block.
    Everyone,
}

/// `20261208T093000Z`.
fn utc(t: Timestamp) -> String {
    t.strftime("%Y%m%dT%H%M%SZ").to_string()
}

/// A TEXT value escaped (RFC 5545 §3.3.11).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// One content line, folded at 75 octets (continuations start with a
/// space, which counts), never inside a UTF-8 character; CRLF-ended.
pub fn fold(line: &str, out: &mut String) {
    let mut width = 0;
    for c in line.chars() {
        let n = c.len_utf8();
        if width + n > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += n;
    }
    out.push_str("\r\n");
}

/// A member and their crew role: `一组执行员（执行员）`.
fn crew(m: &Member) -> String {
    match CREW.into_iter().find(|r| m.has(*r)) {
        Some(r) => format!("{}（{}）", m.name, role_zh(r)),
        None => m.name.clone(),
    }
}

/// The block's description: the unit, its vehicle, its members, the court
/// police officer, the overrides that shaped it.
pub fn description(b: &Block) -> String {
    let mut lines = Vec::new();
    match b.kind {
        BlockKind::Period => lines.push(format!(
            "值班时段：{}（{}）",
            b.span(),
            b.holiday.as_deref().unwrap_or(match b.day_type {
                "working day" | "adjusted working day" => "工作日夜间",
                _ => "休息日",
            })
        )),
        BlockKind::Day => lines.push(format!("白天备勤：{}", b.span())),
    }
    if let Some(u) = &b.unit {
        lines.push(format!("执行单位：{}（车辆 {}）", u.name, u.vehicle));
        lines.push(format!(
            "单位成员：{}",
            u.members.iter().map(crew).collect::<Vec<_>>().join("、")
        ));
    }
    if let Some(p) = &b.police {
        lines.push(format!("值班法警：{}", p.name));
    }
    for o in &b.overrides {
        lines.push(format!("调整：{o}"));
    }
    lines.join("\n")
}

/// The summary: `值班：执行一组` (a crew member, or everyone's), `值班：法警`
/// (the court police officer's own feed).
fn summary(b: &Block, feed: Feed<'_>) -> String {
    let unit = b.unit.as_ref().map_or("-", |u| u.name.as_str());
    match feed {
        Feed::Member(m) if b.post_of(&m.id) == Some(Post::Police) => {
            format!("值班：法警（{unit}）")
        }
        Feed::Member(_) => format!("值班：{unit}"),
        Feed::Everyone => match &b.police {
            Some(p) => format!("值班：{unit}、法警{}", p.name),
            None => format!("值班：{unit}"),
        },
    }
}

/// The feed of `blocks` for `feed`, made at `now` (its DTSTAMP).
pub fn calendar(blocks: &[Block], feed: Feed<'_>, now: Timestamp) -> String {
    let mut out = String::new();
    let name = match feed {
        Feed::Member(m) => format!("值班：{}", m.name),
        Feed::Everyone => "市北区执行指挥中心值班表".to_string(),
    };
    for l in [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Shibei District People's Court//hotline duty//ZH",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
    ] {
        fold(l, &mut out);
    }
    fold(&format!("X-WR-CALNAME:{}", escape(&name)), &mut out);
    fold("X-WR-TIMEZONE:Asia/Shanghai", &mut out);
    let who = match feed {
        Feed::Member(m) => m.id.as_str(),
        Feed::Everyone => "all",
    };
    for b in blocks {
        if let Feed::Member(m) = feed {
            if b.post_of(&m.id).is_none() {
                continue;
            }
        }
        fold("BEGIN:VEVENT", &mut out);
        let mut uid = String::new();
        let _ = write!(
            uid,
            "UID:{}-{}-{}@hotline.duty",
            b.day.strftime("%Y%m%d"),
            b.kind.as_str(),
            who
        );
        fold(&uid, &mut out);
        fold(&format!("DTSTAMP:{}", utc(now)), &mut out);
        fold(&format!("DTSTART:{}", utc(b.start)), &mut out);
        fold(&format!("DTEND:{}", utc(b.end)), &mut out);
        fold(&format!("SUMMARY:{}", escape(&summary(b, feed))), &mut out);
        fold(
            &format!("DESCRIPTION:{}", escape(&description(b))),
            &mut out,
        );
        fold("TRANSP:OPAQUE", &mut out);
        fold("END:VEVENT", &mut out);
    }
    fold("END:VCALENDAR", &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_fold_at_75_octets_between_characters() {
        let mut out = String::new();
        let line = format!("DESCRIPTION:{}", "执".repeat(40));
        fold(&line, &mut out);
        assert!(out.ends_with("\r\n"));
        for (i, l) in out.trim_end_matches("\r\n").split("\r\n").enumerate() {
            assert!(l.len() <= 75, "{l:?} is {} octets", l.len());
            assert_eq!(i > 0, l.starts_with(' '), "{l:?}");
        }
        // Unfolded, it is the line again.
        assert_eq!(out.replace("\r\n ", "").trim_end(), line);
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(escape("a,b;c\\d\ne"), "a\\,b\\;c\\\\d\\ne");
    }
}
