//! The question a call we place asks (sans-IO, like the intake), one
//! script for three calls: the paging call (the officer hears the ticket's
//! number and what it is about: 1 = 签收, 2 = pass it on), the whisper
//! before a bridge or a callback (1 takes the call, which is handed over
//! live), and the follow-up call (回访: satisfaction 1-5, then thanks).
//! Only a key counts: an answering machine or a hang-up answers nothing.
//! With no key the question is asked again, `plays` times in all.
//!
//! ```text
//!  question ─> wait ─> (again) ─> no key
//!   a key it takes (barge-in): its answer; then hang up, the closing, or
//!   (the whisper's key 1) the hand-over
//! ```

use std::time::Duration;

use std::time::Instant;

use super::script::Digit;
use super::script::{self, Deadline, Input, Script};
use super::Prompt;
use crate::tickets::model::Category;

/// How the question was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// One of the keys it asks for (a paging call: 1 = 签收, 2 = pass on).
    Key(Digit),
    /// Answered, but no key after the last time it was asked.
    NoKey,
    /// Answered, then hung up without a key.
    HungUp,
}

pub type Action = script::Action<Answer>;

pub struct QuestionScript {
    prompts: Vec<Prompt>,
    /// The keys that answer.
    keys: &'static [Digit],
    /// This key hands the call over (live) instead of ending it.
    hand_over: Option<Digit>,
    /// Said after an answer, before the hang-up.
    closing: Vec<Prompt>,
    plays: u32,
    played: u32,
    key_timeout: Duration,
    playing: Option<u32>,
    deadline: Deadline,
    answer: Option<Answer>,
    out: Vec<Action>,
}

impl QuestionScript {
    /// The announcement for `ticket` (its digits read out) about
    /// `category` (a name the court does not know is left out), and the
    /// `partner`'s name spoken when a partner called: 1 = 签收, 2 = pass
    /// it on.
    pub fn new(
        ticket: &str,
        category: &str,
        partner: Option<Prompt>,
        plays: u32,
        key_timeout: Duration,
    ) -> QuestionScript {
        let mut prompts = vec![Prompt::PageIntro];
        prompts.extend(script::digits(ticket));
        prompts.extend(Category::parse(category).map(Prompt::Category));
        prompts.extend(partner);
        prompts.push(Prompt::PageAsk);
        QuestionScript::asking(prompts, &['1', '2'], plays, key_timeout)
    }

    /// The whisper before a bridge or a callback: `prompts` (「举报电话转接，
    /// 按1接听」; a partner's whisper and its name), key 1 takes the call
    /// (handed over, live), key 2 declines.
    pub fn whisper(prompts: Vec<Prompt>, plays: u32, key_timeout: Duration) -> QuestionScript {
        QuestionScript {
            hand_over: Some('1'),
            ..QuestionScript::asking(prompts, &['1', '2'], plays, key_timeout)
        }
    }

    /// The follow-up call's question: satisfaction 1 (very unhappy) to 5
    /// (very satisfied), then thanks.
    pub fn survey(plays: u32, key_timeout: Duration) -> QuestionScript {
        QuestionScript {
            closing: vec![Prompt::Thanks],
            ..QuestionScript::asking(
                vec![Prompt::FollowUp],
                &['1', '2', '3', '4', '5'],
                plays,
                key_timeout,
            )
        }
    }

    fn asking(
        prompts: Vec<Prompt>,
        keys: &'static [Digit],
        plays: u32,
        key_timeout: Duration,
    ) -> QuestionScript {
        QuestionScript {
            prompts,
            keys,
            hand_over: None,
            closing: Vec::new(),
            plays: plays.max(1),
            played: 0,
            key_timeout,
            playing: None,
            deadline: Deadline::default(),
            answer: None,
            out: Vec::new(),
        }
    }

    fn play(&mut self, prompts: Vec<Prompt>) {
        self.played += 1;
        self.playing = Some(self.played);
        self.deadline.clear();
        self.out.push(Action::Play {
            id: self.played,
            prompts,
        });
    }

    /// The call's outcome: once known, the script asks to hang up (after
    /// the closing, if there is one).
    fn answer(&mut self, answer: Answer, hang_up: bool) {
        if self.answer.is_some() {
            return;
        }
        self.answer = Some(answer);
        self.deadline.clear();
        self.out.push(Action::Update(answer));
        if !hang_up {
            return;
        }
        match (answer, self.hand_over) {
            (Answer::Key(k), Some(h)) if k == h => self.out.push(Action::Handover),
            (Answer::Key(_), _) if !self.closing.is_empty() => {
                let closing = std::mem::take(&mut self.closing);
                self.play(closing);
            }
            _ => self.out.push(Action::HangUp),
        }
    }
}

impl Script for QuestionScript {
    type Update = Answer;
    const COMPLETE: &'static str = "page_complete";

    fn start(&mut self, _now: Instant) -> Vec<Action> {
        self.play(self.prompts.clone());
        std::mem::take(&mut self.out)
    }

