//! Every path of the intake, with a hand-moved clock.

use super::*;

struct H {
    i: Intake,
    now: Instant,
    log: Vec<Action>,
}

impl H {
    fn new(steps: Vec<StepKind>, ticket: Option<&str>) -> H {
        H::offering(steps, ticket, Offers::default())
    }

    fn offering(steps: Vec<StepKind>, ticket: Option<&str>, offers: Offers) -> H {
        let cfg = IntakeSettings {
            steps,
            ..Default::default()
        };
        let now = Instant::now();
        let mut i = Intake::new(cfg, ticket.map(str::to_string), offers);
        let log = i.start(now);
        H { i, now, log }
    }

    fn default() -> H {
        H::new(IntakeSettings::default().steps, Some("2026-000042"))
    }

    /// The id of the last Play.
    fn playing(&self) -> u32 {
        self.log
            .iter()
            .rev()
            .find_map(|a| match a {
                Action::Play { id, .. } => Some(*id),
                _ => None,
            })
            .expect("something played")
    }

    fn last_prompts(&self) -> Vec<Prompt> {
        self.log
            .iter()
            .rev()
            .find_map(|a| match a {
                Action::Play { prompts, .. } => Some(prompts.clone()),
                _ => None,
            })
            .unwrap()
    }

    fn done(&mut self) -> Vec<Action> {
        let id = self.playing();
        let a = self.i.on(Input::PlayDone(id), self.now);
        self.log.extend(a.clone());
        a
    }

    fn key(&mut self, k: char) -> Vec<Action> {
        let a = self.i.on(Input::Key(k), self.now);
        self.log.extend(a.clone());
        a
    }

    fn keys(&mut self, ks: &str) {
        for k in ks.chars() {
            self.key(k);
        }
    }

    /// Lets the deadline pass.
    fn timeout(&mut self) -> Vec<Action> {
        let d = self.i.deadline().expect("waiting for something");
        self.now = d;
        let a = self.i.on_timeout(d);
        self.log.extend(a.clone());
        a
    }

    fn updates(&self) -> Vec<Update> {
        self.log
            .iter()
            .filter_map(|a| match a {
                Action::Update(u) => Some(u.clone()),
                _ => None,
            })
            .collect()
    }
}

fn lead() -> Update {
    Update::Category {
        category: Category::Lead,
        urgent: false,
        person: false,
    }
}

#[test]
fn the_whole_default_script() {
    let mut h = H::default();
    assert_eq!(h.last_prompts(), [Prompt::Greeting]);
    h.done();
    assert_eq!(h.last_prompts(), [Prompt::Menu]);
    h.done();
    h.key('1');
    assert_eq!(h.last_prompts(), [Prompt::CaseNumber]);
    h.done();
    h.keys("0203#");
    assert_eq!(
        h.last_prompts(),
        [
            Prompt::CaseReadback,
            Prompt::Digit(0),
            Prompt::Digit(2),
            Prompt::Digit(0),
            Prompt::Digit(3),
            Prompt::Confirm
        ]
    );
    h.done();
    h.key('1');
    assert_eq!(h.last_prompts(), [Prompt::Message, Prompt::Beep]);
    h.done();
    h.key('#');
    let closing = h.last_prompts();
    assert_eq!(closing[0], Prompt::TicketReadback);
    assert_eq!(closing.len(), 1 + 10 + 1, "ten digits, then thanks");
    assert_eq!(closing.last(), Some(&Prompt::Thanks));
    assert_eq!(h.done(), [Action::HangUp]);
    assert!(h.i.finished());
    assert_eq!(
        h.updates(),
        [
            lead(),
            Update::CaseNumber("0203".into()),
            Update::MessageStarted,
            Update::MessageEnded
        ]
    );
}

#[test]
fn menu_timeouts_repeat_once_then_lead() {
    let mut h = H::default();
    h.done();
    h.done(); // menu played
    h.timeout();
    assert_eq!(h.last_prompts(), [Prompt::Menu], "repeated once");
    h.done();
    h.timeout();
    assert_eq!(h.updates(), [lead()]);
    assert_eq!(h.last_prompts(), [Prompt::CaseNumber]);
}

