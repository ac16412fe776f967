//! The paging call's script (sans-IO, like the intake): the officer hears
//! the ticket's number and what it is about, and is asked for a key:
//! 1 = 签收, 2 = pass it on. Only a key counts: an answering machine or a
//! hang-up acknowledges nothing. With no key the announcement is played
//! again, `plays` times in all.
//!
//! ```text
//!  intro, number, category, "press 1 or 2" ─> wait ─> (again) ─> no key
//!   key 1: acknowledged · key 2: passed on (at any time, barge-in)
//! ```

use std::time::Duration;

use tokio::time::Instant;

use super::script::{self, Deadline, Input, Script};
use super::Prompt;
use crate::tickets::model::Category;

/// How a paging call ended, as the attempt on the ticket says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Key 1: 签收.
    Acknowledged,
    /// Key 2: pass to the next person.
    Passed,
    /// Answered, but no key after the last announcement.
    NoKey,
    /// Answered, then hung up without a key.
    HungUp,
}

pub type Action = script::Action<Answer>;

pub struct PageScript {
    prompts: Vec<Prompt>,
    plays: u32,
    played: u32,
    key_timeout: Duration,
    playing: Option<u32>,
    deadline: Deadline,
    answer: Option<Answer>,
    /// A whisper: key 1 hands the call over (for the bridge) instead of
    /// ending it.
    hand_over: bool,
    out: Vec<Action>,
}

impl PageScript {
    /// The announcement for `ticket` (its digits read out) about
    /// `category` (a name the court does not know is left out).
    pub fn new(ticket: &str, category: &str, plays: u32, key_timeout: Duration) -> PageScript {
        let mut prompts = vec![Prompt::PageIntro];
        prompts.extend(script::digits(ticket));
        prompts.extend(Category::parse(category).map(Prompt::Category));
        prompts.push(Prompt::PageAsk);
        PageScript {
            prompts,
            plays: plays.max(1),
            played: 0,
            key_timeout,
            playing: None,
            deadline: Deadline::default(),
            answer: None,
            hand_over: false,
            out: Vec::new(),
        }
    }

    /// The whisper before a bridge or a callback: `prompt` (「举报电话转接，
    /// 按1接听」), key 1 takes the call (handed over, live), key 2 declines.
    pub fn whisper(prompt: Prompt, plays: u32, key_timeout: Duration) -> PageScript {
        PageScript {
            prompts: vec![prompt],
            hand_over: true,
            ..PageScript::new("", "", plays, key_timeout)
        }
    }

    fn play(&mut self) {
        self.played += 1;
        self.playing = Some(self.played);
        self.deadline.clear();
        self.out.push(Action::Play {
            id: self.played,
            prompts: self.prompts.clone(),
        });
    }

    /// The call's outcome: once known, the script asks to hang up.
    fn answer(&mut self, answer: Answer, hang_up: bool) {
        if self.answer.is_some() {
            return;
        }
        self.answer = Some(answer);
        self.deadline.clear();
        self.out.push(Action::Update(answer));
        if hang_up {
            self.out.push(Action::HangUp);
        }
    }
}

impl Script for PageScript {
    type Update = Answer;
    const COMPLETE: &'static str = "page_complete";

    fn start(&mut self, _now: Instant) -> Vec<Action> {
        self.play();
        std::mem::take(&mut self.out)
    }

    fn on(&mut self, input: Input, now: Instant) -> Vec<Action> {
        match input {
            Input::PlayDone(id) if self.playing == Some(id) && self.answer.is_none() => {
                self.playing = None;
                self.deadline.set(now, self.key_timeout);
            }
            Input::PlayDone(_) => {}
            Input::Key(k @ ('1' | '2')) if self.answer.is_none() => {
                if self.playing.take().is_some() {
                    self.out.push(Action::Stop);
                }
                let answer = if k == '1' {
                    Answer::Acknowledged
                } else {
                    Answer::Passed
                };
                if answer == Answer::Acknowledged && self.hand_over {
                    self.answer(answer, false);
                    self.out.push(Action::Handover);
                } else {
                    self.answer(answer, true);
                }
            }
            // Any other key: the question stands (after an answer: too late).
            Input::Key(_) => {}
            Input::HangUp => self.answer(Answer::HungUp, false),
        }
        std::mem::take(&mut self.out)
    }

    fn on_timeout(&mut self, now: Instant) -> Vec<Action> {
        if self.deadline.expired(now) {
            if self.played < self.plays {
                // Once more, in case the first went by unheard.
                self.play();
            } else {
                self.answer(Answer::NoKey, true);
            }
        }
        std::mem::take(&mut self.out)
    }

