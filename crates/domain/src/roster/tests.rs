//! The resolver over every day of 2026 and the turn of the year.

use std::collections::BTreeMap;
use std::path::Path;

use jiff::civil::{date, Date};
use jiff::Timestamp;

use super::*;

fn roster() -> Roster {
    Roster::load(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join("config/roster.toml"),
    )
    .unwrap()
}

fn cal() -> Calendar {
    Calendar::load(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join("config/holidays"),
    )
    .unwrap()
}

/// An instant in Qingdao.
fn at(d: Date, h: i8, m: i8) -> Timestamp {
    d.at(h, m, 0, 0)
        .to_zoned_datetime(court_tz())
        .unwrap()
        .timestamp()
}

fn days(from: Date, to: Date) -> Vec<Date> {
    let mut v = Vec::new();
    let mut d = from;
    while d <= to {
        v.push(d);
        d = d.tomorrow().unwrap();
    }
    v
}

#[test]
fn every_period_of_2026_and_the_turn_has_one_unit_and_one_officer() {
    let (r, c) = (roster(), cal());
    for d in days(date(2026, 1, 1), date(2027, 1, 10)) {
        let p = r.period_of(&c, d);
        // Any instant inside the period resolves to it, with a full crew.
        for t in [p.start, p.end - jiff::SignedDuration::from_secs(1)] {
            let duty = r.resolve(&c, 0, t, None);
            assert_eq!(duty.period.as_ref().map(|x| x.day), Some(d), "{d} at {t}");
            let unit = duty.unit.expect("a unit");
            assert_eq!(unit.members.len(), 3, "{d}");
            assert!(duty.police.is_some(), "{d}");
            assert!(duty.desk.is_empty());
        }
        // Periods tile the off-hours: this one ends where the next starts
        // or where working hours begin.
        assert!(p.end > p.start);
    }
}

#[test]
fn load_over_a_year_is_even() {
    let (r, c) = (roster(), cal());
    let mut load: BTreeMap<String, i64> = BTreeMap::new();
    let mut police: BTreeMap<String, i64> = BTreeMap::new();
    let mut moved = 0;
    for duty in r.plan(&c, 0, date(2026, 1, 1), date(2026, 12, 31)) {
        // Count each period for the unit and officer the rotation named,
        // before overrides (which the court sets by hand).
        let p = duty.period.unwrap();
        let unit = &r.rotation_units()[p.index.rem_euclid(5) as usize];
        *load.entry(unit.clone()).or_default() += 1;
        *police.entry(p.index.rem_euclid(3).to_string()).or_default() += 1;
        moved += duty.overrides.len();
    }
    for l in [&load, &police] {
        let (min, max) = (l.values().min().unwrap(), l.values().max().unwrap());
        assert!(max - min <= 1, "{l:?}");
        assert_eq!(l.values().sum::<i64>(), 365);
    }
    // The sample's overrides: unit-3 on 15-17 Feb, p-zhou on 1-3 Oct.
    assert!(moved >= 2, "{moved}");
}

#[test]
fn overrides_apply_exactly_within_their_range() {
    let (r, c) = (roster(), cal());
    let unit_on = |d: Date| {
        let p = r.period_of(&c, d);
        r.resolve(&c, 0, p.start, None).unit.unwrap().id
    };
    // Which periods would be unit-3's without the override.
    let plain = |d: Date| {
        let p = r.period_of(&c, d);
        r.rotation_units()[p.index.rem_euclid(5) as usize].clone()
    };
    for d in days(date(2026, 2, 10), date(2026, 2, 22)) {
        let inside = date(2026, 2, 15) <= d && d <= date(2026, 2, 17);
        match (plain(d).as_str(), inside) {
            ("unit-3", true) => assert_eq!(unit_on(d), "unit-5", "{d}"),
            (u, _) => assert_eq!(unit_on(d), u, "{d}"),
        }
    }
    // A member override: p-zhou is replaced by p-wu 1-3 October only.
    let police_on = |d: Date| {
        let p = r.period_of(&c, d);
        r.resolve(&c, 0, p.start, None).police.unwrap().id
    };
    let zhou_days: Vec<Date> = days(date(2026, 9, 25), date(2026, 10, 10))
        .into_iter()
        .filter(|d| r.period_of(&c, *d).index.rem_euclid(3) == 1)
        .collect();
    for d in zhou_days {
        let inside = date(2026, 10, 1) <= d && d <= date(2026, 10, 3);
        assert_eq!(police_on(d), if inside { "p-wu" } else { "p-zhou" }, "{d}");
    }
}