#[test]
fn invalid_key_says_so_and_asks_again() {
    let mut h = H::default();
    h.done();
    h.done();
    h.key('9');
    assert_eq!(h.last_prompts(), [Prompt::Invalid, Prompt::Menu]);
    assert!(h.updates().is_empty());
    h.key('5');
    assert_eq!(
        h.updates(),
        [Update::Category {
            category: Category::Complaint,
            urgent: false,
            person: false,
        }]
    );
}

#[test]
fn barge_in_stops_the_prompt_and_counts() {
    let mut h = H::default();
    // '2' during the greeting: stop, urgent at once, straight to the message.
    let a = h.key('2');
    assert_eq!(a[0], Action::Stop);
    assert_eq!(
        a[1],
        Action::Update(Update::Category {
            category: Category::Violence,
            urgent: true,
            person: false,
        })
    );
    assert_eq!(h.last_prompts(), [Prompt::Message, Prompt::Beep]);
    // The greeting's "done" arriving late changes nothing.
    let stale = h.i.on(Input::PlayDone(1), h.now);
    assert!(stale.is_empty());
    // A key during the instructions starts the message at once.
    let a = h.key('5');
    assert_eq!(a, [Action::Stop, Action::Update(Update::MessageStarted)]);
}

#[test]
fn case_number_paths() {
    // Skip with '*'.
    let mut h = H::default();
    h.done();
    h.key('1');
    h.key('*');
    assert_eq!(h.last_prompts(), [Prompt::Message, Prompt::Beep]);

    // Re-enter with 2, then confirm.
    let mut h = H::default();
    h.done();
    h.key('4');
    h.keys("12#");
    h.key('2');
    assert_eq!(h.last_prompts(), [Prompt::CaseNumber]);
    h.keys("34#");
    h.key('1');
    assert_eq!(h.updates()[1], Update::CaseNumber("34".into()));

    // Digits then silence: read back what was given; no answer: it stands.
    let mut h = H::default();
    h.done();
    h.key('1');
    h.keys("77");
    h.timeout();
    assert_eq!(h.last_prompts()[0], Prompt::CaseReadback);
    h.done();
    h.timeout();
    assert_eq!(h.updates()[1], Update::CaseNumber("77".into()));

    // Nothing at all, twice: skipped.
    let mut h = H::default();
    h.done();
    h.key('1');
    h.done();
    h.timeout();
    assert_eq!(h.last_prompts(), [Prompt::CaseNumber]);
    h.done();
    h.timeout();
    assert_eq!(h.last_prompts(), [Prompt::Message, Prompt::Beep]);
    assert_eq!(h.updates(), [lead()]);

    // A wrong key at the confirmation.
    let mut h = H::default();
    h.done();
    h.key('1');
    h.keys("5#");
    h.key('8');
    assert_eq!(h.last_prompts(), [Prompt::Invalid, Prompt::Confirm]);
}

#[test]
fn message_ends_by_hash_by_length_or_by_hang_up() {
    let mut h = H::new(vec![StepKind::Message], None);
    h.done();
    h.done();
    assert_eq!(h.updates(), [Update::MessageStarted]);
    let t0 = h.now;
    h.timeout();
    assert_eq!(h.now - t0, Duration::from_secs(120));
    assert_eq!(h.updates(), [Update::MessageStarted, Update::MessageEnded]);
    // No ticket number known: only thanks.
    assert_eq!(h.last_prompts(), [Prompt::Thanks]);

    let mut h = H::new(vec![StepKind::Message], None);
    h.done();
    h.done();
    let a = h.i.on(Input::HangUp, h.now);
    assert_eq!(a, [Action::Update(Update::MessageEnded)]);
    assert!(h.i.finished());
}

#[test]
fn hang_up_at_each_step_ends_quietly() {
    for presses in ["", "1", "1#", "15#", "15#1"] {
        let mut h = H::default();
        h.done();
        h.keys(presses);
        let a = h.i.on(Input::HangUp, h.now);
        assert!(a.is_empty(), "{presses}: {a:?}");
        assert!(h.i.finished());
        assert_eq!(h.i.deadline(), None);
        assert!(h.i.on_timeout(h.now + Duration::from_secs(600)).is_empty());
    }
}

#[test]
fn order_comes_from_config() {
    let mut h = H::new(vec![StepKind::CaseNumber, StepKind::Category], None);
    h.done();
    assert_eq!(h.last_prompts(), [Prompt::CaseNumber]);
    h.key('*');
    assert_eq!(h.last_prompts(), [Prompt::Menu]);
    // Violence with no message step: straight to the closing.
    h.key('2');
    assert_eq!(h.last_prompts(), [Prompt::Thanks]);
}

