//! The intake (rule 第十条(三)): after the greeting the caller is asked, by
//! voice prompts and the keypad, what the report is about, the case number,
//! and where the person is — as a sans-IO state machine. Inputs: keys, "the
//! prompt finished", the deadline passing, hang-up; outputs: what to play,
//! what to put on the ticket, when the caller's message starts and ends,
//! hang up. The steps' order, timeouts and prompt files come from config.
//!
//! ```text
//!  greeting ─> [category] ─> [case number] ─> [message] ─> closing ─> hang up
//!                 │ violence, partner (the police holding someone): a
//!                 │   person at once, else straight to the message
//!                 │ consultation: the case number always, then the
//!                 │   question; the closing promises the handler's answer
//!  a partner's asserted number (`Offers::partner`): no greeting, no menu:
//!    a person at once; nobody: the promise, then the message
//!   a key during any prompt stops it and counts (barge-in)
//!   with a person to talk to (`[bridge]`): key 0 at any point but in the
//!   case number's digits hands the call back for a person (violence at
//!   once); nobody took it: the message. A person is asked for at most
//!   twice a call (`PERSON_ASKS`): after the second "nobody" key 0 rings
//!   no one again and the caller goes on with the message
//! ```
//!
//! It is one of the call scripts ([`script`]) the call driver runs; the
//! officer's question (a page, a whisper, the follow-up's survey) is
//! [`question`], ringback and the bridged call's [`ringback`]. The prompts
//! of all are named here.

use std::time::Duration;

use serde::Deserialize;
use std::time::Instant;

use super::script::Digit;
use super::script::{self, digits, Deadline};
use super::script::{Input, Script};
use super::Prompt;
use crate::tickets::model::Category;

/// How often one call may ask for a person (key 0, or a violence report
/// at once): after "nobody reached" key 0 once more, then no more rings.
/// Ten anonymous calls pressing 0 again and again would otherwise hold
/// every bridge slot.
pub const PERSON_ASKS: u8 = 2;

/// A step the court can place in `intake.steps`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    Category,
    CaseNumber,
    Message,
}

/// `[intake]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IntakeSettings {
    /// The order of the questions after the greeting.
    pub steps: Vec<StepKind>,
    /// The menu: key 1 chooses the first category, key 2 the second, ...
    /// (at most nine; key 0 is a person). The menu prompt must say the same.
    pub menu: Vec<Category>,
    /// Seconds to wait for a key after a menu or question.
    pub key_timeout_seconds: u64,
    /// Seconds between two digits of the case number.
    pub digit_timeout_seconds: u64,
    /// Longest message the caller may leave.
    pub max_message_seconds: u64,
    /// Longest case number, in digits.
    pub max_case_digits: usize,
}

impl Default for IntakeSettings {
    fn default() -> Self {
        IntakeSettings {
            steps: vec![StepKind::Category, StepKind::CaseNumber, StepKind::Message],
            menu: Category::ALL.to_vec(),
            key_timeout_seconds: 6,
            digit_timeout_seconds: 8,
            max_message_seconds: 120,
            max_case_digits: 30,
        }
    }
}

impl IntakeSettings {
    /// What is wrong with the menu, if anything.
    pub fn menu_problem(&self) -> Option<String> {
        if self.menu.is_empty() || self.menu.len() > 9 {
            return Some(format!(
                "{} categories: the menu takes keys 1 to 9",
                self.menu.len()
            ));
        }
        let mut seen = std::collections::HashSet::new();
        self.menu
            .iter()
            .find(|c| !seen.insert(**c))
            .map(|c| format!("{:?} is on two keys", c.as_str()))
    }

    /// The category key `key` chooses.
    pub fn category_of(&self, key: Digit) -> Option<Category> {
        let i = key.to_digit(10)?.checked_sub(1)? as usize;
        self.menu.get(i).copied()
    }
}

/// What the ticket learns, as it happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update {
    Category {
        category: Category,
        urgent: bool,
    },
    CaseNumber(String),
    /// The caller's message started, this long into the call's recording.
    MessageStarted,
    MessageEnded,
    /// Key 9 at the end: no follow-up call (回访) for this report.
    NoFollowUp,
}

