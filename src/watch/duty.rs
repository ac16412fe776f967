//! Who the watch looks at, and what `roster check` finds, pure over the
//! roster: the members who hold the duty from now until a day later (each
//! with when their duty starts), and the roster check's findings over the
//! next days, the same for `hotline roster check` and the daily check.

use jiff::{SignedDuration, Timestamp};

use crate::dial_plan::DialPlan;
use crate::escalation::{Policies, Target};
use crate::roster::{Calendar, Member, Reach, Roster};

/// What `roster check` checks against.
pub struct DutyCheck<'a> {
    pub roster: &'a Roster,
    pub calendar: &'a Calendar,
    pub policies: &'a Policies,
    /// The trunk's dial plan, with a `[trunk]`.
    pub plan: Option<&'a DialPlan>,
    /// What the configuration opens (a trunk, a registrar).
    pub reach: Reach,
}

impl DutyCheck<'_> {
    /// The problems (members and units no page reaches, numbers the trunk
    /// does not dial, uneven load, hours of the `days` from `today` whose
    /// first step pages nobody reachable), then the warnings.
    pub fn findings(
        &self,
        offset: i64,
        today: jiff::civil::Date,
        days: i64,
    ) -> (Vec<String>, Vec<String>) {
        let (mut issues, warnings) = self.roster.check(self.calendar, offset, today, self.reach);
        if let Some(plan) = self.plan {
            issues.extend(self.roster.undialable(plan));
        }
        issues.extend(crate::escalation::unreached_hours(
            self.roster,
            self.calendar,
            self.policies,
            offset,
            today,
            days,
            self.reach,
        ));
        (issues, warnings)
    }
}

/// The members who hold the duty (`on_duty`: by day the desk and the day
/// unit, otherwise the duty unit and the court police) at `now` and in the
/// blocks that start before `within` is over, each once, with when their
/// duty starts (`now` for those on duty now).
pub fn on_duty_within(
    roster: &Roster,
    calendar: &Calendar,
    offset: i64,
    now: Timestamp,
    within: SignedDuration,
) -> Vec<(Member, Timestamp)> {
    let mut out: Vec<(Member, Timestamp)> = Vec::new();
    let end = now + within;
    let mut t = now;
    // A block is hours long: a day holds a few (the bound is a guard).
    for _ in 0..16 {
        if t > end {
            break;
        }
        let duty = roster.resolve(calendar, offset, t, None);
        for m in crate::escalation::members_for(&duty, &[Target::OnDuty], roster) {
            if !out.iter().any(|(o, _)| o.id == m.id) {
                out.push((m, t));
            }
        }
        // The next block: the end of the duty period, or of working hours.
        let next = match roster.period_at(calendar, t) {
            Some(p) => p.end,
            None => {
                roster
                    .period_of(calendar, crate::court_time::court_day(t))
                    .start
            }
        };
        if next <= t {
            break;
        }
        t = next;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (Roster, Calendar) {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        (
            Roster::load(&dir.join("roster.toml")).unwrap(),
            Calendar::load(&dir.join("holidays")).unwrap(),
        )
    }

    #[test]
    fn the_next_day_holds_the_desk_and_the_night_s_unit_and_police() {
        let (roster, calendar) = sample();
        // Tuesday 1 December 2026, 10:00 in Qingdao: the desk (and the day
        // unit, if any) now; the night's duty unit and police from 17:30.
        let now: Timestamp = "2026-12-01T02:00:00Z".parse().unwrap();
        let on = on_duty_within(&roster, &calendar, 0, now, SignedDuration::from_hours(24));
        let desk = on.iter().find(|(m, _)| m.id == "m-desk-1").unwrap();
        assert_eq!(desk.1, now, "on duty now");
        let evening: Timestamp = "2026-12-01T09:30:00Z".parse().unwrap();
        let night = roster.resolve(&calendar, 0, evening, None);
        let unit = night.unit.unwrap();
        let officer = on.iter().find(|(m, _)| m.id == unit.members[0].id).unwrap();
        assert_eq!(officer.1, evening, "from the end of working hours");
        let police = night.police.unwrap();
        assert!(on.iter().any(|(m, at)| m.id == police.id && *at == evening));
        // The next morning's desk is already in the list (from now).
        assert_eq!(on.iter().filter(|(m, _)| m.id == "m-desk-1").count(), 1);
    }
}