#[test]
fn handovers_on_adjusted_working_days_and_holiday_edges() {
    let (r, c) = (roster(), cal());
    let who = |t: Timestamp| r.resolve(&c, 0, t, None);
    // Friday 13 Feb, a working day: desk until 17:30, then the night.
    assert!(who(at(date(2026, 2, 13), 17, 29)).period.is_none());
    let night = who(at(date(2026, 2, 13), 17, 30)).period.unwrap();
    assert_eq!(
        (night.day, night.start),
        (date(2026, 2, 13), at(date(2026, 2, 13), 17, 30))
    );
    // ...which ends at 08:30 on Saturday 14 Feb, a worked Saturday.
    assert_eq!(night.end, at(date(2026, 2, 14), 8, 30));
    assert!(
        who(at(date(2026, 2, 14), 10, 0)).period.is_none(),
        "worked Saturday: desk"
    );
    // Saturday 14 Feb 17:30 until the holiday's first morning is one night.
    let eve = who(at(date(2026, 2, 14), 23, 0)).period.unwrap();
    assert_eq!(eve.end, at(date(2026, 2, 15), 8, 30));
    // Holiday days are whole periods from 08:30.
    let h = who(at(date(2026, 2, 15), 12, 0)).period.unwrap();
    assert_eq!(
        (h.start, h.end),
        (at(date(2026, 2, 15), 8, 30), at(date(2026, 2, 16), 8, 30))
    );
    assert_eq!(h.holiday.as_deref(), Some("春节"));
    // Last holiday day, 23 Feb: its period ends 08:30 on the 24th, when the desk takes over.
    let last = who(at(date(2026, 2, 24), 8, 29)).period.unwrap();
    assert_eq!(last.day, date(2026, 2, 23));
    assert!(who(at(date(2026, 2, 24), 8, 30)).period.is_none());
    // A Sunday that is worked (4 Jan): desk in the day.
    assert!(who(at(date(2026, 1, 4), 9, 0)).period.is_none());
    // Consecutive periods never share a unit.
    for d in days(date(2026, 1, 1), date(2026, 12, 31)) {
        let a = who(r.period_of(&c, d).start).unit.unwrap().id;
        let b = who(r.period_of(&c, d.tomorrow().unwrap()).start)
            .unit
            .unwrap()
            .id;
        assert_ne!(a, b, "{d}");
    }
}

#[test]
fn the_turn_of_the_year_and_an_unknown_2027() {
    let (r, c) = (roster(), cal());
    // 31 Dec 2026 is a Thursday and a working day; its night crosses into 2027.
    let p = r
        .resolve(&c, 0, at(date(2027, 1, 1), 3, 0), None)
        .period
        .unwrap();
    assert_eq!(
        (p.day, p.end),
        (date(2026, 12, 31), at(date(2027, 1, 1), 8, 30))
    );
    // 2027 has no notice yet: the answer says so (its dates are provisional).
    let d = r.resolve(&c, 0, at(date(2027, 1, 1), 12, 0), None);
    assert!(!d.calendar_known);
    assert!(
        r.resolve(&c, 0, at(date(2026, 12, 31), 20, 0), None)
            .calendar_known
    );
    // The index runs on across the year: no reset at New Year.
    let a = r.period_of(&c, date(2026, 12, 31)).index;
    let b = r.period_of(&c, date(2027, 1, 1)).index;
    assert_eq!(b, a + 1);
}

