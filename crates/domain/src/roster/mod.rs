//! Who is on duty (rule 第二十五条(四)(五)(六)): the roster file, the holiday
//! calendar, and the one resolver that answers "who is on duty at instant
//! T" for paging, the API and the CLI alike. Pure and sans-IO: the rotation
//! offset (kept in Redis by the store, so every gateway agrees) is passed in.
//!
//! Every calendar day has one duty period, from the end of working hours on
//! a working day (from the start of working hours on a day off) to the
//! start of working hours the next day; the rotation moves on one unit per
//! period, so holidays neither starve nor double a unit. During working
//! hours on working days the day desk answers instead. `Target` names the
//! people on duty by role, for pages.
//!
//! Overrides replace a unit or a member for a range of days: the file's
//! (`[[overrides]]`), then the dynamic ones (approved swaps and the
//! director's overrides, kept by the store: [`Roster::with_dynamic`]), in
//! the order they came into force. `blocks` says who holds which duty
//! block, `swaps` the rules of swapping and overriding, `ics` the calendar
//! feed, `remind` the reminders; all of them read [`Roster::resolve`].

pub mod blocks;
pub mod calendar;
pub mod ics;
pub mod remind;
pub mod report;
pub mod swaps;
mod target;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use jiff::civil::{Date, Time};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

pub use calendar::{Calendar, DayType};
pub use target::Target;

use crate::court_time::court_tz;

#[derive(Debug, thiserror::Error)]
pub enum RosterError {
    #[error("{file}: cannot read: {error}")]
    Read { file: String, error: String },
    #[error("{file}: {entry}: {problem}")]
    Invalid {
        file: String,
        entry: String,
        problem: String,
    },
}

/// A member's role in the command center: one type, given by the roster
/// alone (the leaders' roles by `[leaders]`, the others by the member's
/// `roles`), read by every rule that asks (reveal, callbacks, rewards, the
/// board, who sees every ticket).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// 总指挥 (`[leaders] chief_commander`).
    ChiefCommander,
    /// 副总指挥 (`[leaders] deputies`).
    Deputy,
    /// 执行局长, head of the center (`[leaders] director`).
    Director,
    /// The command center's desk (working hours).
    Desk,
    CaseHandler,
    Police,
    Officer,
    Clerk,
    Driver,
}

impl Role {
    /// The roles only `[leaders]` gives.
    pub const LEADERS: [Role; 3] = [Role::ChiefCommander, Role::Deputy, Role::Director];
    /// Who sees every ticket.
    pub const SEE_ALL: [Role; 3] = Role::LEADERS;
    /// Who the command center's board, its statistics and registers are for.
    pub const BOARD: [Role; 4] = [
        Role::Desk,
        Role::Director,
        Role::Deputy,
        Role::ChiefCommander,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::ChiefCommander => "chief_commander",
            Role::Deputy => "deputy",
            Role::Director => "director",
            Role::Desk => "desk",
            Role::CaseHandler => "case_handler",
            Role::Police => "police",
            Role::Officer => "officer",
            Role::Clerk => "clerk",
            Role::Driver => "driver",
        }
    }
}

/// Someone who can be on duty or be told.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    pub id: String,
    pub name: String,
    /// As the roster file lists them; after loading, the leaders' roles
    /// are those `[leaders]` gives (see [`Role`]).
    #[serde(default)]
    pub roles: Vec<Role>,
    pub phone: Option<String>,
    /// SIP URI the gateway calls to page (announcement, key 1 = 签收), or
    /// [`REGISTERED`]: wherever their softphone registered with the
    /// gateway's registrar.
    pub sip: Option<String>,
    /// SIP URI for text pages (SIP MESSAGE).
    pub message: Option<String>,
    /// A webhook target name (the paging config says where it goes).
    pub webhook: Option<String>,
}

impl Member {
    /// The member has `role`.
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// The member has one of `roles`.
    pub fn has_any(&self, roles: &[Role]) -> bool {
        roles.iter().any(|r| self.has(*r))
    }
}

