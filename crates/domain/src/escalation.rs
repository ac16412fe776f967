//! Escalation policies (rules 第二十三条, 第二十五条, 第十七条(四), 第三十条)
//! as a sans-IO engine: given when the ticket opened, whether someone has
//! acknowledged (签收) or dispatched (出警), and `now`, it says which steps
//! fire and when to look again. Timers themselves live in Redis
//! (`scheduler`), so nothing here sleeps.

use std::time::Duration;

use serde::Deserialize;

use crate::roster::{Member, OnDuty, Roster};
use crate::tickets::model::Category;

/// Who a step pages (the roster's: a clock's alarm names them too).
pub use crate::roster::Target;

/// What stops a step's repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Until {
    Acknowledged,
    Dispatched,
}

/// One step: at `after` from the ticket opening, page `targets`; repeat
/// every `repeat_seconds` while not `until`; skipped if `unless` already holds.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub after_seconds: u64,
    pub targets: Vec<Target>,
    #[serde(default)]
    pub repeat_seconds: Option<u64>,
    #[serde(default)]
    pub until: Option<Until>,
    /// The step only fires if this has not happened yet.
    #[serde(default)]
    pub unless: Option<Until>,
    /// Recorded on the ticket as a breach (the five-minute rule).
    #[serde(default)]
    pub breach: bool,
    /// What the page says beyond the ticket summary.
    #[serde(default)]
    pub note: Option<String>,
}

/// A category's policy.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub steps: Vec<Step>,
    /// Outside working hours, wait for the next working day's start
    /// (complaints: no dispatch, a summary in the morning).
    #[serde(default)]
    pub defer_to_working_hours: bool,
}

/// The policies by category.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policies {
    pub lead: Policy,
    pub violence: Policy,
    pub partner: Policy,
    pub consultation: Policy,
    pub complaint: Policy,
    pub preservation: Policy,
    pub other: Policy,
}

fn step(after: u64, targets: Vec<Target>) -> Step {
    Step {
        after_seconds: after,
        targets,
        repeat_seconds: None,
        until: None,
        unless: None,
        breach: false,
        note: None,
    }
}

/// Still no 出警 at five minutes: the rule is breached (第二十三条); the
/// director and the chief commander are told.
fn five_minute_breach() -> Step {
    Step {
        unless: Some(Until::Dispatched),
        breach: true,
        note: Some("五分钟内未出警".into()),
        ..step(300, vec![Target::Director, Target::ChiefCommander])
    }
}

impl Policy {
    /// Leads: whoever holds the duty now at once (by day the desk and the
    /// day unit, at night the duty unit and the court police), again every minute until
    /// someone acknowledges; the case handler and the director at two
    /// minutes; at five minutes without dispatch the director and the chief
    /// commander hear that the limit was missed (第二十三条).
    pub fn lead() -> Policy {
        Policy {
            steps: vec![
                Step {
                    repeat_seconds: Some(60),
                    until: Some(Until::Acknowledged),
                    ..step(0, vec![Target::OnDuty])
                },
                Step {
                    unless: Some(Until::Dispatched),
                    ..step(120, vec![Target::CaseHandler, Target::Director])
                },
                five_minute_breach(),
            ],
            defer_to_working_hours: false,
        }
    }

    /// Violent resistance: everyone up to the chief commander at once
    /// (第十七条(四), 第三十条), repeated until acknowledged.
    pub fn violence() -> Policy {
        Policy {
            steps: vec![
                Step {
                    repeat_seconds: Some(60),
                    until: Some(Until::Acknowledged),
                    ..step(
                        0,
                        vec![
                            Target::OnDuty,
                            Target::CaseHandler,
                            Target::Director,
                            Target::Deputies,
                            Target::ChiefCommander,
                        ],
                    )
                },
                five_minute_breach(),
            ],
            defer_to_working_hours: false,
        }
    }

    /// The police or an assisting unit holds a debtor (第三十七条): the
    /// top priority. Whoever holds the duty, the court police and the
    /// director at once, again every 30 seconds until someone
    /// acknowledges; the deputies and the chief commander at two minutes
    /// without one; the five-minute rule as for a lead. The pickup
    /// deadline's own clock (`[partners]`) comes on top.
    pub fn partner() -> Policy {
        Policy {
            steps: vec![
                Step {
                    repeat_seconds: Some(30),
                    until: Some(Until::Acknowledged),
                    ..step(
                        0,
                        vec![Target::OnDuty, Target::CourtPolice, Target::Director],
                    )
                },
                Step {
                    unless: Some(Until::Acknowledged),
                    ..step(120, vec![Target::Deputies, Target::ChiefCommander])
                },
                five_minute_breach(),
            ],
            defer_to_working_hours: false,
        }
    }