#[test]
fn a_caller_on_hold_is_not_timed_out() {
    let mut h = H::default();
    h.done();
    h.done(); // the menu played: its timeout runs
    let d = h.i.deadline().unwrap();
    let left = d - h.now;
    // Put on hold halfway: the timeout stands still, however long.
    h.now += left / 2;
    h.i.hold(h.now);
    assert_eq!(h.i.deadline(), None);
    h.now += Duration::from_secs(600);
    assert!(h.i.on_timeout(h.now).is_empty(), "nothing happens on hold");
    // Resumed: the other half is left.
    h.i.resume(h.now);
    assert_eq!(h.i.deadline(), Some(h.now + (left - left / 2)));
    h.timeout();
    assert_eq!(h.last_prompts(), [Prompt::Menu], "then the menu repeats");
}

fn with_person() -> H {
    H::offering(
        IntakeSettings::default().steps,
        Some("2026-000042"),
        Offers {
            person: true,
            ..Offers::default()
        },
    )
}

#[test]
fn key_0_hands_the_call_over_from_any_step_but_a_case_number() {
    // After the greeting the caller is told of key 0.
    let mut h = with_person();
    assert_eq!(h.last_prompts(), [Prompt::Greeting, Prompt::PersonHint]);
    // During the greeting: stops it, hands over.
    assert_eq!(h.key('0'), [Action::Stop, Action::Handover]);
    assert_eq!(h.i.deadline(), None);
    // Keys while a person is rung are not the intake's.
    assert_eq!(h.key('1'), []);
    // Nobody: the message, then the closing as usual.
    h.i.no_person();
    let a = h.i.start(h.now);
    h.log.extend(a);
    assert_eq!(h.last_prompts(), [Prompt::NoPerson, Prompt::Beep]);
    h.done();
    assert_eq!(h.updates(), [Update::MessageStarted]);
    h.key('#');
    assert_eq!(h.last_prompts()[0], Prompt::TicketReadback);

    // In the case number 0 is a digit.
    let mut h = with_person();
    h.done();
    h.key('1');
    h.done();
    h.keys("0#");
    assert_eq!(
        h.last_prompts(),
        [Prompt::CaseReadback, Prompt::Digit(0), Prompt::Confirm]
    );
    // At the confirmation it is a person again; during the message too,
    // which then ends.
    assert_eq!(h.key('0'), [Action::Stop, Action::Handover]);
    let mut h = with_person();
    h.done();
    h.key('5');
    h.done();
    h.key('*');
    h.done();
    h.done();
    assert_eq!(
        h.key('0'),
        [Action::Update(Update::MessageEnded), Action::Handover]
    );
}

#[test]
fn without_a_bridge_key_0_is_no_category_and_7_is_other() {
    let mut h = H::default();
    assert_eq!(h.last_prompts(), [Prompt::Greeting]);
    h.done();
    h.key('0');
    assert_eq!(h.last_prompts(), [Prompt::Invalid, Prompt::Menu]);
    h.key('8');
    assert_eq!(h.last_prompts(), [Prompt::Invalid, Prompt::Menu]);
    h.key('7');
    assert_eq!(
        h.updates(),
        [Update::Category {
            category: Category::Other,
            urgent: false,
            person: false,
        }]
    );
}

#[test]
fn violence_is_offered_a_person_at_once() {
    let mut h = with_person();
    h.done();
    assert_eq!(
        h.key('2'),
        [
            Action::Stop,
            Action::Update(Update::Category {
                category: Category::Violence,
                urgent: true,
                person: true,
            }),
            Action::Handover
        ]
    );
}

#[test]
fn key_9_at_the_end_declines_the_follow_up_and_other_keys_change_nothing() {
    let offers = Offers {
        follow_up_opt_out: true,
        ..Offers::default()
    };
    let mut h = H::offering(vec![], Some("7"), offers);
    h.done();
    assert_eq!(
        h.last_prompts(),
        [
            Prompt::TicketReadback,
            Prompt::Digit(7),
            Prompt::FollowUpOptOut,
            Prompt::Thanks
        ]
    );
    // A stray key does not cut the closing short (nor leave it unfinished).
    assert_eq!(h.key('4'), []);
    assert_eq!(
        h.key('9'),
        [
            Action::Stop,
            Action::Update(Update::NoFollowUp),
            Action::Play {
                id: 3,
                prompts: vec![Prompt::Thanks]
            }
        ]
    );
    assert_eq!(h.key('9'), []);
    assert_eq!(h.done(), [Action::HangUp]);
}

