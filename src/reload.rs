//! The configuration's files and reloading them without a restart:
//! [`load_files`] loads and checks every file the settings name (the same
//! for `serve`, `check-config` and a reload), [`reload`] reads the
//! configuration again (SIGHUP, `systemctl reload`, `hotline reload`
//! through the admin socket, which also takes `hotline drain`, `hotline
//! watch test-webhooks` and `hotline roster remind`) and puts the
//! new set in force in `crate::live` — or, on any problem, nothing. After
//! a reload the swaps in force are checked against the new roster
//! (`crate::swaps::Swaps::after_reload`): the answer says which still
//! apply, which are void, and whose duty moved.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::api::Health;
use crate::config::Settings;
use crate::live::{Live, Loaded};
use crate::media::Prompt;
use crate::roster::{Calendar, Roster};

/// What `serve` loads besides the main file: the prompts (decoded), the
/// roster and the calendars.
pub struct Files {
    pub prompts: std::collections::HashMap<crate::scripts::Prompt, Prompt>,
    /// The roster, the case directory attached.
    pub roster: Roster,
    pub partners: crate::partners::Partners,
    pub calendar: Calendar,
    /// What was loaded, as a fingerprint: 16 hex digits of a SHA-256 over
    /// the main file, the roster, the calendars and the prompts, so that an
    /// operator sees (`/healthz`, `/metrics`) whether every gateway runs the
    /// same configuration.
    pub fingerprint: String,
}

impl Files {
    /// The set a reload replaces: these files with the policies and
    /// webhook receivers of `s`.
    pub fn into_loaded(self, s: &Settings) -> Loaded {
        Loaded {
            roster: self.roster,
            partners: self.partners,
            calendar: self.calendar,
            prompts: self.prompts,
            policies: s.paging.policies.clone(),
            webhooks: s.paging.webhooks.clone(),
            partner_settings: s.partners.clone(),
            case_settings: s.cases.clone(),
            dispatch: s.dispatch.clone(),
            fingerprint: self.fingerprint,
        }
    }
}

/// One section of the settings as text, to compare.
type Section = fn(&Settings) -> String;

/// The settings that take effect only at a restart, by the section that
/// differs between `running` and `next` (a reload says which).
fn restart_only_changes(running: &Settings, next: &Settings) -> Vec<&'static str> {
    let paging = |s: &Settings| {
        let mut p = s.paging.clone();
        p.policies = Default::default();
        p.webhooks = Default::default();
        format!("{p:?}")
    };
    let sections: [(&'static str, Section); 16] = [
        ("[sip]", |s| format!("{:?}", s.sip)),
        ("[media]", |s| format!("{:?}", s.media)),
        ("[http]", |s| format!("{:?}", s.http)),
        ("[redis]", |s| format!("{:?}", s.redis)),
        ("[recording]", |s| format!("{:?}", s.recording)),
        ("[privacy] (the caller key)", |s| {
            format!("{:?}", s.privacy.key_file)
        }),
        ("[intake]", |s| format!("{:?}", s.intake)),
        ("[api]", |s| format!("{:?}", s.api)),
        ("[trunk]", |s| format!("{:?}", s.trunk)),
        ("[registrar]", |s| format!("{:?}", s.registrar)),
        ("[webrtc]", |s| format!("{:?}", s.webrtc)),
        ("[bridge]", |s| format!("{:?}", s.bridge)),
        ("[follow_up]", |s| format!("{:?}", s.follow_up)),
        ("[watch]", |s| format!("{:?}", s.watch)),
        ("[swaps]", |s| format!("{:?}", s.swaps)),
        ("[roster] and [prompts] file locations", |s| {
            format!("{:?}{:?}", s.roster, s.prompts)
        }),
    ];
    let mut out: Vec<&'static str> = sections
        .iter()
        .filter(|(_, f)| f(running) != f(next))
        .map(|(name, _)| *name)
        .collect();
    if paging(running) != paging(next) {
        out.push("[paging] (other than policies and webhooks)");
    }
    out
}

