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
        i.whereabouts.as_deref().unwrap_or("-"),
    );
    if let Some(secs) = i.call_seconds {
        let _ = writeln!(
            s,
            "call       {secs:.1} s, ended {}",
            i.call_end.as_deref().unwrap_or("-")
        );
    }
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