/// Nobody took it: the caller is back in the message.
fn nobody(h: &mut H) {
    h.i.no_person();
    let a = h.i.start(h.now);
    h.log.extend(a);
    assert_eq!(h.last_prompts(), [Prompt::NoPerson, Prompt::Beep]);
    h.done();
}

#[test]
fn after_nobody_key_0_rings_once_more_then_the_message_goes_on() {
    let mut h = with_person();
    assert_eq!(h.key('0'), [Action::Stop, Action::Handover]);
    nobody(&mut h);
    // Once more: the message ends and a person is rung again.
    assert_eq!(
        h.key('0'),
        [Action::Update(Update::MessageEnded), Action::Handover]
    );
    nobody(&mut h);
    // No third ring: key 0 is no key in the message, which goes on.
    assert_eq!(h.key('0'), []);
    assert_eq!(h.key('0'), []);
    assert!(h.i.deadline().is_some(), "the message's own time runs");
    h.key('#');
    assert_eq!(h.last_prompts()[0], Prompt::TicketReadback);
    assert_eq!(
        h.log.iter().filter(|a| **a == Action::Handover).count(),
        2,
        "rung twice in all"
    );
    // Key 0 on the intro of the message (before the beep ended) starts
    // the message instead of a ring.
    let mut h = with_person();
    h.key('0');
    nobody(&mut h);
    h.key('0');
    h.i.no_person();
    let a = h.i.start(h.now);
    h.log.extend(a);
    assert_eq!(
        h.key('0'),
        [Action::Stop, Action::Update(Update::MessageStarted)]
    );
}

#[test]
fn a_violence_report_counts_as_the_first_ring() {
    let mut h = with_person();
    assert!(!h.i.violence());
    h.done();
    assert_eq!(h.key('2').last(), Some(&Action::Handover));
    assert!(h.i.violence(), "its bridge may take a reserved slot");
    nobody(&mut h);
    assert_eq!(h.key('0').last(), Some(&Action::Handover));
    nobody(&mut h);
    assert_eq!(h.key('0'), []);
    assert_eq!(
        h.updates()
            .iter()
            .filter(|u| **u == Update::MessageEnded)
            .count(),
        1,
        "the message ended only for the second ring"
    );
}

#[test]
fn the_sample_menu_and_a_menu_of_the_courts_own() {
    // The keys as the interface names them.
    let cfg = IntakeSettings::default();
    let want = [
        ('1', Category::Lead),
        ('2', Category::Violence),
        ('3', Category::Partner),
        ('4', Category::Consultation),
        ('5', Category::Complaint),
        ('6', Category::Preservation),
        ('7', Category::Other),
    ];
    for (k, c) in want {
        assert_eq!(cfg.category_of(k), Some(c), "key {k}");
    }
    for k in ['0', '8', '9', '*', '#', 'A'] {
        assert_eq!(cfg.category_of(k), None, "key {k}");
    }
    assert_eq!(cfg.menu_problem(), None);
    // A court's own order: key 1 consultation, key 2 lead.
    let own = IntakeSettings {
        menu: vec![Category::Consultation, Category::Lead],
        ..IntakeSettings::default()
    };
    assert_eq!(own.category_of('1'), Some(Category::Consultation));
    assert_eq!(own.category_of('3'), None);
    let twice = IntakeSettings {
        menu: vec![Category::Lead, Category::Lead],
        ..IntakeSettings::default()
    };
    assert_eq!(twice.menu_problem().unwrap(), "\"lead\" is on two keys");
    let empty = IntakeSettings {
        menu: vec![],
        ..IntakeSettings::default()
    };
    assert!(empty.menu_problem().unwrap().contains("keys 1 to 9"));
}

#[test]
fn police_holding_a_debtor_are_offered_a_person_at_once() {
    let mut h = with_person();
    h.done();
    assert_eq!(
        h.key('3'),
        [
            Action::Stop,
            Action::Update(Update::Category {
                category: Category::Partner,
                urgent: true,
                person: true,
            }),
            Action::Handover
        ]
    );
    // Not a violence report: no reserved bridge slot.
    assert!(!h.i.violence());
}

