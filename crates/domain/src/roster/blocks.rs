//! Duty blocks: who holds which duty when, read from [`Roster::resolve`]
//! and nothing else. A block is a duty period (nights, weekends,
//! holidays: the duty unit and the court police officer, 第二十五条(四)(五))
//! or, when the roster names day units, a working day's hours (the day's
//! rapid-response unit). The desk's working hours are its office, not a
//! duty block. What a member holds in a block is their [`Post`]: the place
//! a swap hands on and the role rule checks (`swaps`); the calendar feed,
//! the reminders and the move notices are blocks too.

use std::collections::BTreeMap;

use jiff::civil::Date;
use jiff::Timestamp;
use serde::Serialize;

use super::{Calendar, Member, Role, Roster, UnitOnDuty};
use crate::court_time::court_tz;

/// Which kind of block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockKind {
    /// A working day's hours: the day unit, beside the desk.
    Day,
    /// A duty period: the duty unit and the court police officer.
    Period,
}

impl BlockKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BlockKind::Day => "day",
            BlockKind::Period => "period",
        }
    }
}

/// One duty block and who holds it (overrides applied).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Block {
    /// The day it starts on (the day a swap or an override names).
    pub day: Date,
    pub kind: BlockKind,
    pub start: Timestamp,
    pub end: Timestamp,
    pub day_type: &'static str,
    pub holiday: Option<String>,
    pub unit: Option<UnitOnDuty>,
    pub police: Option<Member>,
    /// Overrides that shaped it, as written.
    pub overrides: Vec<String>,
    /// The store's swaps and overrides among them, by number.
    pub swaps: Vec<u64>,
}

/// What a member (or a unit) holds in a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Post {
    /// The court police officer on duty (法警).
    Police,
    /// A member of the unit on duty (执行员, 书记员, 司机).
    Crew { unit: String, unit_name: String },
    /// The unit on duty itself.
    Unit,
}

/// The roles a unit's crew has: one of each rides with a unit.
pub const CREW: [Role; 3] = [Role::Officer, Role::Clerk, Role::Driver];

/// A role's name as the court says it.
pub fn role_zh(r: Role) -> &'static str {
    match r {
        Role::ChiefCommander => "总指挥",
        Role::Deputy => "副总指挥",
        Role::Director => "执行局长",
        Role::Desk => "指挥中心值班员",
        Role::CaseHandler => "承办人",
        Role::Police => "法警",
        Role::Officer => "执行员",
        Role::Clerk => "书记员",
        Role::Driver => "司机",
    }
}

/// `12月08日 17:30` in Asia/Shanghai.
pub fn short_time(t: Timestamp) -> String {
    let z = t.to_zoned_datetime(court_tz());
    format!(
        "{:02}月{:02}日 {:02}:{:02}",
        z.month(),
        z.day(),
        z.hour(),
        z.minute()
    )
}

impl Block {
    /// The people on duty in it: the unit's members, then the court police
    /// officer.
    pub fn people(&self) -> Vec<&Member> {
        self.unit
            .iter()
            .flat_map(|u| u.members.iter())
            .chain(self.police.iter())
            .collect()
    }

    /// What `id` (a member, or a unit) holds in it.
    pub fn post_of(&self, id: &str) -> Option<Post> {
        if self.police.as_ref().is_some_and(|p| p.id == id) {
            return Some(Post::Police);
        }
        let u = self.unit.as_ref()?;
        if u.id == id {
            return Some(Post::Unit);
        }
        u.members.iter().any(|m| m.id == id).then(|| Post::Crew {
            unit: u.id.clone(),
            unit_name: u.name.clone(),
        })
    }

    /// `12月08日 17:30—12月09日 08:30`.
    pub fn span(&self) -> String {
        format!("{}—{}", short_time(self.start), short_time(self.end))
    }

    /// What `id` holds here, in words: `执行一组` for a crew member or the
    /// unit, `法警` for the court police officer.
    pub fn post_words(&self, id: &str) -> String {
        match self.post_of(id) {
            Some(Post::Police) => "法警".into(),
            Some(Post::Crew { unit_name, .. }) => unit_name,
            Some(Post::Unit) => self.unit.as_ref().map_or(String::new(), |u| u.name.clone()),
            None => String::new(),
        }
    }

    /// A key that is the same for the same block in any roster.
    pub fn key(&self) -> (Date, BlockKind) {
        (self.day, self.kind)
    }
}

impl Roster {
    /// The duty blocks that start on the days `from..=to`, in time order:
    /// each day's period, and with day units, a working day's hours before it.
    pub fn blocks(&self, cal: &Calendar, offset: i64, from: Date, to: Date) -> Vec<Block> {
        let mut out = Vec::new();
        let mut d = from;
        while d <= to {
            if let Some(b) = self.day_block(cal, offset, d) {
                out.push(b);
            }
            out.push(self.period_block(cal, offset, d));
            match d.tomorrow() {
                Ok(next) => d = next,
                Err(_) => break,
            }
        }
        out
    }