    /// Consultations: nobody is paged. The case directory's handler (the
    /// desk for an unknown case) has it on their list with its answer
    /// deadline and in the morning's digest.
    pub fn consultation() -> Policy {
        Policy {
            steps: Vec::new(),
            defer_to_working_hours: true,
        }
    }

    /// Complaints: no dispatch; the petition desk, in working hours.
    pub fn complaint() -> Policy {
        Policy {
            steps: vec![step(0, vec![Target::Desk])],
            defer_to_working_hours: true,
        }
    }

    /// Urgent property preservation: the case handler at once (第十六条),
    /// otherwise as a lead.
    pub fn preservation() -> Policy {
        let mut p = Policy::lead();
        p.steps[0].targets.push(Target::CaseHandler);
        p
    }

    /// A new lead on a case whose earlier lead `earlier` is dispatched
    /// (the triage's `joined`): the officers on it (`officers`), repeated
    /// as `base`'s first step repeats until someone acknowledges, instead
    /// of the duty. No second dispatch is asked for, so no five-minute
    /// breach; the note names the earlier ticket.
    pub fn joined(base: &Policy, officers: &[String], earlier: &str) -> Policy {
        let repeat = base.steps.first().and_then(|s| s.repeat_seconds);
        Policy {
            steps: vec![Step {
                repeat_seconds: repeat,
                until: Some(Until::Acknowledged),
                note: Some(format!("本案已出警（工单 {earlier}），请在场人员一并处置")),
                ..step(
                    0,
                    officers.iter().map(|o| Target::Member(o.clone())).collect(),
                )
            }],
            defer_to_working_hours: false,
        }
    }
}

impl Default for Policies {
    fn default() -> Self {
        Policies {
            lead: Policy::lead(),
            violence: Policy::violence(),
            partner: Policy::partner(),
            consultation: Policy::consultation(),
            complaint: Policy::complaint(),
            preservation: Policy::preservation(),
            other: Policy::lead(),
        }
    }
}

impl Policies {
    pub fn for_category(&self, c: Option<Category>) -> &Policy {
        match c {
            Some(Category::Violence) => &self.violence,
            Some(Category::Partner) => &self.partner,
            Some(Category::Consultation) => &self.consultation,
            Some(Category::Complaint) => &self.complaint,
            Some(Category::Preservation) => &self.preservation,
            Some(Category::Other) => &self.other,
            Some(Category::Lead) | None => &self.lead,
        }
    }
}

/// Where a ticket's escalation stands, kept in Redis between firings.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct Progress {
    /// Per step: how many times it has fired.
    pub fired: Vec<u32>,
    /// Someone pressed 2 (pass to the next person): the next step that
    /// has not fired yet fires at once.
    #[serde(default)]
    pub pass: bool,
}

/// What a firing decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fire {
    pub step: usize,
    /// 0 for the first time, then the repeat number.
    pub repeat: u32,
    pub targets: Vec<Target>,
    pub breach: bool,
    pub note: Option<String>,
}

/// One evaluation: `elapsed` since the ticket opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub fire: Vec<Fire>,
    /// Steps passed over because `unless` already held.
    pub skipped: Vec<usize>,
    /// When to look again (from the opening), `None` when done.
    pub next: Option<Duration>,
}

/// Evaluates `policy` at `elapsed`, updating `progress`.
pub fn evaluate(
    policy: &Policy,
    progress: &mut Progress,
    elapsed: Duration,
    acknowledged: bool,
    dispatched: bool,
) -> Decision {
    progress.fired.resize(policy.steps.len(), 0);
    let holds = |u: Until| match u {
        Until::Acknowledged => acknowledged || dispatched,
        Until::Dispatched => dispatched,
    };
    let forced = if std::mem::take(&mut progress.pass) {
        progress.fired.iter().position(|n| *n == 0)
    } else {
        None
    };
    let mut fire = Vec::new();
    let mut skipped = Vec::new();
    let mut next: Option<Duration> = None;
    let mut soonest = |d: Duration| next = Some(next.map_or(d, |n: Duration| n.min(d)));
    for (i, s) in policy.steps.iter().enumerate() {
        let first = Duration::from_secs(s.after_seconds);
        let n = progress.fired[i];
        if n == u32::MAX {
            continue; // settled
        }
        // When this step is due next.
        let due = match (n, s.repeat_seconds) {
            (0, _) => Some(first),
            (k, Some(r)) if r > 0 => Some(first + Duration::from_secs(r) * k),
            _ => None,
        };
        let Some(mut due) = due else { continue };
        if forced == Some(i) {
            due = due.min(elapsed);
        }
        let stopped = s.until.is_some_and(holds) && n > 0;
        if stopped {
            continue;
        }
        if elapsed < due {
            soonest(due);
            continue;
        }
        if s.unless.is_some_and(holds) {
            if n == 0 {
                skipped.push(i);
            }
            // Done with this step: mark it so it is not looked at again.
            progress.fired[i] = u32::MAX;
            continue;
        }
        fire.push(Fire {
            step: i,
            repeat: n,
            targets: s.targets.clone(),
            breach: s.breach,
            note: s.note.clone(),
        });
        progress.fired[i] = n + 1;
        if let Some(r) = s.repeat_seconds.filter(|r| *r > 0) {
            if !s.until.is_some_and(holds) {
                soonest(first + Duration::from_secs(r) * (n + 1));
            }
        }
    }
    Decision {
        fire,
        skipped,
        next,
    }
}

