//! What a call says and asks, as its driver (`call::leg`) sees it: a
//! sans-IO script takes keys, "the prompt finished", its own deadline and
//! the hang-up, and answers with what to play, what it learnt and when to
//! hang up. The caller's intake and the officer's paging call are two
//! scripts run by the same driver.

use std::time::Instant;

/// A keypad key (`0`-`9`, `*`, `#`, `A`-`D`), as the media reports it.
pub type Digit = char;

use super::Prompt;

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action<U> {
    /// Play these prompts one after the other; `PlayDone(id)` follows
    /// unless stopped first.
    Play {
        id: u32,
        prompts: Vec<Prompt>,
    },
    /// Stop what is playing (a key barged in).
    Stop,
    /// Something the script learnt (for the ticket, for the page).
    Update(U),
    HangUp,
    /// The script is done with the call, which goes on: its driver hands
    /// it back to its owner (the caller asked for a person, the officer
    /// took the bridge).
    Handover,
}

/// What happens to a script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Key(Digit),
    PlayDone(u32),
    /// The other side hung up.
    HangUp,
}

/// A call's script, driven by `call::leg::Leg::drive`.
pub trait Script {
    type Update;
    /// Why the call ended when the script hung up (the call's end line
    /// and the ticket say so).
    const COMPLETE: &'static str;
    fn start(&mut self, now: Instant) -> Vec<Action<Self::Update>>;
    fn on(&mut self, input: Input, now: Instant) -> Vec<Action<Self::Update>>;
    /// Called once `deadline` has passed.
    fn on_timeout(&mut self, _now: Instant) -> Vec<Action<Self::Update>> {
        Vec::new()
    }
    /// The script's running timeout, if it keeps one: the driver's hold
    /// and resume go to it.
    fn timer(&self) -> Option<&Deadline> {
        None
    }
    fn timer_mut(&mut self) -> Option<&mut Deadline> {
        None
    }
    /// When `on_timeout` must be called.
    fn deadline(&self) -> Option<Instant> {
        self.timer().and_then(Deadline::get)
    }
    /// The call is on hold: a running timeout stands still (a caller on
    /// hold is not "no answer").
    fn hold(&mut self, now: Instant) {
        if let Some(d) = self.timer_mut() {
            d.hold(now);
        }
    }
    /// Resumed: the timeout goes on with what was left.
    fn resume(&mut self, now: Instant) {
        if let Some(d) = self.timer_mut() {
            d.resume(now);
        }
    }
}

/// A running timeout that stands still while the call is on hold; both
/// scripts keep theirs in one.
#[derive(Debug, Default)]
pub struct Deadline {
    at: Option<Instant>,
    /// On hold: what was left of the deadline.
    held: Option<Option<std::time::Duration>>,
}

impl Deadline {
    pub fn get(&self) -> Option<Instant> {
        self.at
    }

    /// Due `after` from now (on hold: from the resume).
    pub fn set(&mut self, now: Instant, after: std::time::Duration) {
        match self.held.as_mut() {
            Some(left) => *left = Some(after),
            None => self.at = Some(now + after),
        }
    }

    pub fn clear(&mut self) {
        self.at = None;
        if let Some(left) = self.held.as_mut() {
            *left = None;
        }
    }

    /// Whether it has passed (and is then cleared).
    pub fn expired(&mut self, now: Instant) -> bool {
        if self.at.is_some_and(|d| now >= d) {
            self.at = None;
            true
        } else {
            false
        }
    }

    pub fn hold(&mut self, now: Instant) {
        if self.held.is_none() {
            self.held = Some(self.at.take().map(|d| d.saturating_duration_since(now)));
        }
    }

    pub fn resume(&mut self, now: Instant) {
        if let Some(left) = self.held.take() {
            self.at = left.map(|l| now + l);
        }
    }
}

/// The prompts that read a number out, digit by digit (other characters
/// are not spoken).
pub fn digits(number: &str) -> impl Iterator<Item = Prompt> + '_ {
    number
        .chars()
        .filter_map(|c| c.to_digit(10))
        .map(|d| Prompt::Digit(d as u8))
}