/// `sip = "registered"`: the member is called at their softphone's
/// registered contact.
pub const REGISTERED: &str = "registered";

/// The ways to page that the configuration opens besides SIP URIs, MESSAGE
/// and webhooks: a `[trunk]` dials phone numbers, a `[registrar]` takes
/// softphones' registrations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Reach {
    pub trunk: bool,
    pub registrar: bool,
}

impl Member {
    /// Some way to them is on file (their pages also reach the officers'
    /// mobile page).
    pub fn reachable(&self) -> bool {
        self.pageable(Reach {
            trunk: true,
            registrar: true,
        })
    }

    /// A channel that actually pages them — a SIP URI (a call), a MESSAGE
    /// URI, a webhook, with a `[trunk]` a phone number, with a
    /// `[registrar]` a registered softphone — what `roster check` proves.
    pub fn pageable(&self, reach: Reach) -> bool {
        let sip = match self.sip.as_deref() {
            Some(REGISTERED) => reach.registrar,
            Some(_) => true,
            None => false,
        };
        sip || self.message.is_some()
            || self.webhook.is_some()
            || (reach.trunk && self.phone.is_some())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Unit {
    pub id: String,
    pub name: String,
    pub vehicle: String,
    pub members: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Hours {
    start: Time,
    end: Time,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Rotation {
    epoch: Date,
    units: Vec<String>,
    police: Vec<String>,
    /// Rapid-response units that hold the duty by day beside the desk, one
    /// a calendar day in turn (optional).
    #[serde(default)]
    day_units: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Desk {
    members: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Leaders {
    director: String,
    #[serde(default)]
    deputies: Vec<String>,
    chief_commander: String,
}

impl Leaders {
    /// The leaders' roles of member `id`.
    fn roles_of(&self, id: &str) -> Vec<Role> {
        let mut out = Vec::new();
        if self.chief_commander == id {
            out.push(Role::ChiefCommander);
        }
        if self.deputies.iter().any(|d| d == id) {
            out.push(Role::Deputy);
        }
        if self.director == id {
            out.push(Role::Director);
        }
        out
    }
}

/// A unit or a member replaced for the duty periods starting `from`..=`to`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Override {
    pub replace: String,
    pub with: String,
    pub from: Date,
    pub to: Date,
    pub reason: Option<String>,
    /// A dynamic override's swap or override number (the store's); `None`
    /// for the file's.
    #[serde(skip)]
    pub swap: Option<u64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RosterFile {
    hours: Hours,
    rotation: Rotation,
    desk: Desk,
    leaders: Leaders,
    members: Vec<Member>,
    units: Vec<Unit>,
    /// Moved to the case directory (`[cases] file`): refused with a
    /// message saying so.
    #[serde(default)]
    cases: Option<toml::Value>,
    #[serde(default)]
    overrides: Vec<Override>,
}

/// A validated roster.
#[derive(Debug, Clone)]
pub struct Roster {
    f: RosterFile,
    members: HashMap<String, Member>,
    units: HashMap<String, Unit>,
    /// The case directory (`[cases] file`), which the loading attaches.
    cases: crate::cases::CaseDirectory,
    /// Approved swaps and the director's overrides, in the order they came
    /// into force, applied after the file's overrides.
    dynamic: Vec<Override>,
}

/// What the overrides did while one duty was resolved.
#[derive(Default)]
struct Used {
    /// Each override applied, as written.
    notes: Vec<String>,
    /// The dynamic ones' numbers.
    swaps: Vec<u64>,
}

/// One duty period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Period {
    /// The day it starts on.
    pub day: Date,
    /// Periods since the rotation's epoch.
    pub index: i64,
    pub start: Timestamp,
    pub end: Timestamp,
    pub day_type: &'static str,
    pub holiday: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnitOnDuty {
    pub id: String,
    pub name: String,
    pub vehicle: String,
    pub members: Vec<Member>,
}

/// The answer to "who is on duty at `at`".
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OnDuty {
    pub at: Timestamp,
    /// `None` during working hours, when the desk answers.
    pub period: Option<Period>,
    pub desk: Vec<Member>,
    /// In working hours: the day's rapid-response unit, when the roster
    /// names day units.
    pub day_unit: Option<UnitOnDuty>,
    pub unit: Option<UnitOnDuty>,
    pub police: Option<Member>,
    /// The case's handler (the member, or the unit's members), when the
    /// case directory knows the case number.
    pub case_handler: Vec<Member>,
    pub director: Member,
    pub deputies: Vec<Member>,
    pub chief_commander: Member,
    /// Overrides in force for this period, as written.
    pub overrides: Vec<String>,
    /// The swaps and overrides of the store among them, by number.
    pub swaps: Vec<u64>,
    /// `false` when the day's year has no holiday calendar.
    pub calendar_known: bool,
}

/// A roster problem: the entry, and what is wrong with it.
type Problem = (String, String);

/// The leaders' roles are [leaders]'s to give, and nobody else's.
fn give_leaders_roles(f: &mut RosterFile) -> Result<(), Problem> {
    for m in &mut f.members {
        let given = f.leaders.roles_of(&m.id);
        if let Some(r) = m
            .roles
            .iter()
            .find(|r| Role::LEADERS.contains(r) && !given.contains(r))
        {
            return Err((
                format!("members {}", m.id),
                format!(
                    "roles: {:?} is given by [leaders] alone, and it does not name {:?}",
                    r.as_str(),
                    m.id
                ),
            ));
        }
        m.roles.retain(|r| !Role::LEADERS.contains(r));
        m.roles.extend(given);
    }
    Ok(())
}

/// Members by id: each once, each SIP address a URI or "registered".
fn index_members(f: &RosterFile) -> Result<HashMap<String, Member>, Problem> {
    let mut members = HashMap::new();
    for m in &f.members {
        if members.insert(m.id.clone(), m.clone()).is_some() {
            return Err((format!("members {}", m.id), "id given twice".into()));
        }
        let sip_ok = m.sip.as_deref().is_none_or(|s| {
            s == REGISTERED
                || s.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("sip:"))
                || s.get(..5).is_some_and(|p| p.eq_ignore_ascii_case("sips:"))
        });
        if !sip_ok {
            return Err((
                format!("members {}: sip", m.id),
                format!(
                    "{:?} is neither a sip: or sips: URI nor \"{REGISTERED}\"",
                    m.sip.as_deref().unwrap_or("")
                ),
            ));
        }
    }
    Ok(members)
}

/// Units by id: each once, not a member's id, of known members.
fn index_units(
    f: &RosterFile,
    members: &HashMap<String, Member>,
) -> Result<HashMap<String, Unit>, Problem> {
    let mut units = HashMap::new();
    for u in &f.units {
        if members.contains_key(&u.id) || units.insert(u.id.clone(), u.clone()).is_some() {
            return Err((format!("units {}", u.id), "id given twice".into()));
        }
        if u.members.is_empty() {
            return Err((format!("units {}", u.id), "has no members".into()));
        }
        if let Some(m) = u.members.iter().find(|m| !members.contains_key(*m)) {
            return Err((
                format!("units {}", u.id),
                format!("member {m:?} is not in [[members]]"),
            ));
        }
    }
    Ok(units)
}

/// `entry`'s units: each a known unit, each once.
fn known_units(entry: &str, list: &[String], units: &HashMap<String, Unit>) -> Result<(), Problem> {
    let mut seen = HashSet::new();
    for u in list {
        if !units.contains_key(u) {
            return Err((entry.into(), format!("{u:?} is not in [[units]]")));
        }
        if !seen.insert(u) {
            return Err((entry.into(), format!("{u:?} is listed twice")));
        }
    }
    Ok(())
}

/// The hours, the rotation, the desk and the leaders name what
/// the roster has.
fn check_duty(
    f: &RosterFile,
    members: &HashMap<String, Member>,
    units: &HashMap<String, Unit>,
) -> Result<(), Problem> {
    let member = |entry: &str, id: &str| match members.contains_key(id) {
        true => Ok(()),
        false => Err((entry.to_string(), format!("{id:?} is not in [[members]]"))),
    };
    if f.hours.start >= f.hours.end {
        return Err(("hours".into(), "start must be before end".into()));
    }
    if f.rotation.units.is_empty() || f.rotation.police.is_empty() {
        return Err((
            "rotation".into(),
            "units and police must not be empty".into(),
        ));
    }
    known_units("rotation.units", &f.rotation.units, units)?;
    for p in &f.rotation.police {
        member("rotation.police", p)?;
    }
    known_units("rotation.day_units", &f.rotation.day_units, units)?;
    for d in &f.desk.members {
        member("desk.members", d)?;
    }
    member("leaders.director", &f.leaders.director)?;
    member("leaders.chief_commander", &f.leaders.chief_commander)?;
    for d in &f.leaders.deputies {
        member("leaders.deputies", d)?;
    }
    if f.cases.is_some() {
        return Err((
            "cases".into(),
            "case handlers moved to the case directory: a CSV (case_number,handler) named by [cases] file in the main configuration".into(),
        ));
    }
    Ok(())
}

/// Each override in order, replacing a unit by a unit or a member by a
/// member.
fn check_overrides(
    f: &RosterFile,
    members: &HashMap<String, Member>,
    units: &HashMap<String, Unit>,
) -> Result<(), Problem> {
    for o in &f.overrides {
        let entry = format!("overrides {} -> {} {}..{}", o.replace, o.with, o.from, o.to);
        if o.from > o.to {
            return Err((entry, "from is after to".into()));
        }
        let same_kind = (units.contains_key(&o.replace) && units.contains_key(&o.with))
            || (members.contains_key(&o.replace) && members.contains_key(&o.with));
        if !same_kind {
            return Err((
                entry,
                "replace and with must both be units or both members".into(),
            ));
        }
    }
    Ok(())
}

impl Roster {
    pub fn load(path: &Path) -> Result<Roster, RosterError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| RosterError::Read {
            file: file.clone(),
            error: e.to_string(),
        })?;
        Roster::parse(&text, &file)
    }

    pub fn parse(text: &str, file: &str) -> Result<Roster, RosterError> {
        let bad = |(entry, problem): Problem| RosterError::Invalid {
            file: file.to_string(),
            entry,
            problem,
        };
        let mut f: RosterFile = toml::from_str(text).map_err(|e| {
            let at = e
                .span()
                .map(|s| format!("line {}", text[..s.start].matches('\n').count() + 1))
                .unwrap_or_else(|| "roster".into());
            bad((at, e.message().to_string()))
        })?;
        give_leaders_roles(&mut f).map_err(bad)?;
        let members = index_members(&f).map_err(bad)?;
        let units = index_units(&f, &members).map_err(bad)?;
        check_duty(&f, &members, &units).map_err(bad)?;
        check_overrides(&f, &members, &units).map_err(bad)?;
        Ok(Roster {
            f,
            members,
            units,
            cases: Default::default(),
            dynamic: Vec::new(),
        })
    }

    /// This roster with the dynamic overrides `list` (approved swaps, the
    /// director's overrides; in the order they came into force) applied
    /// after the file's. Those it cannot apply are left out, each with
    /// why: a member or unit it names is not in this roster, or it would
    /// replace a unit by a member.
    pub fn with_dynamic(mut self, list: Vec<Override>) -> (Roster, Vec<(Override, String)>) {
        let mut kept = Vec::new();
        let mut left = Vec::new();
        for o in list {
            match self.applicable(&o) {
                Ok(()) => kept.push(o),
                Err(why) => left.push((o, why)),
            }
        }
        self.dynamic = kept;
        (self, left)
    }

    /// The dynamic overrides in force, in order.
    pub fn dynamic(&self) -> &[Override] {
        &self.dynamic
    }

    /// Whether this roster can apply `o`: both ends known, of one kind.
    fn applicable(&self, o: &Override) -> Result<(), String> {
        for id in [&o.replace, &o.with] {
            if !self.knows(id) {
                return Err(format!("{id} is not in the roster any more"));
            }
        }
        if self.is_unit(&o.replace) != self.is_unit(&o.with) {
            return Err("replace and with must both be units or both members".into());
        }
        if o.from > o.to {
            return Err("from is after to".into());
        }
        Ok(())
    }

    pub fn members(&self) -> impl Iterator<Item = &Member> {
        self.f.members.iter()
    }

    pub fn member(&self, id: &str) -> Option<&Member> {
        self.members.get(id)
    }

    /// The units a member belongs to.
    pub fn units_of(&self, member: &str) -> Vec<&str> {
        self.f
            .units
            .iter()
            .filter(|u| u.members.iter().any(|m| m == member))
            .map(|u| u.id.as_str())
            .collect()
    }

    /// The handler of a case (a member or unit id), by the case directory.
    pub fn handler_of(&self, case: &str) -> Option<&str> {
        self.cases.handler_of(case)
    }

    /// Whether `member` handles `case`: named by the directory, or in the
    /// unit it names.
    pub fn handles(&self, member: &str, case: &str) -> bool {
        self.handler_of(case)
            .is_some_and(|h| h == member || self.units_of(member).contains(&h))
    }

    /// The members a handler id names: the member, or the unit's members.
    pub fn handler_members(&self, handler: &str) -> Vec<Member> {
        match self.units.get(handler) {
            Some(u) => u.members.iter().map(|m| self.m(m)).collect(),
            None => self.member(handler).cloned().into_iter().collect(),
        }
    }

    /// A member's or a unit's name (a case's handler is either).
    pub fn name_of(&self, id: &str) -> Option<&str> {
        self.members
            .get(id)
            .map(|m| m.name.as_str())
            .or_else(|| self.units.get(id).map(|u| u.name.as_str()))
    }

    /// Whether `id` is a unit (else a member, or nobody).
    pub fn is_unit(&self, id: &str) -> bool {
        self.units.contains_key(id)
    }

    /// The day desk's members, at any hour (the desk is the center's
    /// office: what no handler takes goes there).
    pub fn desk_members(&self) -> Vec<Member> {
        self.f.desk.members.iter().map(|d| self.m(d)).collect()
    }

    /// The director, head of the center (第四条), at any hour.
    pub fn director(&self) -> Member {
        self.m(&self.f.leaders.director)
    }

    /// Working hours on working days (adjusted working days included):
    /// start and end, the court's clock.
    pub fn working_hours(&self) -> (Time, Time) {
        (self.f.hours.start, self.f.hours.end)
    }

    /// Whether `id` is a member or a unit.
    pub fn knows(&self, id: &str) -> bool {
        self.members.contains_key(id) || self.units.contains_key(id)
    }

    /// Attaches the case directory; the handlers it names that the roster
    /// does not know, each naming file, line and field.
    pub fn with_cases(mut self, cases: crate::cases::CaseDirectory) -> Result<Roster, Vec<String>> {
        let unknown = cases.unknown_handlers(|h| self.knows(h));
        if !unknown.is_empty() {
            return Err(unknown);
        }
        self.cases = cases;
        Ok(self)
    }

    pub fn cases(&self) -> &crate::cases::CaseDirectory {
        &self.cases
    }

    pub fn rotation_units(&self) -> &[String] {
        &self.f.rotation.units
    }

    /// A unit as it stands on `day`: overrides of the unit or its members
    /// applied (and noted in `used`).
    fn unit_on_duty(&self, id: &str, day: Date, used: &mut Used) -> UnitOnDuty {
        let id = self.replaced(id, day, used).to_string();
        let u = &self.units[&id];
        UnitOnDuty {
            id: u.id.clone(),
            name: u.name.clone(),
            vehicle: u.vehicle.clone(),
            members: u
                .members
                .iter()
                .map(|m| self.m(self.replaced(m, day, used)))
                .collect(),
        }
    }

    fn has_desk(&self) -> bool {
        !self.f.desk.members.is_empty()
    }

    /// The period that starts on `day`.
    pub fn period_of(&self, cal: &Calendar, day: Date) -> Period {
        let (kind, _) = cal.day(day);
        let tz = court_tz();
        let begin = if kind.is_working() && self.has_desk() {
            self.f.hours.end
        } else {
            self.f.hours.start
        };
        let next = day.tomorrow().expect("not the end of time");
        let at = |d: Date, t: Time| {
            d.to_datetime(t)
                .to_zoned_datetime(tz.clone())
                .expect("Asia/Shanghai has no gaps")
                .timestamp()
        };
        Period {
            day,
            index: (day - self.f.rotation.epoch).get_days() as i64,
            start: at(day, begin),
            end: at(next, self.f.hours.start),
            day_type: kind.as_str(),
            holiday: cal.holiday_name(day).map(str::to_string),
        }
    }

    /// The period in force at `at`, or `None` in working hours.
    pub fn period_at(&self, cal: &Calendar, at: Timestamp) -> Option<Period> {
        let local = at.to_zoned_datetime(court_tz());
        let (day, time) = (local.date(), local.time());
        if time < self.f.hours.start {
            return Some(self.period_of(cal, day.yesterday().expect("not the start of time")));
        }
        let (kind, _) = cal.day(day);
        if self.has_desk() && kind.is_working() && time < self.f.hours.end {
            return None;
        }
        Some(self.period_of(cal, day))
    }

    /// Who holds `id`'s place on `day`: the file's override (one step, so
    /// that two units swapped both ways in the file stay swapped), then each
    /// dynamic one in the order it came into force, on whoever holds the
    /// place by then.
    fn replaced<'a>(&'a self, id: &'a str, day: Date, used: &mut Used) -> &'a str {
        let note = |o: &Override| {
            format!(
                "{} replaced by {}{}",
                o.replace,
                o.with,
                o.reason
                    .as_deref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            )
        };
        let mut holder = id;
        if let Some(o) = self
            .f
            .overrides
            .iter()
            .find(|o| o.replace == id && o.from <= day && day <= o.to)
        {
            used.notes.push(note(o));
            holder = &o.with;
        }
        for o in &self.dynamic {
            if o.replace == holder && o.from <= day && day <= o.to {
                used.notes.push(note(o));
                used.swaps.extend(o.swap);
                holder = &o.with;
            }
        }
        holder
    }

    fn m(&self, id: &str) -> Member {
        self.members[id].clone()
    }

    /// Who is on duty at `at`. `offset` is the rotation state (periods the
    /// rotation has been advanced by hand); `case` the case number, when known.
    pub fn resolve(
        &self,
        cal: &Calendar,
        offset: i64,
        at: Timestamp,
        case: Option<&str>,
    ) -> OnDuty {
        let period = self.period_at(cal, at);
        let local_day = at.to_zoned_datetime(court_tz()).date();
        let mut used = Used::default();
        let (unit, police) = match &period {
            None => (None, None),
            Some(p) => {
                let n = self.f.rotation.units.len() as i64;
                let unit_id = &self.f.rotation.units[(p.index + offset).rem_euclid(n) as usize];
                let unit = self.unit_on_duty(unit_id, p.day, &mut used);
                let k = self.f.rotation.police.len() as i64;
                let police_id = &self.f.rotation.police[(p.index + offset).rem_euclid(k) as usize];
                let police = self.m(self.replaced(police_id, p.day, &mut used));
                (Some(unit), Some(police))
            }
        };
        // By day, the day units take turns a calendar day each.
        let day_unit = match (&period, self.f.rotation.day_units.len() as i64) {
            (None, n) if n > 0 => {
                let index = (local_day - self.f.rotation.epoch).get_days() as i64;
                let id = &self.f.rotation.day_units[(index + offset).rem_euclid(n) as usize];
                Some(self.unit_on_duty(id, local_day, &mut used))
            }
            _ => None,
        };
        let desk_day = period.as_ref().map_or(local_day, |p| p.day);
        let desk = if period.is_none() {
            self.f
                .desk
                .members
                .iter()
                .map(|d| self.m(self.replaced(d, desk_day, &mut used)))
                .collect()
        } else {
            Vec::new()
        };
        let case_handler = case
            .and_then(|c| self.handler_of(c))
            .map(|h| self.handler_members(h))
            .unwrap_or_default();
        let day = period.as_ref().map_or(local_day, |p| p.day);
        OnDuty {
            at,
            calendar_known: cal.day(day).1,
            period,
            desk,
            day_unit,
            unit,
            police,
            case_handler,
            director: self.m(&self.f.leaders.director),
            deputies: self.f.leaders.deputies.iter().map(|d| self.m(d)).collect(),
            chief_commander: self.m(&self.f.leaders.chief_commander),
            overrides: used.notes,
            swaps: used.swaps,
        }
    }

    /// The duty plan: one entry per period starting `from..=to`.
    pub fn plan(&self, cal: &Calendar, offset: i64, from: Date, to: Date) -> Vec<OnDuty> {
        let mut out = Vec::new();
        let mut d = from;
        while d <= to {
            let p = self.period_of(cal, d);
            out.push(self.resolve(cal, offset, p.start, None));
            d = d.tomorrow().expect("not the end of time");
        }
        out
    }

    /// The next instant in working hours (the desk's next morning).
    pub fn next_working_start(&self, calendar: &Calendar, now: Timestamp) -> Timestamp {
        let mut t = now;
        for _ in 0..60 {
            match self.period_at(calendar, t) {
                Some(p) => t = p.end,
                None => return t,
            }
        }
        t
    }

    /// Members whose phone number the trunk's dial plan does not dial.
    pub fn undialable(&self, plan: &crate::dial_plan::DialPlan) -> Vec<String> {
        self.f
            .members
            .iter()
            .filter_map(|m| {
                let phone = m.phone.as_deref()?;
                let e = plan.permit(phone).err()?;
                Some(format!("members {}: phone {phone:?}: {e}", m.id))
            })
            .collect()
    }

    /// Problems an operator must fix (members and units no page reaches,
    /// uneven load over the next 8 weeks), then warnings (provisional
    /// holiday dates: a notice to add, the plan stands meanwhile).
    /// `reach`: what the configuration opens (a trunk, a registrar).
    pub fn check(
        &self,
        cal: &Calendar,
        offset: i64,
        today: Date,
        reach: Reach,
    ) -> (Vec<String>, Vec<String>) {
        let mut out = Vec::new();
        let mut warnings = Vec::new();
        for m in &self.f.members {
            if !m.pageable(reach) {
                let why = if m.sip.as_deref() == Some(REGISTERED) {
                    "is to be called at a registered softphone, and no [registrar] is configured"
                } else if m.phone.is_some() {
                    "has only a phone number, and no [trunk] is configured to dial it"
                } else {
                    "has no SIP URI, MESSAGE URI or webhook"
                };
                out.push(format!(
                    "member {} ({}) {why}: no page reaches them",
                    m.id, m.name
                ));
            }
        }
        for u in self
            .f
            .rotation
            .units
            .iter()
            .chain(&self.f.rotation.day_units)
        {
            let unit = &self.units[u];
            if !unit.members.iter().any(|m| self.m(m).pageable(reach)) {
                out.push(format!(
                    "unit {} ({}): nobody in it can be paged",
                    unit.id, unit.name
                ));
            }
        }
        let to = today + jiff::Span::new().days(55);
        warnings.extend(cal.warning(today));
        if !cal.knows(to.year()) && to.year() != today.year() && today.month() != 12 {
            warnings.push(calendar::provisional(to.year()));
        }
        let mut load: BTreeMap<String, usize> = self
            .f
            .rotation
            .units
            .iter()
            .map(|u| (u.clone(), 0))
            .collect();
        for duty in self.plan(cal, offset, today, to) {
            if let Some(u) = duty.unit {
                *load.entry(u.id).or_default() += 1;
            }
        }
        let (min, max) = (
            load.values().min().copied().unwrap_or(0),
            load.values().max().copied().unwrap_or(0),
        );
        if max - min > 1 {
            out.push(format!(
                "uneven load over the next 8 weeks: {load:?} duty periods per unit"
            ));
        }
        (out, warnings)
    }
}

#[cfg(test)]
mod tests;
