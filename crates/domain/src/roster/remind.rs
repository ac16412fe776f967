//! The evening-before reminders (issue 33): each day at `[swaps]
//! remind_at` (Asia/Shanghai), everyone who holds a block of the next day
//! is told when, with which unit and vehicle, and who else is on it. What
//! is due at `now` is [`due`]; who is told what is [`reminders`]. Swaps
//! and overrides in force are in the roster already.

use std::collections::BTreeMap;

use jiff::civil::{Date, Time};
use jiff::Timestamp;

use super::blocks::{Block, Post};
use super::{Calendar, Member, Roster};
use crate::court_time::court_tz;

/// The day whose reminders are due at `now`: tomorrow's, from `at` until
/// midnight (a gateway started late in the evening still sends them);
/// none before `at`, nor without a time (`off`).
pub fn due(at: Option<Time>, now: Timestamp) -> Option<Date> {
    let local = now.to_zoned_datetime(court_tz());
    let at = at?;
    (local.time() >= at)
        .then(|| local.date().tomorrow().ok())
        .flatten()
}

/// One block as a reminder's line for `member`: `12月08日 17:30—12月09日
/// 08:30 执行一组（车辆 鲁B·J0101）；同班：一组书记员、一组司机；法警：孙法警`.
fn line(b: &Block, member: &str) -> String {
    let unit = b.unit.as_ref();
    let others: Vec<&str> = unit
        .map(|u| {
            u.members
                .iter()
                .filter(|m| m.id != member)
                .map(|m| m.name.as_str())
                .collect()
        })
        .unwrap_or_default();
    let mut s = b.span();
    match (b.post_of(member), unit) {
        (Some(Post::Police), Some(u)) => {
            s.push_str(&format!(" 法警（随 {}，车辆 {}", u.name, u.vehicle));
        }
        (_, Some(u)) => s.push_str(&format!(" {}（车辆 {}", u.name, u.vehicle)),
        (_, None) => s.push_str(" （"),
    }
    if !others.is_empty() {
        s.push_str(&format!("；同班：{}", others.join("、")));
    }
    if let Some(p) = b.police.as_ref().filter(|p| p.id != member) {
        s.push_str(&format!("；法警：{}", p.name));
    }
    s.push('）');
    s
}

/// The reminders for the blocks that start on `day`: each member who holds
/// one, with the text (one text a member, their blocks in time order).
pub fn reminders(roster: &Roster, cal: &Calendar, offset: i64, day: Date) -> Vec<(Member, String)> {
    let mut by: BTreeMap<String, (Member, Vec<String>)> = BTreeMap::new();
    for b in roster.blocks(cal, offset, day, day) {
        for m in b.people() {
            by.entry(m.id.clone())
                .or_insert_with(|| (m.clone(), Vec::new()))
                .1
                .push(line(&b, &m.id));
        }
    }
    by.into_values()
        .map(|(m, lines)| {
            let text = format!(
                "【市北区执行指挥中心】值班提醒（{day}）：{}。",
                lines.join("；")
            );
            (m, text)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn tomorrows_reminders_are_due_from_their_time_until_midnight() {
        let six = Some(Time::constant(18, 0, 0, 0));
        // 17:59 in Qingdao (UTC+8): not yet.
        assert_eq!(due(six, at("2026-12-07T09:59:00Z")), None);
        // 18:00: tomorrow's.
        assert_eq!(
            due(six, at("2026-12-07T10:00:00Z")),
            Some(jiff::civil::date(2026, 12, 8))
        );
        // 23:59 still; after midnight the next evening's wait begins.
        assert_eq!(
            due(six, at("2026-12-07T15:59:00Z")),
            Some(jiff::civil::date(2026, 12, 8))
        );
        assert_eq!(due(six, at("2026-12-07T16:01:00Z")), None);
        // The turn of the year.
        assert_eq!(
            due(six, at("2026-12-31T12:00:00Z")),
            Some(jiff::civil::date(2027, 1, 1))
        );
        assert_eq!(due(None, at("2026-12-07T12:00:00Z")), None);
    }
}
