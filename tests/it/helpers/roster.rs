//! Rosters for tests, made from the sample `config/roster.toml`.

use std::path::PathBuf;

use super::*;

/// The sample roster without a day desk: a duty unit is on at any hour, so
/// tests that page do not depend on the time of day they run at.
pub fn test_roster_text() -> String {
    std::fs::read_to_string(repo().join("config/roster.toml"))
        .unwrap()
        .replace("members = [\"m-desk-1\", \"m-desk-2\"]", "members = []")
}

/// A roster without SIP URIs and webhooks: its pages reach the officers'
/// page (the events stream) and nothing else, so no name is looked up and
/// nothing leaves the machine. Tests that page phones point the URIs at
/// loopback instead.
pub fn offline(roster: &str) -> String {
    roster
        .lines()
        .filter(|l| !l.starts_with("sip = ") && !l.starts_with("webhook = "))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Writes a roster for a test; returns its path.
pub fn test_roster(text: &str) -> PathBuf {
    let dir = tempfile_dir("roster");
    std::fs::write(dir.join("roster.toml"), text).unwrap();
    dir.join("roster.toml")
}

/// The sample roster with every SIP URI pointing at the test phone and the
/// director on the test webhook.
pub fn roster_for(phone: std::net::SocketAddr) -> std::path::PathBuf {
    test_roster(&roster_text_for(phone, false))
}

/// As [`roster_for`], the director m-chen also paged by the webhook
/// receiver `hook` (which the test configures: a roster naming a receiver
/// that does not exist does not start).
pub fn roster_with_hook(phone: std::net::SocketAddr) -> std::path::PathBuf {
    test_roster(&roster_text_for(phone, true))
}

fn roster_text_for(phone: std::net::SocketAddr, hook: bool) -> String {
    test_roster_text()
        .lines()
        .map(|l| {
            if l.starts_with("sip = ") {
                format!("message = \"sip:page@{phone}\"")
            } else if hook && l.starts_with("# webhook = ") {
                "webhook = \"hook\"".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The sample roster with the officers' phones at `port` (SIPp) and no
/// other SIP contact.
/// At night the duty unit (nobody with a way to them here) and the court
/// police officer p-sun, who has only a phone number (+8613800000020).
pub fn roster_police_by_phone() -> std::path::PathBuf {
    let roster: String = offline(&test_roster_text())
        .lines()
        .filter(|l| !l.starts_with("phone = ") || l.contains("+8613800000020"))
        .map(|l| format!("{l}\n"))
        .collect::<String>()
        .replace(
            "police = [\"p-sun\", \"p-zhou\", \"p-wu\"]",
            "police = [\"p-sun\"]",
        );
    test_roster(&roster)
}

pub fn roster_with_officer_phones(port: u16) -> std::path::PathBuf {
    let text = test_roster_text();
    let mut out = Vec::new();
    let mut officer = false;
    for l in text.lines() {
        if l.starts_with("id = ") {
            officer = l.contains("-officer\"");
        }
        if l.starts_with("sip = ") {
            if officer {
                out.push(format!("sip = \"sip:officer@127.0.0.1:{port}\""));
            }
            continue;
        }
        out.push(l.to_string());
    }
    test_roster(&out.join("\n"))
}