    fn deadline(&self) -> Option<Instant> {
        self.deadline.get()
    }

    fn hold(&mut self, now: Instant) {
        self.deadline.hold(now);
    }

    fn resume(&mut self, now: Instant) {
        self.deadline.resume(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: Duration = Duration::from_secs(10);

    fn announcement() -> Vec<Prompt> {
        vec![
            Prompt::PageIntro,
            Prompt::Digit(2),
            Prompt::Digit(0),
            Prompt::Digit(2),
            Prompt::Digit(6),
            Prompt::Digit(0),
            Prompt::Digit(7),
            Prompt::Category(Category::Violence),
            Prompt::PageAsk,
        ]
    }

    #[test]
    fn reads_the_ticket_and_key_1_acknowledges() {
        let now = Instant::now();
        let mut s = PageScript::new("2026-07", "violence", 2, KEY);
        assert_eq!(
            s.start(now),
            [Action::Play {
                id: 1,
                prompts: announcement()
            }]
        );
        assert_eq!(s.on(Input::PlayDone(1), now), []);
        assert_eq!(s.deadline(), Some(now + KEY));
        assert_eq!(
            s.on(Input::Key('1'), now),
            [Action::Update(Answer::Acknowledged), Action::HangUp]
        );
        // The hang-up that follows changes nothing.
        assert_eq!(s.on(Input::HangUp, now), []);
        assert_eq!(s.deadline(), None);
    }

    #[test]
    fn key_2_during_the_announcement_stops_it_and_passes() {
        let now = Instant::now();
        let mut s = PageScript::new("2026-000007", "lead", 1, KEY);
        s.start(now);
        assert_eq!(s.on(Input::Key('7'), now), []);
        assert_eq!(
            s.on(Input::Key('2'), now),
            [Action::Stop, Action::Update(Answer::Passed), Action::HangUp]
        );
    }

    #[test]
    fn no_key_plays_again_then_gives_up() {
        let now = Instant::now();
        let mut s = PageScript::new("1", "unknown-category", 2, KEY);
        let first = s.start(now);
        assert_eq!(
            first,
            [Action::Play {
                id: 1,
                prompts: vec![Prompt::PageIntro, Prompt::Digit(1), Prompt::PageAsk]
            }]
        );
        s.on(Input::PlayDone(1), now);
        // Not yet due.
        assert_eq!(s.on_timeout(now + KEY - Duration::from_millis(1)), []);
        let t = now + KEY;
        assert!(matches!(s.on_timeout(t)[..], [Action::Play { id: 2, .. }]));
        s.on(Input::PlayDone(2), t);
        assert_eq!(
            s.on_timeout(t + KEY),
            [Action::Update(Answer::NoKey), Action::HangUp]
        );
    }

    #[test]
    fn a_hang_up_without_a_key_acknowledges_nothing() {
        let now = Instant::now();
        let mut s = PageScript::new("1", "lead", 1, KEY);
        s.start(now);
        assert_eq!(s.on(Input::HangUp, now), [Action::Update(Answer::HungUp)]);
        // A key after that (a late RTP event) is not an acknowledgement.
        assert_eq!(s.on(Input::Key('1'), now), []);
    }

    #[test]
    fn a_whisper_hands_the_call_over_on_key_1() {
        let now = Instant::now();
        let mut s = PageScript::whisper(Prompt::Whisper, 2, KEY);
        assert_eq!(
            s.start(now),
            [Action::Play {
                id: 1,
                prompts: vec![Prompt::Whisper]
            }]
        );
        assert_eq!(
            s.on(Input::Key('1'), now),
            [
                Action::Stop,
                Action::Update(Answer::Acknowledged),
                Action::Handover
            ]
        );
        // Declined: hung up.
        let mut s = PageScript::whisper(Prompt::Whisper, 2, KEY);
        s.start(now);
        s.on(Input::PlayDone(1), now);
        assert_eq!(
            s.on(Input::Key('2'), now),
            [Action::Update(Answer::Passed), Action::HangUp]
        );
    }

    #[test]
    fn on_hold_the_key_timeout_stands_still() {
        let now = Instant::now();
        let mut s = PageScript::new("1", "lead", 1, KEY);
        s.start(now);
        s.on(Input::PlayDone(1), now);
        let later = now + Duration::from_secs(4);
        s.hold(later);
        assert_eq!(s.deadline(), None);
        let resumed = later + Duration::from_secs(60);
        s.resume(resumed);
        assert_eq!(s.deadline(), Some(resumed + Duration::from_secs(6)));
    }
}