#[test]
fn advancing_the_rotation_moves_every_later_period_by_one() {
    let (r, c) = (roster(), cal());
    let t = at(date(2026, 3, 10), 22, 0);
    let now = r.resolve(&c, 0, t, None).unit.unwrap().id;
    let next_day = r.period_of(&c, date(2026, 3, 11)).start;
    let tomorrow = r.resolve(&c, 0, next_day, None).unit.unwrap().id;
    assert_eq!(r.resolve(&c, 1, t, None).unit.unwrap().id, tomorrow);
    assert_ne!(now, tomorrow);
}

#[test]
fn case_handler_by_case_number_from_the_case_directory() {
    let cases = crate::cases::CaseDirectory::parse(
        "case_number,handler\n202602031234,m-zhao\n202602035678,unit-2\n",
        "cases.csv",
    )
    .unwrap();
    let (r, c) = (roster().with_cases(cases).unwrap(), cal());
    let t = at(date(2026, 3, 10), 22, 0);
    let ids = |case| {
        r.resolve(&c, 0, t, case)
            .case_handler
            .iter()
            .map(|m| m.id.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(Some("202602031234")), ["m-zhao"]);
    // A unit handles it: all its members.
    assert_eq!(
        ids(Some("(2026)0203-5678")),
        ["u2-officer", "u2-clerk", "u2-driver"]
    );
    assert!(ids(None).is_empty());
    assert!(ids(Some("999")).is_empty());
    assert!(r.handles("u2-clerk", "202602035678"));
    assert!(!r.handles("m-zhao", "202602035678"));
    // A handler the roster does not know is refused, naming the line.
    let stray =
        crate::cases::CaseDirectory::parse("case_number,handler\n1,m-nobody\n", "cases.csv")
            .unwrap();
    assert_eq!(
        roster().with_cases(stray).unwrap_err(),
        ["cases.csv: line 2: handler: \"m-nobody\" is no member or unit of the roster"]
    );
}

#[test]
fn roster_errors_name_the_entry() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join("config/roster.toml"),
    )
    .unwrap();
    let bad = text.replace(
        "members = [\"u2-officer\", \"u2-clerk\", \"u2-driver\"]",
        "members = [\"u2-officer\", \"nobody\"]",
    );
    let err = Roster::parse(&bad, "r.toml").unwrap_err().to_string();
    assert_eq!(
        err,
        "r.toml: units unit-2: member \"nobody\" is not in [[members]]"
    );
    let bad = text.replace("with = \"unit-5\"", "with = \"p-wu\"");
    let err = Roster::parse(&bad, "r.toml").unwrap_err().to_string();
    assert!(
        err.contains("overrides unit-3 -> p-wu") && err.contains("both be units"),
        "{err}"
    );
    let bad = text.replace("[hours]", "[hours]\nlunch = \"12:00\"");
    let err = Roster::parse(&bad, "r.toml").unwrap_err().to_string();
    assert!(
        err.starts_with("r.toml: line") && err.contains("lunch"),
        "{err}"
    );
}