#[test]
fn a_partner_skips_greeting_and_menu_and_hears_the_promise_if_nobody_takes_it() {
    let offers = Offers {
        person: true,
        partner: true,
        ..Offers::default()
    };
    let mut h = H::offering(IntakeSettings::default().steps, Some("2026-000007"), offers);
    assert_eq!(
        h.log,
        [
            Action::Update(Update::Category {
                category: Category::Partner,
                urgent: true,
                person: true,
            }),
            Action::Handover
        ]
    );
    h.i.no_person();
    let a = h.i.start(h.now);
    h.log.extend(a);
    assert_eq!(h.last_prompts(), [Prompt::PartnerPromise, Prompt::Beep]);
    h.done();
    assert_eq!(h.updates().last(), Some(&Update::MessageStarted));
    h.key('#');
    assert_eq!(h.last_prompts()[0], Prompt::TicketReadback);
    // Without a bridge: the promise and the message at once.
    let offers = Offers {
        partner: true,
        ..Offers::default()
    };
    let h = H::offering(IntakeSettings::default().steps, None, offers);
    assert_eq!(h.last_prompts(), [Prompt::PartnerPromise, Prompt::Beep]);
    // Nobody is rung for it: the ticket need not wait for a bridge.
    assert_eq!(
        h.updates(),
        [Update::Category {
            category: Category::Partner,
            urgent: true,
            person: false,
        }]
    );
    // Without a message step: the promise, then the closing.
    let h = H::offering(vec![StepKind::Category], Some("5"), offers);
    assert_eq!(
        h.last_prompts(),
        [
            Prompt::PartnerPromise,
            Prompt::TicketReadback,
            Prompt::Digit(5),
            Prompt::Thanks
        ]
    );
}

#[test]
fn a_consultation_always_asks_the_case_number_and_promises_the_answer() {
    // With the case number step after the menu.
    let mut h = H::new(IntakeSettings::default().steps, Some("9"));
    h.done();
    h.key('4');
    assert_eq!(h.last_prompts(), [Prompt::CaseNumber]);
    h.done();
    h.keys("12#");
    h.done();
    h.key('1');
    assert_eq!(h.last_prompts(), [Prompt::Message, Prompt::Beep]);
    h.done();
    h.key('#');
    assert_eq!(
        h.last_prompts(),
        [
            Prompt::ConsultationPromise,
            Prompt::TicketReadback,
            Prompt::Digit(9),
            Prompt::Thanks
        ]
    );
    assert_eq!(
        h.updates(),
        [
            Update::Category {
                category: Category::Consultation,
                urgent: false,
                person: false,
            },
            Update::CaseNumber("12".into()),
            Update::MessageStarted,
            Update::MessageEnded
        ]
    );
    // Steps without the case number: asked in the menu's place, then the
    // message as configured.
    let mut h = H::new(vec![StepKind::Category, StepKind::Message], None);
    h.done();
    h.key('4');
    assert_eq!(h.last_prompts(), [Prompt::CaseNumber]);
    h.done();
    h.keys("7#");
    h.done();
    h.key('1');
    assert_eq!(h.last_prompts(), [Prompt::Message, Prompt::Beep]);
}

#[test]
fn key_3_after_two_asks_for_a_person_rings_nobody_and_says_so() {
    // The message before the menu: a person asked for twice already.
    let offers = Offers {
        person: true,
        ..Offers::default()
    };
    let mut h = H::offering(vec![StepKind::Message, StepKind::Category], None, offers);
    h.done();
    for _ in 0..PERSON_ASKS {
        h.done();
        assert_eq!(h.key('0').last(), Some(&Action::Handover));
        h.i.no_person();
        let a = h.i.start(h.now);
        h.log.extend(a);
    }
    h.done();
    h.key('#');
    assert_eq!(h.last_prompts(), [Prompt::Menu]);
    h.done();
    let a = h.key('3');
    assert!(!a.contains(&Action::Handover), "{a:?}");
    assert_eq!(
        h.updates().last(),
        Some(&Update::Category {
            category: Category::Partner,
            urgent: true,
            person: false,
        })
    );
}