/// What the intake offers besides its steps.
#[derive(Debug, Clone, Copy, Default)]
pub struct Offers {
    /// Key 0: a person (the live bridge).
    pub person: bool,
    /// Key 9 at the end: no follow-up call.
    pub follow_up_opt_out: bool,
    /// A partner (`[partners]`, an asserted number) calls: no greeting and
    /// no menu, a person at once.
    pub partner: bool,
}

/// What the intake asks of its driver.
pub type Action = script::Action<Update>;

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Greeting,
    Category {
        repeats: u8,
    },
    CaseDigits {
        digits: String,
        repeats: u8,
    },
    CaseConfirm {
        digits: String,
    },
    MessageIntro,
    Message,
    /// Handed back for a person to be rung.
    Person,
    Closing,
    Done,
}

/// One call's intake.
pub struct Intake {
    cfg: IntakeSettings,
    state: State,
    /// Index in `cfg.steps` of the current step.
    step: usize,
    /// The prompt list being played and whether it has finished.
    playing: Option<u32>,
    next_id: u32,
    deadline: Deadline,
    ticket: Option<String>,
    offers: Offers,
    /// How often a person was asked for (see [`PERSON_ASKS`]).
    asked: u8,
    /// The caller chose violence (a bridge takes a reserved slot).
    violence: bool,
    /// The caller asked about a case: the closing promises the answer.
    consultation: bool,
    started: bool,
    out: Vec<Action>,
}

impl Intake {
    /// `ticket`: the number to read back at the end, when known.
    pub fn new(cfg: IntakeSettings, ticket: Option<String>, offers: Offers) -> Intake {
        Intake {
            cfg,
            state: State::Greeting,
            step: 0,
            playing: None,
            next_id: 0,
            deadline: Deadline::default(),
            ticket,
            offers,
            asked: 0,
            violence: false,
            consultation: false,
            started: false,
            out: Vec::new(),
        }
    }

    /// Whether the caller reported violence (its bridge may take the slots
    /// kept for violence reports).
    pub fn violence(&self) -> bool {
        self.violence
    }

    /// Whether key 0 (or a violence report) may still ring a person.
    fn person_offered(&self) -> bool {
        self.offers.person && self.asked < PERSON_ASKS
    }

    /// Nobody took the call the caller asked a person for: the caller is
    /// told and leaves a message (or, with no message step, the closing).
    /// The next drive goes on from here.
    pub fn no_person(&mut self) {
        // A partner hears that the duty is told and will come.
        let first = if self.offers.partner {
            Prompt::PartnerPromise
        } else {
            Prompt::NoPerson
        };
        match self.cfg.steps.iter().position(|s| *s == StepKind::Message) {
            Some(i) => {
                self.step = i;
                self.state = State::MessageIntro;
                self.play(vec![first, Prompt::Beep]);
            }
            None if self.offers.partner => {
                self.step = self.cfg.steps.len();
                self.state = State::Closing;
                let mut prompts = vec![first];
                prompts.extend(self.closing_prompts());
                self.play(prompts);
            }
            None => self.closing(),
        }
    }

    /// Key 0 (or a violence report): the call goes to its owner, who rings
    /// a person.
    fn want_person(&mut self) {
        if self.state == State::Message {
            self.out.push(Action::Update(Update::MessageEnded));
        }
        self.state = State::Person;
        self.asked += 1;
        self.deadline.clear();
        self.out.push(Action::Handover);
    }

    pub fn finished(&self) -> bool {
        self.state == State::Done
    }

    fn play(&mut self, prompts: Vec<Prompt>) {
        self.next_id += 1;
        self.playing = Some(self.next_id);
        self.deadline.clear();
        self.out.push(Action::Play {
            id: self.next_id,
            prompts,
        });
    }

    fn wait(&mut self, now: Instant, secs: u64) {
        self.deadline.set(now, Duration::from_secs(secs));
    }