#[test]
fn check_finds_what_an_operator_must_fix() {
    let (r, c) = (roster(), cal());
    let (problems, warnings) = r.check(&c, 0, date(2026, 6, 1), Reach::default());
    // The sample's court police, clerks, drivers and case handlers have
    // only phone numbers: without a trunk no page reaches them.
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("member p-sun (孙法警) has only a phone number")),
        "{problems:?}"
    );
    assert!(
        !problems
            .iter()
            .any(|p| p.contains("u1-officer") || p.starts_with("unit ")),
        "every unit has an officer with a SIP URI: {problems:?}"
    );
    assert!(warnings.is_empty(), "{warnings:?}");
    // With a trunk, phone numbers page: nobody is left out.
    let (problems, _) = r.check(
        &c,
        0,
        date(2026, 6, 1),
        Reach {
            trunk: true,
            registrar: false,
        },
    );
    assert!(problems.is_empty(), "{problems:?}");
    // ... when the trunk can dial them.
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join("config/roster.toml"),
    )
    .unwrap();
    let plan = crate::dial_plan::DialPlan::standard();
    assert_eq!(r.undialable(&plan), Vec::<String>::new());
    let bad = Roster::parse(&text.replacen("phone = \"", "phone = \"#", 1), "r.toml").unwrap();
    let problems = bad.undialable(&plan);
    assert!(
        problems.len() == 1
            && problems[0].starts_with("members ")
            && problems[0].contains("not a phone number"),
        "{problems:?}"
    );
    // A number the dial plan refuses is named with the rule.
    let emergency = Roster::parse(
        &text.replacen("phone = \"+8613800000020\"", "phone = \"110\"", 1),
        "r.toml",
    )
    .unwrap();
    let problems = emergency.undialable(&plan);
    assert!(
        problems.len() == 1 && problems[0].contains("phone \"110\": the dial plan refuses it"),
        "{problems:?}"
    );
    // A softphone member is reached only with a registrar.
    let soft = Roster::parse(
        &text.replace(
            "phone = \"+8613800000020\"",
            "phone = \"+8613800000020\"\nsip = \"registered\"",
        ),
        "r.toml",
    )
    .unwrap();
    let (problems, _) = soft.check(&c, 0, date(2026, 6, 1), Reach::default());
    assert!(
        problems.iter().any(|p| p.starts_with("member p-sun")
            && p.contains("registered softphone, and no [registrar]")),
        "{problems:?}"
    );
    let both = Reach {
        trunk: true,
        registrar: true,
    };
    assert!(soft.check(&c, 0, date(2026, 6, 1), both).0.is_empty());
    // A SIP value that is neither a URI nor "registered" is refused.
    let err = Roster::parse(
        &text.replace(
            "phone = \"+8613800000020\"",
            "phone = \"+8613800000020\"\nsip = \"8201@pbx\"",
        ),
        "r.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("members p-sun: sip") && err.contains("\"8201@pbx\""),
        "{err}"
    );
    // In December the next year's missing notice is a warning, not a problem.
    let (problems, warnings) = r.check(&c, 0, date(2026, 12, 1), Reach::default());
    assert!(!problems.iter().any(|p| p.contains("2027")), "{problems:?}");
    assert!(
        warnings
            .iter()
            .any(|w| w.starts_with("provisional holiday dates for 2027")),
        "{warnings:?}"
    );
}

#[test]
fn day_units_take_turns_by_day_beside_the_desk() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join("config/roster.toml"),
    )
    .unwrap()
    .replace(
        "police = [\"p-sun\", \"p-zhou\", \"p-wu\"]",
        "police = [\"p-sun\", \"p-zhou\", \"p-wu\"]\nday_units = [\"unit-4\", \"unit-5\"]",
    );
    let r = Roster::parse(&text, "r.toml").unwrap();
    let c = cal();
    // Tuesday and Wednesday 10:00: the desk, and a day unit each in turn.
    let tue = r.resolve(&c, 0, at(date(2026, 3, 10), 10, 0), None);
    let wed = r.resolve(&c, 0, at(date(2026, 3, 11), 10, 0), None);
    assert!(tue.period.is_none() && !tue.desk.is_empty());
    let (a, b) = (tue.day_unit.unwrap().id, wed.day_unit.unwrap().id);
    assert_ne!(a, b);
    assert!(["unit-4", "unit-5"].contains(&a.as_str()));
    // At night: no day unit, the duty unit.
    let night = r.resolve(&c, 0, at(date(2026, 3, 10), 22, 0), None);
    assert!(night.day_unit.is_none() && night.unit.is_some());
    // A day unit that does not exist is refused, naming it.
    let bad = text.replace(
        "day_units = [\"unit-4\", \"unit-5\"]",
        "day_units = [\"unit-9\"]",
    );
    let err = Roster::parse(&bad, "r.toml").unwrap_err().to_string();
    assert!(
        err.contains("rotation.day_units: \"unit-9\" is not in [[units]]"),
        "{err}"
    );
}

