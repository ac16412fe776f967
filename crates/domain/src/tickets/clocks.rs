//! The clocks that run on a ticket after it opened, besides its escalation
//! policy's five minutes: a partner's pickup deadline, a consultation's
//! answer deadline, the arrival after dispatch, a property lead's
//! verification.

use serde::Deserialize;

/// `[dispatch]`: the clocks after 签收 and 出警.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DispatchSettings {
    /// Dispatched but not on scene within this many minutes: the officers
    /// and the desk are alerted again, the board shows it red.
    pub arrive_minutes: u64,
    /// A property lead is checked within this many days (the Supreme
    /// People's Court's property-investigation rules) ...
    pub verify_days: u32,
    /// ... or this many when marked urgent.
    pub verify_urgent_days: u32,
}

impl Default for DispatchSettings {
    fn default() -> Self {
        DispatchSettings {
            arrive_minutes: 30,
            verify_days: 7,
            verify_urgent_days: 3,
        }
    }
}
