//! The default policies, second by second.

use super::*;

/// (second, step, targets) of each firing.
type Fired = Vec<(u64, usize, Vec<Target>)>;

/// Runs a policy from the opening to `until` seconds, acknowledging and
/// dispatching at the given seconds; returns (second, step, targets) fired.
fn run(
    policy: &Policy,
    until: u64,
    ack_at: Option<u64>,
    dispatch_at: Option<u64>,
) -> (Fired, Vec<usize>, bool) {
    let mut progress = Progress::default();
    let mut fired = Vec::new();
    let mut skipped = Vec::new();
    let mut breach = false;
    let mut t = Some(Duration::ZERO);
    while let Some(at) = t {
        if at.as_secs() > until {
            break;
        }
        let s = at.as_secs();
        let acked = ack_at.is_some_and(|a| s >= a);
        let dispatched = dispatch_at.is_some_and(|d| s >= d);
        let d = evaluate(policy, &mut progress, at, acked, dispatched);
        for f in d.fire {
            breach |= f.breach;
            fired.push((s, f.step, f.targets));
        }
        skipped.extend(d.skipped);
        // The scheduler also wakes when the ticket changes; model the
        // acknowledgement and dispatch moments as wake-ups too.
        let wake = [ack_at, dispatch_at]
            .into_iter()
            .flatten()
            .map(Duration::from_secs)
            .filter(|w| *w > at)
            .min();
        t = match (d.next, wake) {
            (Some(n), Some(w)) => Some(n.min(w)),
            (n, w) => n.or(w),
        };
    }
    (fired, skipped, breach)
}

fn seconds(f: &[(u64, usize, Vec<Target>)]) -> Vec<(u64, usize)> {
    f.iter().map(|(s, i, _)| (*s, *i)).collect()
}

#[test]
fn lead_nobody_answers() {
    let (f, skipped, breach) = run(&Policy::lead(), 300, None, None);
    assert_eq!(
        seconds(&f),
        [
            (0, 0),
            (60, 0),
            (120, 0),
            (120, 1),
            (180, 0),
            (240, 0),
            (300, 0),
            (300, 2)
        ]
    );
    assert_eq!(f[0].2, [Target::OnDuty]);
    assert_eq!(f[3].2, [Target::CaseHandler, Target::Director]);
    assert_eq!(f[7].2, [Target::Director, Target::ChiefCommander]);
    assert!(breach, "the five-minute limit was missed");
    assert!(skipped.is_empty());
}

#[test]
fn acknowledging_stops_repeats_but_not_the_dispatch_clock() {
    let (f, _, breach) = run(&Policy::lead(), 600, Some(90), None);
    assert_eq!(seconds(&f), [(0, 0), (60, 0), (120, 1), (300, 2)]);
    assert!(breach, "acknowledged is not dispatched");
}

#[test]
fn dispatch_in_time_means_no_breach() {
    let (f, skipped, breach) = run(&Policy::lead(), 600, Some(30), Some(200));
    assert_eq!(seconds(&f), [(0, 0), (120, 1)]);
    assert!(!breach);
    assert_eq!(skipped, [2]);
    // Dispatched before two minutes: the case handler and director are not
    // called out either.
    let (f, skipped, _) = run(&Policy::lead(), 600, Some(30), Some(100));
    assert_eq!(seconds(&f), [(0, 0)]);
    assert_eq!(skipped, [1, 2]);
}

#[test]
fn violence_pages_everyone_at_once() {
    let (f, _, breach) = run(&Policy::violence(), 59, None, None);
    assert_eq!(seconds(&f), [(0, 0)]);
    assert_eq!(
        f[0].2,
        [
            Target::OnDuty,
            Target::CaseHandler,
            Target::Director,
            Target::Deputies,
            Target::ChiefCommander
        ]
    );
    assert!(!breach);
}

#[test]
fn complaint_goes_to_the_desk_once_and_preservation_adds_the_handler() {
    let (f, _, _) = run(&Policy::complaint(), 3600, None, None);
    assert_eq!(f, [(0, 0, vec![Target::Desk])]);
    assert!(Policy::complaint().defer_to_working_hours);
    let (f, _, _) = run(&Policy::preservation(), 0, None, None);
    assert!(f[0].2.contains(&Target::CaseHandler));
}

#[test]
fn policies_come_from_config() {
    let p: Policies = toml::from_str(
        "[lead]\nsteps = [{ after_seconds = 0, targets = [\"duty_unit\", { member = \"m-chen\" }] }]\n",
    )
    .unwrap();
    assert_eq!(p.lead.steps[0].targets[1], Target::Member("m-chen".into()));
    // Categories not given keep their defaults.
    assert_eq!(p.violence, Policy::violence());
}

