//! Text views of tickets for operators (the CLI), times in Asia/Shanghai.

use std::fmt::Write as _;

use super::model::{Event, Ticket};

use crate::court_time::local;

/// One line per ticket.
pub fn line(t: &Ticket) -> String {
    let category = t.register.intake.category.map_or("-", |c| c.as_str());
    format!(
        "{}  {}  {:<12}  {:<12}  case {}",
        t.number,
        local(t.received_at),
        t.state.as_str(),
        category,
        t.register.intake.case_number.as_deref().unwrap_or("-"),
    )
}

/// The register entry and its timeline.
pub fn full(t: &Ticket, timeline: &[Event]) -> String {
    let mut s = String::new();
    let r = &t.register;
    let _ = writeln!(s, "ticket     {}  (version {})", t.number, t.version);
    let _ = writeln!(s, "state      {}", t.state);
    let _ = writeln!(s, "received   {} (Asia/Shanghai)", local(t.received_at));
    let _ = writeln!(s, "call-id    {}", t.call_id);
    let caller = if r.caller.privacy {
        "withheld (privacy requested)".to_string()
    } else {
        format!(
            "{} {}",
            r.caller.number.as_deref().unwrap_or("unknown"),
            r.caller
                .display_name
                .as_deref()
                .map(|d| format!("({d})"))
                .unwrap_or_default()
        )
    };
    let unverified = if r.caller.provenance() == crate::tickets::model::Provenance::Claimed {
        " (unverified: only claimed by the call)"
    } else {
        ""
    };
    let _ = writeln!(s, "caller     {}{unverified}", caller.trim());
    let i = &r.intake;
    let _ = writeln!(
        s,
        "report     category {}, case {}, urgent {}, whereabouts {}",
        i.category.map_or("-", |c| c.as_str()),
        i.case_number.as_deref().unwrap_or("-"),
        if i.urgent { "yes" } else { "no" },
        match (&i.whereabouts, i.whereabouts_machine) {
            (Some(w), true) => format!("{w} (machine-read)"),
            (Some(w), false) => w.clone(),
            (None, _) => "-".into(),
        },
    );
    match &r.transcript {
        Some(tr) => {
            let _ = writeln!(s, "{}", tr.line());
        }
        None if !r.recordings.is_empty() => {
            let _ = writeln!(s, "transcript pending");
        }
        None => {}
    }
    if let Some(secs) = i.call_seconds {
        let _ = writeln!(
            s,
            "call       {secs:.1} s, ended {}",
            i.call_end.as_deref().unwrap_or("-")
        );
    }
    if let Some(partner) = &i.partner {
        let _ = writeln!(s, "partner    {partner}");
    }
    clocks(&mut s, t);
    let d = &r.dispatch;
    if d.acknowledged_by.is_some() || !d.officers.is_empty() {
        let _ = writeln!(
            s,
            "dispatch   acknowledged by {} at {}, officers {}, vehicle {}, arrived {}",
            d.acknowledged_by.as_deref().unwrap_or("-"),
            d.acknowledged_at.map(local).unwrap_or_else(|| "-".into()),
            if d.officers.is_empty() {
                "-".into()
            } else {
                d.officers.join(", ")
            },
            d.vehicle.as_deref().unwrap_or("-"),
            d.arrived_at.map(local).unwrap_or_else(|| "-".into()),
        );
    }
    let p = &r.disposal;
    if p.closed_by.is_some() {
        let _ = writeln!(
            s,
            "disposal   {:?}: {} (closed by {} at {})",
            p.measures,
            p.result.as_deref().unwrap_or("-"),
            p.closed_by.as_deref().unwrap_or("-"),
            p.closed_at.map(local).unwrap_or_else(|| "-".into()),
        );
    }
    if let Some(a) = &r.answer {
        let _ = writeln!(
            s,
            "answer     by {} at {} via {}: {}",
            a.by,
            local(a.at),
            a.via,
            a.text
        );
    }
    if let Some(p) = &r.property {
        let _ = writeln!(
            s,
            "property   {}marked by {} at {}; {}",
            if p.urgent { "urgent, " } else { "" },
            p.by,
            local(p.at),
            match (p.verified_at, &p.result) {
                (Some(v), result) => format!(
                    "checked at {}: {}",
                    local(v),
                    result.as_deref().unwrap_or("-")
                ),
                (None, _) => "not checked yet".into(),
            }
        );
    }
    for rec in &r.recordings {
        let _ = writeln!(
            s,
            "recording  {} ({} ms, sha256 {})",
            rec.path, rec.duration_ms, rec.sha256
        );
    }
    let _ = writeln!(s, "timeline");
    for e in timeline {
        let _ = writeln!(
            s,
            "  {}  {:<10} {:<14} {} -> {}  {}",
            local(e.at),
            e.actor,
            e.action,
            e.from.map_or("-", |f| f.as_str()),
            e.to,
            e.details
        );
    }
    s
}

/// The triage (handler, linked reports, a joined dispatch) and the
/// deadlines, each marked when missed.
fn clocks(s: &mut String, t: &Ticket) {
    let tr = &t.register.triage;
    if tr.at.is_some() {
        let handler = match (&tr.handler, tr.case_known) {
            (Some(h), _) => h.clone(),
            (None, Some(false)) => "- (case unknown to the case directory)".into(),
            (None, _) => "-".into(),
        };
        let _ = writeln!(s, "handler    {handler}");
    }
    if let Some(repeat) = tr.repeat_report() {
        let _ = writeln!(s, "linked     {repeat}: {}", tr.linked.join(", "));
    }
    if let Some(j) = &tr.joined {
        let _ = writeln!(
            s,
            "joined     {j} (paged to its officers {})",
            tr.joined_officers.join(", ")
        );
    }
    let d = &t.register.deadlines;
    for (name, missed, by) in [
        ("pickup by", "pickup", d.pickup_by),
        ("answer by", "answer", d.answer_by),
        ("arrive by", "arrival", d.arrive_by),
        ("verify by", "verification", d.verify_by),
    ] {
        if let Some(by) = by {
            let mark = if d.missed.iter().any(|m| m == missed) {
                "  MISSED"
            } else {
                ""
            };
            let _ = writeln!(s, "{name:<10} {}{mark}", local(by));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tickets::model::{Category, Register, State};

    #[test]
    fn the_full_view_shows_the_handler_the_linked_reports_and_the_deadlines() {
        let at: jiff::Timestamp = "2026-12-01T02:00:00Z".parse().unwrap();
        let mut r = Register::default();
        r.intake.category = Some(Category::Lead);
        r.triage.at = Some(at);
        r.triage.handler = Some("m-zhao".into());
        r.triage.case_known = Some(true);
        r.triage.linked = vec!["2026-000001".into(), "2026-000002".into()];
        r.triage.link_days = Some(7);
        r.deadlines.arrive_by = Some(at);
        r.deadlines.missed = vec!["arrival".into()];
        let t = Ticket {
            number: "2026-000003".into(),
            call_id: "c".into(),
            state: State::Dispatched,
            version: 4,
            received_at: at,
            register: r,
        };
        let text = full(&t, &[]);
        assert!(text.contains("handler    m-zhao\n"), "{text}");
        assert!(
            text.contains("linked     本案7日内第3次举报: 2026-000001, 2026-000002\n"),
            "{text}"
        );
        assert!(
            text.contains("arrive by  2026-12-01 10:00:00  MISSED\n"),
            "{text}"
        );
    }
}