#[test]
fn without_a_desk_the_unit_is_on_around_the_clock() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join("config/roster.toml"),
    )
    .unwrap()
    .replace("members = [\"m-desk-1\", \"m-desk-2\"]", "members = []");
    let r = Roster::parse(&text, "r.toml").unwrap();
    let c = cal();
    // A Tuesday morning in working hours: a unit, not the desk.
    let d = r.resolve(&c, 0, at(date(2026, 3, 10), 10, 0), None);
    let p = d.period.unwrap();
    assert_eq!(
        (p.start, p.end),
        (at(date(2026, 3, 10), 8, 30), at(date(2026, 3, 11), 8, 30))
    );
    assert!(d.unit.is_some() && d.desk.is_empty());
}

#[test]
fn a_swap_of_two_units_applies_both_ways_within_its_range() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join("config/roster.toml"),
    )
    .unwrap();
    let swap = "\n[[overrides]]\nreplace = \"unit-1\"\nwith = \"unit-2\"\nfrom = \"2026-06-10\"\nto = \"2026-06-20\"\nreason = \"互换\"\n\
\n[[overrides]]\nreplace = \"unit-2\"\nwith = \"unit-1\"\nfrom = \"2026-06-10\"\nto = \"2026-06-20\"\nreason = \"互换\"\n";
    let (r, plain_r, c) = (
        Roster::parse(&format!("{text}{swap}"), "r.toml").unwrap(),
        roster(),
        cal(),
    );
    let unit_on = |r: &Roster, d: Date| {
        let p = r.period_of(&c, d);
        r.resolve(&c, 0, p.start, None).unit.unwrap().id
    };
    let mut swapped = 0;
    for d in days(date(2026, 6, 5), date(2026, 6, 25)) {
        let inside = date(2026, 6, 10) <= d && d <= date(2026, 6, 20);
        let plain = unit_on(&plain_r, d);
        let want = match (plain.as_str(), inside) {
            ("unit-1", true) => "unit-2",
            ("unit-2", true) => "unit-1",
            (u, _) => u,
        };
        swapped += usize::from(want != plain);
        assert_eq!(unit_on(&r, d), want, "{d}");
    }
    assert!(swapped >= 2, "the range holds both units' periods");
}

#[test]
fn the_leaders_roles_are_given_by_leaders_alone() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/roster.toml"),
    )
    .unwrap();
    let r = Roster::parse(&text, "roster.toml").unwrap();
    // m-chen is the director and, by [leaders] deputies, a deputy too,
    // though the member lists only "director"; m-lin a deputy; m-guo the
    // chief commander; a desk member none of them.
    let roles = |id: &str| r.member(id).unwrap().roles.clone();
    assert!(roles("m-chen").contains(&Role::Director) && roles("m-chen").contains(&Role::Deputy));
    assert_eq!(roles("m-lin"), vec![Role::Deputy]);
    assert_eq!(roles("m-guo"), vec![Role::ChiefCommander]);
    assert_eq!(roles("m-desk-1"), vec![Role::Desk]);
    // A member claiming a leader's role [leaders] does not give: refused.
    let claimed = text.replacen("roles = [\"desk\"]", "roles = [\"desk\", \"director\"]", 1);
    let e = Roster::parse(&claimed, "roster.toml")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("members m-desk-1") && e.contains("given by [leaders] alone"),
        "{e}"
    );
    // An unknown role is named.
    let unknown = text.replacen("roles = [\"desk\"]", "roles = [\"janitor\"]", 1);
    let e = Roster::parse(&unknown, "roster.toml")
        .unwrap_err()
        .to_string();
    assert!(e.contains("janitor"), "{e}");
}