/// Reads the configuration file again and, if every file it names loads
/// and checks, puts the new roster, calendars, prompts, policies and
/// webhook receivers in force: calls in progress keep their prompts,
/// tickets being paged take the new roster at their next step. On any
/// problem nothing changes and the problems are the answer. What only a
/// restart changes is said, not ignored. Blocking (files, prompts).
pub fn reload(running: &Settings, live: &Live, health: &Health) -> Result<String, String> {
    let source = running
        .source
        .as_ref()
        .ok_or("the gateway was not started from a configuration file")?;
    let next = Settings::load(source, &running.overrides).map_err(|e| e.to_string())?;
    let loaded = load_files(&next)
        .map_err(|problems| problems.join("\n"))?
        .into_loaded(&next);
    let fingerprint = loaded.fingerprint.clone();
    // The swaps in force the new roster cannot apply are left out here and
    // voided, said and told by the swaps' check after the reload.
    let _ = live.set(loaded);
    health.loaded(&fingerprint, jiff::Timestamp::now());
    let mut text = format!("reloaded: configuration {fingerprint} in force (roster, case directory, partners, calendars, prompts, paging policies, webhooks, [partners], [cases], [dispatch])");
    let restart = restart_only_changes(running, &next);
    if !restart.is_empty() {
        text.push_str(&format!(
            "\nchanged, but in force only after a restart: {}",
            restart.join(", ")
        ));
    }
    tracing::info!("{text}");
    Ok(text)
}

/// The admin socket's `fault NAME` (debug builds): makes the named task
/// panic, answers its name or why not (the supervisor's `Faults::inject`).
pub type FaultHook = Arc<dyn Fn(&str) -> Result<String, String> + Send + Sync>;

/// The admin socket's `watch test-webhooks`: a test delivery to every
/// webhook receiver now (the channel watch's); answers the socket's whole
/// reply (`ok` or `error`, then a line per receiver).
pub type WatchHook = Arc<dyn Fn() -> futures::future::BoxFuture<'static, String> + Send + Sync>;

/// The local admin socket (`<journal_dir>/admin.sock`, mode 0600: who may
/// write it may reload): `hotline reload` sends `reload`, and reads `ok`
/// or `error`, then the details.
pub fn admin_socket(settings: &Settings) -> std::path::PathBuf {
    settings.redis.journal_dir.join("admin.sock")
}