/// Members a step's targets name, each once, in order.
pub fn members_for(duty: &OnDuty, targets: &[Target], roster: &Roster) -> Vec<Member> {
    let mut out: Vec<Member> = Vec::new();
    let mut add = |m: &Member| {
        if !out.iter().any(|o| o.id == m.id) {
            out.push(m.clone());
        }
    };
    for t in targets {
        match t {
            Target::OnDuty if duty.period.is_none() => {
                duty.desk.iter().for_each(&mut add);
                duty.day_unit
                    .iter()
                    .flat_map(|u| &u.members)
                    .for_each(&mut add);
            }
            Target::OnDuty => {
                duty.unit.iter().flat_map(|u| &u.members).for_each(&mut add);
                duty.police.iter().for_each(&mut add);
            }
            Target::DutyUnit => duty.unit.iter().flat_map(|u| &u.members).for_each(&mut add),
            Target::CourtPolice => duty.police.iter().for_each(&mut add),
            Target::CaseHandler => duty.case_handler.iter().for_each(&mut add),
            Target::Director => add(&duty.director),
            Target::Deputies => duty.deputies.iter().for_each(&mut add),
            Target::ChiefCommander => add(&duty.chief_commander),
            // Only in working hours: outside them the desk is nobody.
            Target::Desk => duty.desk.iter().for_each(&mut add),
            Target::Member(id) => roster.member(id).into_iter().for_each(&mut add),
        }
    }
    // A member nobody can reach is no page.
    out.retain(|m| m.reachable());
    out
}

/// Proves reach (issue 14): for every hour of the `days` from `today` and
/// every category, the first step of its policy resolves to at least one
/// person a page reaches. Returns each hour that fails (the first 20 of
/// them, then how many more), by category.
pub fn unreached_hours(
    roster: &crate::roster::Roster,
    calendar: &crate::roster::Calendar,
    policies: &crate::escalation::Policies,
    offset: i64,
    today: jiff::civil::Date,
    days: i64,
    reach: crate::roster::Reach,
) -> Vec<String> {
    use crate::tickets::model::Category;
    let tz = crate::court_time::court_tz();
    let mut out = Vec::new();
    let mut more = 0usize;
    for c in Category::ALL {
        let name = c.as_str();
        let p = policies.for_category(Some(c));
        if c == Category::Consultation && p.steps.is_empty() {
            continue; // routed to its handler, not paged
        }
        let Some(first) = p.steps.first() else {
            out.push(format!("{name}: the policy has no step: nobody is paged"));
            continue;
        };
        for h in 0..days * 24 {
            let Ok(at) = today
                .to_datetime(jiff::civil::Time::midnight())
                .to_zoned_datetime(tz.clone())
                .map(|z| z.timestamp() + jiff::SignedDuration::from_hours(h))
            else {
                continue;
            };
            let duty = roster.resolve(calendar, offset, at, None);
            // Deferred policies page at the next working hours' start.
            if p.defer_to_working_hours && duty.period.is_some() {
                continue;
            }
            let reached = crate::escalation::members_for(&duty, &first.targets, roster)
                .iter()
                .any(|m| m.pageable(reach));
            if !reached {
                if out.len() < 20 {
                    let local = at.to_zoned_datetime(tz.clone());
                    out.push(format!(
                        "{name}: at {} its first step pages nobody who can be reached",
                        local.strftime("%Y-%m-%d %H:%M")
                    ));
                } else {
                    more += 1;
                }
            }
        }
    }
    if more > 0 {
        out.push(format!("... and {more} more hours"));
    }
    out
}

#[cfg(test)]
mod tests;