    fn on(&mut self, input: Input, now: Instant) -> Vec<Action> {
        match input {
            // The closing said: goodbye.
            Input::PlayDone(id) if self.playing == Some(id) && self.answer.is_some() => {
                self.playing = None;
                self.out.push(Action::HangUp);
            }
            Input::PlayDone(id) if self.playing == Some(id) => {
                self.playing = None;
                self.deadline.set(now, self.key_timeout);
            }
            Input::PlayDone(_) => {}
            Input::Key(k) if self.answer.is_none() && self.keys.contains(&k) => {
                if self.playing.take().is_some() {
                    self.out.push(Action::Stop);
                }
                self.answer(Answer::Key(k), true);
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
                self.play(self.prompts.clone());
            } else {
                self.answer(Answer::NoKey, true);
            }
        }
        std::mem::take(&mut self.out)
    }

    fn timer(&self) -> Option<&Deadline> {
        Some(&self.deadline)
    }

    fn timer_mut(&mut self) -> Option<&mut Deadline> {
        Some(&mut self.deadline)
    }
}

#[cfg(test)]
// A test's origin of time: the scripts themselves read no clock.
#[allow(clippy::disallowed_methods)]
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
        let mut s = QuestionScript::new("2026-07", "violence", None, 2, KEY);
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
            [Action::Update(Answer::Key('1')), Action::HangUp]
        );
        // The hang-up that follows changes nothing.
        assert_eq!(s.on(Input::HangUp, now), []);
        assert_eq!(s.deadline(), None);
    }

    #[test]
    fn key_2_during_the_announcement_stops_it_and_passes() {
        let now = Instant::now();
        let mut s = QuestionScript::new("2026-000007", "lead", None, 1, KEY);
        s.start(now);
        assert_eq!(s.on(Input::Key('7'), now), []);
        assert_eq!(
            s.on(Input::Key('2'), now),
            [
                Action::Stop,
                Action::Update(Answer::Key('2')),
                Action::HangUp
            ]
        );
    }

    #[test]
    fn no_key_plays_again_then_gives_up() {
        let now = Instant::now();
        let mut s = QuestionScript::new("1", "unknown-category", None, 2, KEY);
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
        let mut s = QuestionScript::new("1", "lead", None, 1, KEY);
        s.start(now);
        assert_eq!(s.on(Input::HangUp, now), [Action::Update(Answer::HungUp)]);
        // A key after that (a late RTP event) is not an acknowledgement.
        assert_eq!(s.on(Input::Key('1'), now), []);
    }

    #[test]
    fn a_whisper_hands_the_call_over_on_key_1() {
        let now = Instant::now();
        let mut s = QuestionScript::whisper(vec![Prompt::Whisper], 2, KEY);
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
                Action::Update(Answer::Key('1')),
                Action::Handover
            ]
        );
        // Declined: hung up.
        let mut s = QuestionScript::whisper(vec![Prompt::Whisper], 2, KEY);
        s.start(now);
        s.on(Input::PlayDone(1), now);
        assert_eq!(
            s.on(Input::Key('2'), now),
            [Action::Update(Answer::Key('2')), Action::HangUp]
        );
    }

    #[test]
    fn a_partners_call_is_named_to_the_officer_in_the_whisper_and_the_page() {
        let now = Instant::now();
        let name = Prompt::PartnerName(2);
        let mut s = QuestionScript::whisper(vec![Prompt::PartnerWhisper, name], 2, KEY);
        let whisper = vec![Prompt::PartnerWhisper, name];
        assert_eq!(
            s.start(now),
            [Action::Play {
                id: 1,
                prompts: whisper.clone()
            }]
        );
        // Asked again as a whole, the name with it.
        s.on(Input::PlayDone(1), now);
        assert_eq!(
            s.on_timeout(now + KEY),
            [Action::Play {
                id: 2,
                prompts: whisper
            }]
        );
        // The paging call: the partner's name after the category's.
        let mut s = QuestionScript::new("7", "partner", Some(name), 1, KEY);
        assert_eq!(
            s.start(now),
            [Action::Play {
                id: 1,
                prompts: vec![
                    Prompt::PageIntro,
                    Prompt::Digit(7),
                    Prompt::Category(Category::Partner),
                    name,
                    Prompt::PageAsk
                ]
            }]
        );
    }

    #[test]
    fn the_survey_takes_1_to_5_then_thanks() {
        let now = Instant::now();
        let mut s = QuestionScript::survey(2, KEY);
        assert_eq!(
            s.start(now),
            [Action::Play {
                id: 1,
                prompts: vec![Prompt::FollowUp]
            }]
        );
        assert_eq!(s.on(Input::Key('9'), now), []);
        assert_eq!(
            s.on(Input::Key('4'), now),
            [
                Action::Stop,
                Action::Update(Answer::Key('4')),
                Action::Play {
                    id: 2,
                    prompts: vec![Prompt::Thanks]
                }
            ]
        );
        assert_eq!(s.on(Input::Key('5'), now), []);
        assert_eq!(s.on(Input::PlayDone(2), now), [Action::HangUp]);
        // No key: asked twice, then nothing.
        let mut s = QuestionScript::survey(2, KEY);
        s.start(now);
        s.on(Input::PlayDone(1), now);
        s.on_timeout(now + KEY);
        s.on(Input::PlayDone(2), now + KEY);
        assert_eq!(
            s.on_timeout(now + KEY + KEY),
            [Action::Update(Answer::NoKey), Action::HangUp]
        );
    }

    #[test]
    fn on_hold_the_key_timeout_stands_still() {
        let now = Instant::now();
        let mut s = QuestionScript::new("1", "lead", None, 1, KEY);
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