#[test]
fn pass_to_the_next_person_fires_the_next_step_now() {
    let p = Policy::lead();
    let mut progress = Progress::default();
    let d = evaluate(&p, &mut progress, Duration::ZERO, false, false);
    assert_eq!(d.fire.len(), 1);
    // At 10 s the officer presses 2: step 1 (case handler, director) at once.
    progress.pass = true;
    let d = evaluate(&p, &mut progress, Duration::from_secs(10), false, false);
    assert_eq!(d.fire.iter().map(|f| f.step).collect::<Vec<_>>(), [1]);
    assert!(!progress.pass);
    // The step-0 repeats go on as before; step 1 does not fire again at 120 s.
    let d = evaluate(&p, &mut progress, Duration::from_secs(120), false, false);
    assert_eq!(
        d.fire
            .iter()
            .map(|f| (f.step, f.repeat))
            .collect::<Vec<_>>(),
        [(0, 1)]
    );
}

// ----- step 0 reaches a person at every hour (issue 14) -----------------------

fn sample() -> (crate::roster::Roster, crate::roster::Calendar) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    (
        crate::roster::Roster::load(&root.join("config/roster.toml")).unwrap(),
        crate::roster::Calendar::load(&root.join("config/holidays")).unwrap(),
    )
}

fn at(y: i16, m: i8, d: i8, h: i8) -> jiff::Timestamp {
    jiff::civil::date(y, m, d)
        .at(h, 0, 0, 0)
        .to_zoned_datetime(crate::court_time::court_tz())
        .unwrap()
        .timestamp()
}

/// Who the first step of `policy` pages at `t`, by a channel that pages.
fn paged_at(policy: &Policy, t: jiff::Timestamp) -> Vec<String> {
    let (roster, cal) = sample();
    let duty = roster.resolve(&cal, 0, t, None);
    let first = &policy.steps[0];
    assert_eq!(first.after_seconds, 0);
    super::members_for(&duty, &first.targets, &roster)
        .into_iter()
        .filter(|m| m.pageable(crate::roster::Reach::default()))
        .map(|m| m.id)
        .collect()
}

#[test]
fn a_lead_pages_a_person_at_second_0_at_any_hour() {
    for p in [Policy::lead(), Policy::violence(), Policy::preservation()] {
        // A working day, 16:00: the desk (it used to be nobody until +120 s).
        let day = paged_at(&p, at(2026, 3, 10, 16));
        assert!(day.contains(&"m-desk-1".to_string()), "{day:?}");
        // An adjusted working Saturday (调休), 10:00: the desk as well.
        let saturday = paged_at(&p, at(2026, 2, 28, 10));
        assert!(saturday.contains(&"m-desk-2".to_string()), "{saturday:?}");
        // 03:00 on a public holiday: the duty unit's officer.
        let night = paged_at(&p, at(2026, 10, 2, 3));
        assert!(night.iter().any(|m| m.ends_with("-officer")), "{night:?}");
    }
}

#[test]
fn reach_is_proved_for_every_hour_or_the_hours_are_named() {
    let (roster, cal) = sample();
    let today = jiff::civil::date(2026, 3, 2);
    let fine = crate::escalation::unreached_hours(
        &roster,
        &cal,
        &Policies::default(),
        0,
        today,
        14,
        Default::default(),
    );
    assert!(fine.is_empty(), "{fine:?}");
    // Without the desk's SIP URIs nobody is paged by day.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let text = std::fs::read_to_string(root.join("config/roster.toml"))
        .unwrap()
        .replace("sip = \"sip:8100@pbx.court.example\"\n", "")
        .replace("sip = \"sip:8101@pbx.court.example\"\n", "");
    let no_desk = crate::roster::Roster::parse(&text, "r.toml").unwrap();
    let failing = crate::escalation::unreached_hours(
        &no_desk,
        &cal,
        &Policies::default(),
        0,
        today,
        1,
        Default::default(),
    );
    assert!(
        failing.contains(
            &"lead: at 2026-03-02 09:00 its first step pages nobody who can be reached".to_string()
        ),
        "{failing:?}"
    );
    assert!(
        !failing
            .iter()
            .any(|f| f.starts_with("lead: at 2026-03-02 20:00")),
        "the night is covered: {failing:?}"
    );
}

#[test]
fn a_joined_lead_pages_the_officers_on_the_case_until_acknowledged_and_never_breaches() {
    let officers = ["u1-officer".to_string(), "u1-clerk".to_string()];
    let p = Policy::joined(&Policy::lead(), &officers, "2026-000001");
    let (fired, skipped, breach) = run(&p, 600, Some(150), None);
    let members = vec![
        Target::Member("u1-officer".into()),
        Target::Member("u1-clerk".into()),
    ];
    // At once, then every minute (the lead's repeat) until the 签收 at 150 s.
    assert_eq!(
        fired,
        vec![
            (0, 0, members.clone()),
            (60, 0, members.clone()),
            (120, 0, members)
        ]
    );
    assert!(skipped.is_empty() && !breach);
    assert!(p.steps[0]
        .note
        .as_deref()
        .is_some_and(|n| n.contains("2026-000001")));
}
