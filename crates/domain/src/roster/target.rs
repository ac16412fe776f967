//! Who a page names, by the duty's roles rather than by person: resolved
//! against the roster at firing time (`escalation::members_for`), by the
//! escalation policies' steps and the clocks' alarms alike.

use serde::Deserialize;

/// Who a page names; resolved against the roster at firing time.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// Whoever holds the duty now: by day the desk (指挥中心值班员) and the
    /// day's rapid-response unit; at night, on weekends and holidays the
    /// duty unit and the standby court police officer (第二十五条(五)).
    OnDuty,
    DutyUnit,
    CourtPolice,
    CaseHandler,
    Director,
    Deputies,
    ChiefCommander,
    /// The day desk (petition desk for complaints).
    Desk,
    /// A named member.
    Member(String),
}
