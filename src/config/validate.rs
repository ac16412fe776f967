//! What the types cannot say about the settings: ranges, keys that go
//! together, files that must exist. [`Settings::validate`] finds every
//! problem, not only the first: the checks of each section in turn, in a
//! fixed order (the order the problems are listed in).

use super::{redact_url, ConfigError, Settings};

/// The problems found so far, each naming the file and the key.
struct Problems<'a> {
    file: &'a str,
    found: Vec<ConfigError>,
}

impl Problems<'_> {
    fn add(&mut self, key: &'static str, problem: impl Into<String>) {
        self.found.push(ConfigError::Invalid {
            file: self.file.to_string(),
            key,
            problem: problem.into(),
        });
    }

    /// Each key whose value is 0: "must be at least 1".
    fn at_least_one(&mut self, values: &[(&'static str, usize)]) {
        for &(key, value) in values {
            if value == 0 {
                self.add(key, "must be at least 1");
            }
        }
    }

    fn into_result(mut self) -> Result<(), ConfigError> {
        match self.found.len() {
            0 => Ok(()),
            1 => Err(self.found.remove(0)),
            _ => Err(ConfigError::Many(self.found)),
        }
    }
}

/// What is wrong with `[http] public_url`, if anything: an http(s) origin
/// (a path after it may be), no query or fragment (the link's fragment
/// follows it), nothing a text could break at.
fn public_url_problem(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    let Some(rest) = rest else {
        return Some(format!("{url:?} is not an http:// or https:// URL"));
    };
    let host = rest.split('/').next().unwrap_or("");
    if host.is_empty() || host.contains('@') {
        return Some(format!("{url:?} names no host (or names a user)"));
    }
    if url.len() > 200 || url.chars().any(|c| !c.is_ascii_graphic()) {
        return Some(format!(
            "{url:?}: at most 200 printable ASCII characters, no spaces"
        ));
    }
    if url.contains(['?', '#']) {
        return Some(format!(
            "{url:?}: no query or fragment (the link adds its own)"
        ));
    }
    None
}

impl Settings {
    /// Checks values the types cannot express: every problem, each naming
    /// the file and the key.
    pub fn validate(&self, file: &str) -> Result<(), ConfigError> {
        let mut p = Problems {
            file,
            found: Vec::new(),
        };
        self.validate_sip(&mut p);
        self.validate_trunk(&mut p);
        self.validate_registrar(&mut p);
        self.validate_sip_limits(&mut p);
        self.validate_media(&mut p);
        self.validate_paging(&mut p);
        self.validate_webrtc_ports(&mut p);
        self.validate_counts(&mut p);
        self.validate_bridge(&mut p);
        self.validate_follow_up(&mut p);
        self.validate_redis(&mut p);
        self.validate_prompts(&mut p);
        self.validate_tls(&mut p);
        self.validate_intake(&mut p);
        self.validate_watch(&mut p);
        self.validate_swaps(&mut p);
        for (key, problem) in self.transcribe.check() {
            p.add(key, problem);
        }
        p.into_result()
    }

    /// `[sip]`: listening, calls, timers.
    fn validate_sip(&self, p: &mut Problems) {
        let sip = &self.sip;
        if sip.listen.is_empty() {
            p.add("sip.listen", "at least one address is needed");
        }
        if sip.max_calls == 0 {
            p.add("sip.max_calls", "must be at least 1");
        }
        if sip.max_placed_calls == 0 {
            p.add("sip.max_placed_calls", "must be at least 1");
        }
        if sip.t1_ms == 0 || sip.t2_ms < sip.t1_ms {
            p.add(
                "sip.t2_ms",
                format!(
                    "T1 ({}) must be > 0 and T2 ({}) >= T1",
                    sip.t1_ms, sip.t2_ms
                ),
            );
        }
        if sip.max_call_seconds == 0 {
            p.add("sip.max_call_seconds", "must be at least 1");
        }
    }

    /// `[trunk]`, when there is one (its own check names the key).
    fn validate_trunk(&self, p: &mut Problems) {
        if let Some(t) = &self.trunk {
            if let Err((key, problem)) = t.check() {
                p.add(key, problem);
            }
        }
    }

    /// `[registrar]`, when there is one (its own check names the key).
    fn validate_registrar(&self, p: &mut Problems) {
        if let Some(r) = &self.registrar {
            if let Err((key, problem)) = r.check() {
                p.add(key, problem);
            }
        }
    }

    /// `[sip]`'s limits: message size, rates, transactions, the reserve,
    /// bans, scanners.
    fn validate_sip_limits(&self, p: &mut Problems) {
        let sip = &self.sip;
        if sip.max_header_bytes < 1024 {
            p.add("sip.max_header_bytes", "must be at least 1024");
        }
        p.at_least_one(&[
            ("sip.requests_per_second", sip.requests_per_second as usize),
            ("sip.invites_per_second", sip.invites_per_second as usize),
            ("sip.calls_per_source", sip.calls_per_source),
            ("sip.transactions_per_source", sip.transactions_per_source),
        ]);
        if sip.max_transactions < 100 {
            p.add("sip.max_transactions", "must be at least 100");
        }
        if sip.reserve_percent > 90 {
            p.add(
                "sip.reserve_percent",
                format!(
                    "{} is more than 90 (percent of max_calls)",
                    sip.reserve_percent
                ),
            );
        }
        if sip.ban_after > 0 && sip.ban_seconds == 0 {
            p.add(
                "sip.ban_seconds",
                "must be at least 1 while ban_after is set",
            );
        }
        if sip.scanner_user_agents.iter().any(|s| s.trim().is_empty()) {
            p.add(
                "sip.scanner_user_agents",
                "an empty entry would match every request",
            );
        }
    }

    /// `[media]`: the RTP port range, the media timeout.
    fn validate_media(&self, p: &mut Problems) {
        let m = &self.media;
        if m.rtp_port_min == 0 || m.rtp_port_min > m.rtp_port_max {
            p.add(
                "media.rtp_port_min",
                format!(
                    "range {}-{} is empty or starts at 0",
                    m.rtp_port_min, m.rtp_port_max
                ),
            );
        }
        if m.timeout_seconds == 0 {
            p.add("media.timeout_seconds", "must be at least 1");
        }
    }

    /// `[paging]`: the webhooks' CA, when given, must load; replies are
    /// limited. `[http]`'s public URL and the links' lifetime.
    fn validate_paging(&self, p: &mut Problems) {
        if let Some(ca) = &self.paging.tls_ca {
            if let Err(e) = crate::tls::client_config(Some(ca)) {
                p.add("paging.tls_ca", e);
            }
        }
        if !(1..=60).contains(&self.paging.replies_per_minute) {
            p.add("paging.replies_per_minute", "must be 1 to 60");
        }
        if let Some(url) = &self.http.public_url {
            if let Some(problem) = public_url_problem(url) {
                p.add("http.public_url", problem);
            }
        }
        if !(1..=24 * 60).contains(&self.http.page_link_minutes) {
            p.add("http.page_link_minutes", "must be 1 to 1440 (a day)");
        }
    }

    /// `[webrtc]`'s port range: both ends or neither, not empty, clear of
    /// `[media]`'s.
    fn validate_webrtc_ports(&self, p: &mut Problems) {
        let (w, m) = (&self.webrtc, &self.media);
        match (w.port_min, w.port_max) {
            (None, None) => {}
            (Some(_), None) => p.add("webrtc.port_max", "needed with webrtc.port_min"),
            (None, Some(_)) => p.add("webrtc.port_min", "needed with webrtc.port_max"),
            (Some(min), Some(max)) if min == 0 || min > max => p.add(
                "webrtc.port_min",
                format!("range {min}-{max} is empty or starts at 0"),
            ),
            (Some(min), Some(max)) if min <= m.rtp_port_max && m.rtp_port_min <= max => p.add(
                "webrtc.port_min",
                format!(
                    "range {min}-{max} overlaps media.rtp_port_min-rtp_port_max {}-{}",
                    m.rtp_port_min, m.rtp_port_max
                ),
            ),
            _ => {}
        }
    }

    /// The counts and times of `[http]`, `[webrtc]`, `[bridge]`, `[api]`
    /// and `[follow_up]` that must be at least 1.
    fn validate_counts(&self, p: &mut Problems) {
        let (w, b, api, f) = (&self.webrtc, &self.bridge, &self.api, &self.follow_up);
        p.at_least_one(&[
            (
                "http.member_failures_per_hour",
                self.http.member_failures_per_hour as usize,
            ),
            ("webrtc.connect_seconds", w.connect_seconds as usize),
            ("webrtc.max_calls", w.max_calls),
            ("webrtc.calls_per_source", w.calls_per_source),
            ("webrtc.offers_per_minute", w.offers_per_minute),
            ("bridge.ring_seconds", b.ring_seconds as usize),
            ("bridge.member_ring_seconds", b.member_ring_seconds as usize),
            ("bridge.max_connections", b.max_connections),
            (
                "api.callbacks_per_ticket_per_day",
                api.callbacks_per_ticket_per_day as usize,
            ),
            (
                "api.callbacks_per_member_per_day",
                api.callbacks_per_member_per_day as usize,
            ),
            ("follow_up.ring_seconds", f.ring_seconds as usize),
            ("follow_up.key_seconds", f.key_seconds as usize),
        ]);
    }

    /// `[bridge]`: the violence reserve leaves connections to the rest.
    fn validate_bridge(&self, p: &mut Problems) {
        let b = &self.bridge;
        if b.max_connections > 0 && b.violence_reserve >= b.max_connections {
            p.add(
                "bridge.violence_reserve",
                format!(
                    "{} leaves none of bridge.max_connections ({}) to other bridges, callbacks and follow-up calls: it must be less",
                    b.violence_reserve, b.max_connections
                ),
            );
        }
    }

    /// `[follow_up]`: its calls need a `[trunk]`.
    fn validate_follow_up(&self, p: &mut Problems) {
        if self.follow_up.enabled && self.trunk.is_none() {
            p.add(
                "follow_up.enabled",
                "follow-up calls go out through the court's trunk: configure [trunk]",
            );
        }
    }

    /// `[redis]`: the sentinels and their master's name, the URL, its CA,
    /// the key prefix.
    fn validate_redis(&self, p: &mut Problems) {
        let r = &self.redis;
        for sentinel in &r.sentinels {
            let hostport = sentinel.rsplit('@').next().unwrap_or(sentinel);
            let hostport = hostport
                .trim_start_matches("redis://")
                .trim_end_matches('/');
            if !hostport
                .rsplit_once(':')
                .is_some_and(|(h, port)| !h.is_empty() && port.parse::<u16>().is_ok())
            {
                p.add(
                    "redis.sentinels",
                    format!("{:?} is not host:port", redact_url(sentinel)),
                );
            }
        }
        if !r.sentinels.is_empty() && r.master_name.trim().is_empty() {
            p.add("redis.master_name", "needed with redis.sentinels");
        }
        let schemes = ["redis://", "rediss://", "unix://"];
        if !schemes.iter().any(|s| r.url.starts_with(s)) {
            p.add(
                "redis.url",
                format!(
                    "{:?} is not a redis://, rediss:// or unix:// URL",
                    r.url_redacted()
                ),
            );
        }
        if let Some(ca) = &r.tls_ca {
            if !r.url.starts_with("rediss://") {
                p.add("redis.tls_ca", "only for a rediss:// URL");
            } else if !ca.is_file() {
                p.add("redis.tls_ca", format!("{} does not exist", ca.display()));
            }
        }
        if r.key_prefix.is_empty() || r.key_prefix.contains(char::is_whitespace) {
            p.add(
                "redis.key_prefix",
                format!("{:?} must be non-empty without spaces", r.key_prefix),
            );
        }
    }

    /// `[prompts]`: every prompt's file exists.
    fn validate_prompts(&self, p: &mut Problems) {
        for (_, key, path) in self.prompts.files() {
            if !path.is_file() {
                p.add(key, format!("{} does not exist", path.display()));
            }
        }
    }

    /// `[http]`'s and `[sip]`'s certificate and key: both or neither, and
    /// they load.
    fn validate_tls(&self, p: &mut Problems) {
        use crate::tls::{server_config, TlsFileError};
        for (cert_key, key_key, cert, key) in [
            (
                "http.tls_cert",
                "http.tls_key",
                &self.http.tls_cert,
                &self.http.tls_key,
            ),
            (
                "sip.tls_cert",
                "sip.tls_key",
                &self.sip.tls_cert,
                &self.sip.tls_key,
            ),
        ] {
            match (cert, key) {
                (None, None) => {}
                (Some(_), None) => p.add(key_key, format!("needed with {cert_key}")),
                (None, Some(_)) => p.add(cert_key, format!("needed with {key_key}")),
                (Some(cert), Some(key)) => match server_config(cert, key, &[]) {
                    Ok(_) => {}
                    Err(e @ TlsFileError::Cert { .. }) => p.add(cert_key, e.to_string()),
                    Err(e @ TlsFileError::Key { .. }) => p.add(key_key, e.to_string()),
                },
            }
        }
    }

    /// `[intake]`: its timeouts and menu; the clocks of `[partners]`,
    /// `[cases]` and `[dispatch]`.
    fn validate_intake(&self, p: &mut Problems) {
        if let Some(problem) = self.intake.menu_problem() {
            p.add("intake.menu", problem);
        }
        if self.partners.pickup_minutes == 0
            || self.partners.warn_minutes >= self.partners.pickup_minutes
        {
            p.add(
                "partners.warn_minutes",
                "pickup_minutes must be at least 1 and warn_minutes below it",
            );
        }
        if self.partners.pickup_minutes > 24 * 60 {
            p.add("partners.pickup_minutes", "must be at most 1440 (a day)");
        }
        if !(1..=60).contains(&self.cases.answer_working_days) {
            p.add("cases.answer_working_days", "must be 1 to 60");
        }
        // The triage reads the case's reports over this window.
        if self.cases.link_days > 366 {
            p.add("cases.link_days", "must be at most 366");
        }
        let d = &self.dispatch;
        if d.arrive_minutes == 0 || d.verify_days == 0 || d.verify_urgent_days == 0 {
            p.add(
                "dispatch.arrive_minutes",
                "arrive_minutes, verify_days and verify_urgent_days must be at least 1",
            );
        }
        if d.arrive_minutes > 24 * 60 || d.verify_days > 366 || d.verify_urgent_days > 366 {
            p.add(
                "dispatch.arrive_minutes",
                "arrive_minutes must be at most 1440, verify_days and verify_urgent_days at most 366",
            );
        }
        let i = &self.intake;
        if i.max_message_seconds == 0 || i.key_timeout_seconds == 0 || i.digit_timeout_seconds == 0
        {
            p.add(
                "intake.max_message_seconds",
                "intake timeouts must be at least 1 second",
            );
        }
    }

    /// `[watch]`: its counts and intervals (its own check names the key).
    fn validate_watch(&self, p: &mut Problems) {
        for (key, problem) in self.watch.check() {
            p.add(key, problem);
        }
    }

    /// `[swaps]`: who approves, how far the calendar reaches (its own
    /// check names the key; `remind_at` is checked as it is read).
    fn validate_swaps(&self, p: &mut Problems) {
        for (key, problem) in self.swaps.check() {
            p.add(key, problem);
        }
    }
}
