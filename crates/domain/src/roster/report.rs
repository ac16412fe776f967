//! Text views of the roster for operators (times in Asia/Shanghai).

use std::fmt::Write as _;

use super::{Member, OnDuty};
use crate::court_time::local;

fn person(m: &Member) -> String {
    let mut contact = Vec::new();
    if let Some(p) = &m.phone {
        contact.push(p.clone());
    }
    if let Some(s) = &m.sip {
        contact.push(s.clone());
    }
    if contact.is_empty() {
        format!("{} {}", m.id, m.name)
    } else {
        format!("{} {} ({})", m.id, m.name, contact.join(", "))
    }
}

/// `hotline roster who`.
pub fn who(d: &OnDuty) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "at         {}", local(d.at));
    match &d.period {
        None => {
            let _ = writeln!(s, "period     working hours: the day desk");
            for m in &d.desk {
                let _ = writeln!(s, "desk       {}", person(m));
            }
        }
        Some(p) => {
            let _ = writeln!(
                s,
                "period     {} .. {}  ({}{}, period {})",
                local(p.start),
                local(p.end),
                p.day_type,
                p.holiday
                    .as_deref()
                    .map(|h| format!(" {h}"))
                    .unwrap_or_default(),
                p.index
            );
        }
    }
    if let Some(u) = &d.unit {
        let _ = writeln!(s, "unit       {} {} (vehicle {})", u.id, u.name, u.vehicle);
        for m in &u.members {
            let _ = writeln!(s, "           {}", person(m));
        }
    }
    if let Some(p) = &d.police {
        let _ = writeln!(s, "police     {}", person(p));
    }
    for h in &d.case_handler {
        let _ = writeln!(s, "handler    {}", person(h));
    }
    let _ = writeln!(s, "director   {}", person(&d.director));
    let _ = writeln!(s, "chief      {}", person(&d.chief_commander));
    for o in &d.overrides {
        let _ = writeln!(s, "override   {o}");
    }
    if !d.calendar_known {
        let _ = writeln!(
            s,
            "warning    provisional holiday dates for this year (statutory holidays, no adjusted working days): add the State Council notice"
        );
    }
    s
}

/// `hotline roster plan`: one line per duty period.
pub fn plan(days: &[OnDuty]) -> String {
    let mut s = String::from(
        "start             end               day                   unit    police  members\n",
    );
    for d in days {
        let Some(p) = &d.period else { continue };
        let unit = d.unit.as_ref();
        let _ = writeln!(
            s,
            "{}  {}  {:<20}  {:<6}  {:<6}  {}{}",
            &local(p.start)[..16],
            &local(p.end)[..16],
            p.holiday.clone().unwrap_or_else(|| p.day_type.to_string()),
            unit.map_or("-", |u| u.id.as_str()),
            d.police.as_ref().map_or("-", |m| m.id.as_str()),
            unit.map(|u| u
                .members
                .iter()
                .map(|m| m.name.as_str())
                .collect::<Vec<_>>()
                .join("、"))
                .unwrap_or_default(),
            if d.overrides.is_empty() {
                String::new()
            } else {
                format!("  [{}]", d.overrides.join("; "))
            }
        );
    }
    s
}