    fn take(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.out)
    }

    /// Moves to the step at `index` (or the closing when none is left) and
    /// asks its question.
    fn enter(&mut self, index: usize) {
        let prompts = self.set_step(index);
        if self.state != State::Closing {
            self.play(prompts);
        }
    }

    /// Moves to the step at `index` without asking; returns its question.
    fn set_step(&mut self, index: usize) -> Vec<Prompt> {
        self.step = index;
        match self.cfg.steps.get(index) {
            Some(StepKind::Category) => {
                self.state = State::Category { repeats: 0 };
                vec![Prompt::Menu]
            }
            Some(StepKind::CaseNumber) => {
                self.state = State::CaseDigits {
                    digits: String::new(),
                    repeats: 0,
                };
                vec![Prompt::CaseNumber]
            }
            Some(StepKind::Message) => {
                self.state = State::MessageIntro;
                vec![Prompt::Message, Prompt::Beep]
            }
            None => {
                self.closing();
                Vec::new()
            }
        }
    }

    fn next_step(&mut self) {
        let i = self.step + 1;
        self.enter(i);
    }

    fn closing(&mut self) {
        self.state = State::Closing;
        let prompts = self.closing_prompts();
        self.play(prompts);
    }

    /// The ticket's number, the consultation's promise, key 9, thanks.
    fn closing_prompts(&self) -> Vec<Prompt> {
        let mut prompts = Vec::new();
        if self.consultation {
            prompts.push(Prompt::ConsultationPromise);
        }
        if let Some(t) = &self.ticket {
            prompts.push(Prompt::TicketReadback);
            prompts.extend(digits(t));
        }
        if self.offers.follow_up_opt_out {
            prompts.push(Prompt::FollowUpOptOut);
        }
        prompts.push(Prompt::Thanks);
        prompts
    }

    fn on_play_done(&mut self, now: Instant) {
        match self.state.clone() {
            State::Greeting => self.enter(0),
            State::Category { .. } | State::CaseConfirm { .. } => {
                self.wait(now, self.cfg.key_timeout_seconds)
            }
            State::CaseDigits { .. } => self.wait(now, self.cfg.digit_timeout_seconds),
            State::MessageIntro => {
                self.state = State::Message;
                self.out.push(Action::Update(Update::MessageStarted));
                self.wait(now, self.cfg.max_message_seconds);
            }
            State::Message | State::Person => {}
            State::Closing => {
                self.state = State::Done;
                self.out.push(Action::HangUp);
            }
            State::Done => {}
        }
    }

    fn choose(&mut self, category: Category) {
        let urgent = matches!(category, Category::Violence | Category::Partner);
        self.violence = category == Category::Violence;
        self.out
            .push(Action::Update(Update::Category { category, urgent }));
        if category == Category::Consultation {
            // The handler needs the case number, whatever the steps say.
            self.consultation = true;
            match self
                .cfg
                .steps
                .iter()
                .position(|s| *s == StepKind::CaseNumber)
            {
                Some(i) => self.enter(i),
                None => {
                    // Asked in the menu's place: the steps go on after it.
                    self.state = State::CaseDigits {
                        digits: String::new(),
                        repeats: 0,
                    };
                    self.play(vec![Prompt::CaseNumber]);
                }
            }
        } else if urgent && self.person_offered() {
            // A person at once, the message if nobody takes it.
            self.want_person();
        } else if urgent {
            // Every second counts: straight to the message.
            match self.cfg.steps.iter().position(|s| *s == StepKind::Message) {
                Some(i) => self.enter(i),
                None => self.closing(),
            }
        } else {
            self.next_step();
        }
    }

    fn read_back(&mut self, digits: String) {
        let mut prompts = vec![Prompt::CaseReadback];
        prompts.extend(script::digits(&digits));
        prompts.push(Prompt::Confirm);
        self.state = State::CaseConfirm { digits };
        self.play(prompts);
    }

    fn on_key(&mut self, key: Digit, now: Instant) {
        // The closing is said to its end (but for the follow-up's opt-out).
        let opt_out = key == '9' && self.offers.follow_up_opt_out;
        match self.state {
            State::Closing if opt_out => {}
            State::Person | State::Closing | State::Done => return,
            _ => {}
        }
        let barge = self.playing.take().is_some();
        if barge {
            self.out.push(Action::Stop);
        }
        // Key 0: a person, at any point but in a case number (where it is a
        // digit) and after the intake; asked for too often, an ordinary key
        // (in the message: nothing).
        let person_key = key == '0'
            && self.person_offered()
            && !matches!(
                self.state,
                State::CaseDigits { .. } | State::Person | State::Closing | State::Done
            );
        if person_key {
            self.want_person();
            return;
        }
        match self.state.clone() {
            // A key during the greeting answers the first question.
            State::Greeting => {
                self.set_step(0);
                if self.state != State::Closing {
                    self.on_key(key, now);
                }
            }
            State::Category { .. } => match self.cfg.category_of(key) {
                Some(c) => self.choose(c),
                None => self.play(vec![Prompt::Invalid, Prompt::Menu]),
            },
            State::CaseDigits { mut digits, .. } => match key {
                '*' => self.next_step(),
                '#' if digits.is_empty() => self.next_step(),
                '#' => self.read_back(digits),
                d if d.is_ascii_digit() => {
                    digits.push(d);
                    if digits.len() >= self.cfg.max_case_digits {
                        self.read_back(digits);
                    } else {
                        self.state = State::CaseDigits { digits, repeats: 0 };
                        self.wait(now, self.cfg.digit_timeout_seconds);
                    }
                }
                _ => {
                    // A or B on a special phone: ignored, keep listening.
                    self.wait(now, self.cfg.digit_timeout_seconds);
                }
            },
            State::CaseConfirm { digits } => match key {
                '1' => {
                    self.out.push(Action::Update(Update::CaseNumber(digits)));
                    self.next_step();
                }
                '2' => {
                    self.state = State::CaseDigits {
                        digits: String::new(),
                        repeats: 0,
                    };
                    self.play(vec![Prompt::CaseNumber]);
                }
                _ => self.play(vec![Prompt::Invalid, Prompt::Confirm]),
            },
            // A key during the instructions: the caller is ready to speak.
            State::MessageIntro => {
                self.state = State::Message;
                self.out.push(Action::Update(Update::MessageStarted));
                self.wait(now, self.cfg.max_message_seconds);
            }
            State::Message => {
                if key == '#' {
                    self.out.push(Action::Update(Update::MessageEnded));
                    self.next_step();
                }
            }
            // Key 9 at the end: no follow-up call; the thanks, and goodbye.
            State::Closing => {
                self.out.push(Action::Update(Update::NoFollowUp));
                self.offers.follow_up_opt_out = false;
                self.play(vec![Prompt::Thanks]);
            }
            State::Person | State::Done => {}
        }
    }
}