/// Reloads on SIGHUP and on the admin socket's `reload`, until `stop`; the
/// socket's `drain` cancels `stop`, the gateway's own stop (which drains);
/// `watch test-webhooks` tests the webhook receivers (`watch`); `remind
/// YYYY-MM-DD` sends that day's duty reminders (`swaps`), unless a gateway
/// did already. After each reload `swaps` checks the swaps in force. With
/// `faults` (debug builds, `HOTLINE_FAULT_INJECTION=1`), `fault NAME`
/// makes the named task panic.
pub(crate) async fn serve_reloads(
    settings: Settings,
    live: Arc<Live>,
    health: Arc<Health>,
    stop: CancellationToken,
    faults: Option<FaultHook>,
    watch: WatchHook,
    swaps: Arc<crate::swaps::Swaps>,
) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let settings = Arc::new(settings);
    let run = |settings: Arc<Settings>,
               live: Arc<Live>,
               health: Arc<Health>,
               swaps: Arc<crate::swaps::Swaps>| async move {
        let before = live.get();
        let text = tokio::task::spawn_blocking(move || reload(&settings, &live, &health))
            .await
            .unwrap_or_else(|e| Err(format!("the reload failed: {e}")))?;
        let checked = swaps.after_reload(before).await;
        tracing::info!("{checked}");
        Ok::<String, String>(format!("{text}\n{checked}"))
    };
    let path = admin_socket(&settings);
    let _ = std::fs::remove_file(&path);
    let listener = tokio::net::UnixListener::bind(&path)
        .map_err(|e| tracing::warn!(path = %path.display(), error = %e, "no admin socket: reload by SIGHUP only"))
        .ok();
    #[cfg(unix)]
    if listener.is_some() {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
    }
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    loop {
        let accept = async {
            match &listener {
                Some(l) => l.accept().await.ok(),
                None => std::future::pending().await,
            }
        };
        let hangup = async {
            match hup.as_mut() {
                Some(h) => h.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = stop.cancelled() => break,
            Some(_) = hangup => {
                if let Err(e) = run(settings.clone(), live.clone(), health.clone(), swaps.clone()).await {
                    tracing::error!("reload refused, the configuration in force stays:\n{e}");
                }
            }
            Some((conn, _)) = accept => {
                let (settings, live, health) = (settings.clone(), live.clone(), health.clone());
                let (drain, faults, watch, swaps) = (stop.clone(), faults.clone(), watch.clone(), swaps.clone());
                tokio::spawn(async move {
                    let (read, mut write) = conn.into_split();
                    let mut line = String::new();
                    let mut read = tokio::io::BufReader::new(read);
                    let _ = tokio::time::timeout(Duration::from_secs(5), read.read_line(&mut line)).await;
                    let answer = match line.trim() {
                        "reload" => match run(settings, live, health, swaps).await {
                            Ok(text) => format!("ok\n{text}\n"),
                            Err(e) => {
                                tracing::error!("reload refused, the configuration in force stays:\n{e}");
                                format!("error\n{e}\n")
                            }
                        },
                        "drain" => {
                            tracing::info!("drain asked for through the admin socket");
                            let text = "ok\ndraining: new calls get 503, the gateway stops once its calls have ended\n";
                            let _ = write.write_all(text.as_bytes()).await;
                            drain.cancel();
                            return;
                        }
                        "watch test-webhooks" => watch().await,
                        other if other.starts_with("remind ") => {
                            let day = other["remind ".len()..].trim();
                            match day.parse::<jiff::civil::Date>() {
                                Ok(day) => crate::swaps::remind::answer(day, swaps.remind(day).await),
                                Err(e) => format!("error\nremind {day:?}: not a date YYYY-MM-DD ({e})\n"),
                            }
                        }
                        other => match (other.strip_prefix("fault "), &faults) {
                            (Some(name), Some(f)) => match f(name.trim()) {
                                Ok(task) => format!("ok\nfault injected: {task} panics\n"),
                                Err(e) => format!("error\n{e}\n"),
                            },
                            _ => format!("error\nunknown request {other:?}: say \"reload\", \"drain\", \"watch test-webhooks\" or \"remind YYYY-MM-DD\"\n"),
                        },
                    };
                    let _ = write.write_all(answer.as_bytes()).await;
                });
            }
        }
    }
    let _ = std::fs::remove_file(&path);
}

/// The fingerprint of the files `s` names (see [`Files::fingerprint`]).
fn fingerprint(s: &Settings, prompts: &HashMap<crate::scripts::Prompt, Prompt>) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    let mut add = |p: &std::path::Path| {
        h.update(p.display().to_string().as_bytes());
        h.update(std::fs::read(p).unwrap_or_default());
    };
    if let Some(main) = &s.source {
        add(main);
    }
    add(&s.roster.file);
    for p in s.partners.file.iter().chain(s.cases.file.iter()) {
        add(p);
    }
    let mut calendars: Vec<_> = std::fs::read_dir(&s.roster.holidays)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    calendars.sort();
    calendars.iter().for_each(|p| add(p));
    // The prompts as decoded (their files were read once, by the loading).
    for (which, key, _) in s.prompts.files() {
        h.update(key.as_bytes());
        for sample in prompts.get(&which).map(|p| p.samples()).unwrap_or_default() {
            h.update(sample.to_le_bytes());
        }
    }
    crate::hex::encode(&h.finalize()[..8])
}

