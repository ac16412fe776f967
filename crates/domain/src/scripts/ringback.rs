//! The scripts of a live bridge (sans-IO, like the intake): what the caller
//! hears while a person is rung, and the bridged call itself, which says
//! nothing and reports each key (for the ticket's timeline).
//!
//! ```text
//!  caller: "connecting, please wait", ringback, ringback ... ─> ring time over: handed back
//!  bridged: keys out, nothing played, never hangs up by itself
//! ```

use std::time::Duration;

use std::time::Instant;

use super::script::Digit;
use super::script::{self, Deadline, Input, Script};
use super::Prompt;

/// While a person is rung: `intro` once, then the ringback again and again;
/// after `ring` the call is handed back (nobody took it). A hold stops the
/// clock.
pub struct Ringback {
    intro: Option<Prompt>,
    ring: Duration,
    plays: u32,
    deadline: Deadline,
}

impl Ringback {
    pub fn new(intro: Option<Prompt>, ring: Duration) -> Ringback {
        Ringback {
            intro,
            ring,
            plays: 0,
            deadline: Deadline::default(),
        }
    }

    fn play(&mut self, prompts: Vec<Prompt>) -> Vec<script::Action<()>> {
        self.plays += 1;
        vec![script::Action::Play {
            id: self.plays,
            prompts,
        }]
    }
}

impl Script for Ringback {
    type Update = ();
    const COMPLETE: &'static str = "nobody_took_it";

    fn start(&mut self, now: Instant) -> Vec<script::Action<()>> {
        self.deadline.set(now, self.ring);
        let mut prompts: Vec<Prompt> = self.intro.into_iter().collect();
        prompts.push(Prompt::Ringback);
        self.play(prompts)
    }

    fn on(&mut self, input: Input, _now: Instant) -> Vec<script::Action<()>> {
        match input {
            Input::PlayDone(id) if id == self.plays && self.deadline.get().is_some() => {
                self.play(vec![Prompt::Ringback])
            }
            _ => Vec::new(),
        }
    }

    fn on_timeout(&mut self, now: Instant) -> Vec<script::Action<()>> {
        if self.deadline.expired(now) {
            vec![script::Action::Stop, script::Action::Handover]
        } else {
            Vec::new()
        }
    }

    fn timer(&self) -> Option<&Deadline> {
        Some(&self.deadline)
    }

    fn timer_mut(&mut self) -> Option<&mut Deadline> {
        Some(&mut self.deadline)
    }
}

/// Says `prompt`, then hands the call over (the informant called back
/// hears who calls before the officer).
pub struct Announce {
    prompt: Prompt,
    done: bool,
}

impl Announce {
    pub fn new(prompt: Prompt) -> Announce {
        Announce {
            prompt,
            done: false,
        }
    }
}

impl Script for Announce {
    type Update = ();
    const COMPLETE: &'static str = "announced";

    fn start(&mut self, _now: Instant) -> Vec<script::Action<()>> {
        vec![script::Action::Play {
            id: 1,
            prompts: vec![self.prompt],
        }]
    }

    fn on(&mut self, input: Input, _now: Instant) -> Vec<script::Action<()>> {
        match input {
            Input::PlayDone(1) if !std::mem::replace(&mut self.done, true) => {
                vec![script::Action::Handover]
            }
            _ => Vec::new(),
        }
    }
}

/// A bridged call: what its side keys goes out; nothing else.
pub struct Bridged;

impl Script for Bridged {
    type Update = Digit;
    const COMPLETE: &'static str = "bridge_ended";

    fn start(&mut self, _now: Instant) -> Vec<script::Action<Digit>> {
        Vec::new()
    }

    fn on(&mut self, input: Input, _now: Instant) -> Vec<script::Action<Digit>> {
        match input {
            Input::Key(k) => vec![script::Action::Update(k)],
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
// A test's origin of time: the scripts themselves read no clock.
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;
    use script::Action;

    #[test]
    fn ringback_plays_until_the_ring_time_then_hands_back() {
        let now = Instant::now();
        let ring = Duration::from_secs(30);
        let mut r = Ringback::new(Some(Prompt::Connecting), ring);
        assert_eq!(
            r.start(now),
            [Action::Play {
                id: 1,
                prompts: vec![Prompt::Connecting, Prompt::Ringback]
            }]
        );
        assert_eq!(r.deadline(), Some(now + ring));
        assert_eq!(
            r.on(Input::PlayDone(1), now + Duration::from_secs(7)),
            [Action::Play {
                id: 2,
                prompts: vec![Prompt::Ringback]
            }]
        );
        // Keys change nothing.
        assert_eq!(r.on(Input::Key('0'), now), []);
        assert_eq!(r.on_timeout(now + ring - Duration::from_millis(1)), []);
        assert_eq!(r.on_timeout(now + ring), [Action::Stop, Action::Handover]);
        // Nothing plays again after that.
        assert_eq!(r.on(Input::PlayDone(2), now + ring), []);
    }

    #[test]
    fn on_hold_the_ring_time_stands_still() {
        let now = Instant::now();
        let mut r = Ringback::new(Some(Prompt::Connecting), Duration::from_secs(30));
        r.start(now);
        r.hold(now + Duration::from_secs(10));
        assert_eq!(r.deadline(), None);
        let back = now + Duration::from_secs(100);
        r.resume(back);
        assert_eq!(r.deadline(), Some(back + Duration::from_secs(20)));
    }

    #[test]
    fn an_announcement_hands_over_once_said() {
        let now = Instant::now();
        let mut a = Announce::new(Prompt::CallbackIntro);
        assert_eq!(
            a.start(now),
            [Action::Play {
                id: 1,
                prompts: vec![Prompt::CallbackIntro]
            }]
        );
        assert_eq!(a.on(Input::Key('1'), now), []);
        assert_eq!(a.on(Input::PlayDone(1), now), [Action::Handover]);
    }

    #[test]
    fn a_bridged_call_reports_keys_and_nothing_else() {
        let now = Instant::now();
        let mut b = Bridged;
        assert_eq!(b.start(now), []);
        assert_eq!(b.on(Input::Key('5'), now), [Action::Update('5')]);
        assert_eq!(b.on(Input::HangUp, now), []);
        assert_eq!(b.deadline(), None);
    }
}