impl Script for Intake {
    type Update = Update;
    const COMPLETE: &'static str = "intake_complete";

    fn start(&mut self, _now: Instant) -> Vec<Action> {
        // Driven again after a hand-over: from where it was left.
        if std::mem::replace(&mut self.started, true) {
            return self.take();
        }
        if self.offers.partner {
            // A partner: a person at once, without greeting or menu.
            self.out.push(Action::Update(Update::Category {
                category: Category::Partner,
                urgent: true,
            }));
            if self.person_offered() {
                self.want_person();
            } else {
                self.no_person();
            }
        } else {
            let mut greeting = vec![Prompt::Greeting];
            if self.offers.person {
                greeting.push(Prompt::PersonHint);
            }
            self.play(greeting);
        }
        self.take()
    }

    fn on(&mut self, input: Input, now: Instant) -> Vec<Action> {
        match input {
            Input::PlayDone(id) if self.playing == Some(id) => {
                self.playing = None;
                self.on_play_done(now);
            }
            Input::PlayDone(_) => {} // a list that was stopped
            Input::Key(k) => self.on_key(k, now),
            Input::HangUp => {
                if self.state == State::Message {
                    self.out.push(Action::Update(Update::MessageEnded));
                }
                self.state = State::Done;
                self.deadline.clear();
            }
        }
        self.take()
    }

    fn on_timeout(&mut self, now: Instant) -> Vec<Action> {
        if !self.deadline.expired(now) {
            return Vec::new();
        }
        match self.state.clone() {
            State::Category { repeats: 0 } => {
                self.state = State::Category { repeats: 1 };
                self.play(vec![Prompt::Menu]);
            }
            // No key twice: taken as a lead (the most common report).
            State::Category { .. } => self.choose(Category::Lead),
            State::CaseDigits { digits, .. } if !digits.is_empty() => self.read_back(digits),
            State::CaseDigits { repeats: 0, .. } => {
                self.state = State::CaseDigits {
                    digits: String::new(),
                    repeats: 1,
                };
                self.play(vec![Prompt::CaseNumber]);
            }
            State::CaseDigits { .. } => self.next_step(),
            // No answer to "confirm?": the number stands as entered.
            State::CaseConfirm { digits } => {
                self.out.push(Action::Update(Update::CaseNumber(digits)));
                self.next_step();
            }
            State::Message => {
                self.out.push(Action::Update(Update::MessageEnded));
                self.next_step();
            }
            _ => {}
        }
        self.take()
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
mod tests;