    /// The duty period that starts on `day`, as a block.
    pub fn period_block(&self, cal: &Calendar, offset: i64, day: Date) -> Block {
        let p = self.period_of(cal, day);
        let duty = self.resolve(cal, offset, p.start, None);
        Block {
            day,
            kind: BlockKind::Period,
            start: p.start,
            end: p.end,
            day_type: p.day_type,
            holiday: p.holiday,
            unit: duty.unit,
            police: duty.police,
            overrides: duty.overrides,
            swaps: duty.swaps,
        }
    }

    /// `day`'s working hours as a block, when the roster names day units and
    /// the day is a working day with the desk in.
    fn day_block(&self, cal: &Calendar, offset: i64, day: Date) -> Option<Block> {
        let (kind, _) = cal.day(day);
        if self.f.rotation.day_units.is_empty() || !self.has_desk() || !kind.is_working() {
            return None;
        }
        let (start, end) = self.working_hours();
        let at = |t| {
            day.to_datetime(t)
                .to_zoned_datetime(court_tz())
                .ok()
                .map(|z| z.timestamp())
        };
        let (start, end) = (at(start)?, at(end)?);
        let duty = self.resolve(cal, offset, start, None);
        Some(Block {
            day,
            kind: BlockKind::Day,
            start,
            end,
            day_type: kind.as_str(),
            holiday: cal.holiday_name(day).map(str::to_string),
            unit: duty.day_unit,
            police: None,
            overrides: duty.overrides,
            swaps: duty.swaps,
        })
    }

    /// The blocks of `day` in which `id` (a member or a unit) holds a post,
    /// with the post.
    pub fn posts_on(&self, cal: &Calendar, offset: i64, id: &str, day: Date) -> Vec<(Block, Post)> {
        self.blocks(cal, offset, day, day)
            .into_iter()
            .filter_map(|b| b.post_of(id).map(|p| (b, p)))
            .collect()
    }
}

/// How one member's duty moved between two rosters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moved {
    pub member: Member,
    /// Blocks they held before and hold no longer.
    pub lost: Vec<Block>,
    /// Blocks they hold now and did not before (as they are now).
    pub gained: Vec<Block>,
}

/// Whose duty moved between `before` and `after` over the blocks of the
/// days `from..=to` (a swap, an override, a reload): each member who lost
/// or gained a block, in id order. Blocks already over at `now` are left
/// out: nobody is told of a past they cannot change.
pub fn moves(
    before: &Roster,
    after: &Roster,
    cal: &Calendar,
    offset: i64,
    from: Date,
    to: Date,
    now: Timestamp,
) -> Vec<Moved> {
    let index = |r: &Roster| -> BTreeMap<(Date, BlockKind), Block> {
        r.blocks(cal, offset, from, to)
            .into_iter()
            .filter(|b| b.end > now)
            .map(|b| (b.key(), b))
            .collect()
    };
    let (old, new) = (index(before), index(after));
    let mut out: BTreeMap<String, Moved> = BTreeMap::new();
    let ids = |b: Option<&Block>| -> Vec<String> {
        b.map(|b| b.people().iter().map(|m| m.id.clone()).collect())
            .unwrap_or_default()
    };
    for (key, b) in &old {
        let still = ids(new.get(key));
        for m in b.people().into_iter().filter(|m| !still.contains(&m.id)) {
            slot(&mut out, m).lost.push(b.clone());
        }
    }
    for (key, b) in &new {
        let then = ids(old.get(key));
        for m in b.people().into_iter().filter(|m| !then.contains(&m.id)) {
            slot(&mut out, m).gained.push(b.clone());
        }
    }
    out.into_values().collect()
}

/// `m`'s entry of `out`, made empty the first time.
fn slot<'a>(out: &'a mut BTreeMap<String, Moved>, m: &Member) -> &'a mut Moved {
    out.entry(m.id.clone()).or_insert_with(|| Moved {
        member: m.clone(),
        lost: Vec::new(),
        gained: Vec::new(),
    })
}

impl Moved {
    /// The notice for this member: what they no longer hold and what they
    /// hold now, `cause` saying why (换班 #3, 局长调整 #4, 值班表更新).
    pub fn text(&self, cause: &str) -> String {
        let list = |blocks: &[Block]| {
            blocks
                .iter()
                .map(|b| format!("{} {}", b.span(), b.post_words(&self.member.id)))
                .collect::<Vec<_>>()
                .join("；")
        };
        let mut parts = Vec::new();
        if !self.lost.is_empty() {
            parts.push(format!("不再值班：{}", list(&self.lost)));
        }
        if !self.gained.is_empty() {
            parts.push(format!("新增值班：{}", list(&self.gained)));
        }
        format!(
            "【市北区执行指挥中心】值班变动（{cause}）：{}。",
            parts.join("；")
        )
    }
}