/// Loads and checks every file the settings name, and what refers across
/// them, the same for `serve` and `check-config`: each prompt (format,
/// rate, presence), the roster, the calendars, with a trunk every phone
/// number dialable, every member's webhook a receiver of `[paging.webhooks]`,
/// every member a policy names in the roster. All problems, each naming
/// its file and key.
pub fn load_files(s: &Settings) -> Result<Files, Vec<String>> {
    let main = s
        .source
        .as_ref()
        .map_or_else(|| "the settings".to_string(), |p| p.display().to_string());
    let mut problems = Vec::new();
    let mut prompts = std::collections::HashMap::new();
    for (which, key, path) in s.prompts.files() {
        match Prompt::load(&path) {
            Ok(p) => {
                prompts.insert(which, p);
            }
            Err(e) => problems.push(format!("{main}: {key}: {e}")),
        }
    }
    let roster_file = s.roster.file.display().to_string();
    let roster = Roster::load(&s.roster.file)
        .map_err(|e| problems.push(e.to_string()))
        .ok();
    let calendar = Calendar::load(&s.roster.holidays)
        .map_err(|e| problems.push(e.to_string()))
        .ok();
    if let Some(r) = &roster {
        if let Some(Ok(plan)) = s.trunk.as_ref().map(|t| t.plan()) {
            problems.extend(
                r.undialable(&plan)
                    .into_iter()
                    .map(|p| format!("{roster_file}: {p}")),
            );
        }
        for m in r.members() {
            if let Some(w) = m
                .webhook
                .as_ref()
                .filter(|w| !s.paging.webhooks.contains_key(*w))
            {
                problems.push(format!(
                    "{roster_file}: members {}: webhook: {w:?} is not a receiver of {main} [paging.webhooks]",
                    m.id
                ));
            }
        }
        for c in crate::tickets::model::Category::ALL {
            for step in &s.paging.policies.for_category(Some(c)).steps {
                for t in &step.targets {
                    if let crate::escalation::Target::Member(id) = t {
                        if r.member(id).is_none() {
                            problems.push(format!(
                                "{main}: paging.policies.{}: member {id:?} is not in {roster_file}",
                                c.as_str()
                            ));
                        }
                    }
                }
            }
        }
    }
    let partners = load_partners(s, &mut prompts, &mut problems);
    let cases = match &s.cases.file {
        Some(f) => crate::cases::CaseDirectory::load(f)
            .map_err(|e| problems.push(e))
            .ok(),
        None => Some(Default::default()),
    };
    let roster = match (roster, cases) {
        (Some(r), Some(c)) => r.with_cases(c).map_err(|e| problems.extend(e)).ok(),
        _ => None,
    };
    problems.dedup();
    match (roster, calendar, partners) {
        (Some(roster), Some(calendar), Some(partners)) if problems.is_empty() => Ok(Files {
            fingerprint: fingerprint(s, &prompts),
            prompts,
            roster,
            partners,
            calendar,
        }),
        _ => Err(problems),
    }
}

/// The partners file, if any, and each partner's name prompt (into
/// `prompts`, as `PartnerName(its place)`).
fn load_partners(
    s: &Settings,
    prompts: &mut HashMap<crate::scripts::Prompt, Prompt>,
    problems: &mut Vec<String>,
) -> Option<crate::partners::Partners> {
    let Some(file) = &s.partners.file else {
        return Some(Default::default());
    };
    let partners = crate::partners::Partners::load(file)
        .map_err(|e| problems.push(e))
        .ok()?;
    for (i, p) in partners.list().iter().enumerate() {
        let Some(path) = &p.prompt else { continue };
        match (u16::try_from(i), Prompt::load(path)) {
            (Ok(i), Ok(wav)) => {
                prompts.insert(crate::scripts::Prompt::PartnerName(i), wav);
            }
            (_, Err(e)) => problems.push(format!(
                "{}: partners {:?}: prompt: {e}",
                file.display(),
                p.name
            )),
            (Err(_), _) => problems.push(format!("{}: more than 65536 partners", file.display())),
        }
    }
    Some(partners)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reload_names_what_only_a_restart_changes() {
        let running = Settings::from_toml("", "a.toml").unwrap();
        let mut next = running.clone();
        // Reloadable: policies and webhooks are not named.
        next.paging.policies =
            toml::from_str("[lead]\nsteps = [{ after_seconds = 0, targets = [\"director\"] }]\n")
                .unwrap();
        assert!(restart_only_changes(&running, &next).is_empty());
        next.sip.max_calls = 7;
        next.paging.call_ring_seconds += 1;
        next.redis.url = "redis://10.0.0.9/".into();
        assert_eq!(
            restart_only_changes(&running, &next),
            [
                "[sip]",
                "[redis]",
                "[paging] (other than policies and webhooks)"
            ]
        );
    }
}
