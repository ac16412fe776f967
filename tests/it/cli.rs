//! The operator's command line, run as a real process.

use std::process::Command;
use std::time::Duration;

use hotline::tickets::model::Register;
use hotline::tickets::store::NewTicket;
use hotline::tickets::Store;

use crate::helpers::*;

fn hotline() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hotline"));
    c.current_dir(repo());
    c
}

#[test]
fn check_config_names_file_key_and_problem() {
    let ok = hotline()
        .args(["check-config", "--config", "config/hotline.toml"])
        .output()
        .unwrap();
    assert!(ok.status.success());
    // (In December a warning about next year's calendar may come first.)
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(stdout.ends_with("config/hotline.toml: ok\n"), "{stdout}");

    let dir = tempfile_dir("cli");
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[sip]\nmax_calls = 0\n").unwrap();
    let out = hotline()
        .args(["check-config", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml: sip.max_calls: must be at least 1"),
        "{err}"
    );

    // The admission limits: blocks and numbers are checked, and named.
    for (text, expect) in [
        (
            "[sip]\ntrusted = [\"10.1.2.0/33\"]\n",
            "sip.trusted: \"10.1.2.0/33\": the prefix length must be 0 to 32",
        ),
        (
            "[sip]\ntrusted = [\"10.1.2.9/24\"]\n",
            "has host bits set (the block is 10.1.2.0/24)",
        ),
        ("[sip]\ntrusted = [\"pbx.court\"]\n", "is not an address"),
        (
            "[sip]\ninvites_per_second = 0\n",
            "bad.toml: sip.invites_per_second: must be at least 1",
        ),
        (
            "[sip]\nreserve_percent = 95\n",
            "bad.toml: sip.reserve_percent: 95 is more than 90",
        ),
        (
            "[sip]\nscanner_user_agents = [\"\"]\n",
            "bad.toml: sip.scanner_user_agents: an empty entry",
        ),
    ] {
        std::fs::write(&bad, text).unwrap();
        let out = hotline()
            .args(["check-config", "--config"])
            .arg(&bad)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{text}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expect), "{text}: {err}");
    }

    // A Redis password never reaches an error message.
    let out = hotline()
        .args(["tickets", "list", "--config", "config/hotline.toml"])
        .args(["--redis-url", "redis://hotline:s3cret-pw@127.0.0.1:1/"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("redis://hotline:***@127.0.0.1:1/") && !err.contains("s3cret-pw"),
        "{err}"
    );

    // An environment override that is not an address names the variable.
    let out = hotline()
        .args(["check-config", "--config", "config/hotline.toml"])
        .env("HOTLINE_SIP_LISTEN", "localhost")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("HOTLINE_SIP_LISTEN"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tickets_list_and_show() {
    let redis = Redis::start("everysec").await;
    let store = Store::connect(&redis.url(), "hotline:").unwrap();
    let t = NewTicket {
        call_id: "cli@test".into(),
        call: String::new(),
        received_at: "2026-11-27T12:00:00Z".parse().unwrap(),
        register: Register::default(),
    };
    let (number, _) = store.create(&t, "gateway").await.unwrap();
    // What the triage and the clocks leave on the register.
    let triaged = hotline::tickets::model::Change::new("gateway", "triaged");
    store
        .change(&number, &triaged, |r| {
            r.triage.at = Some("2026-11-27T12:00:01Z".parse().unwrap());
            r.triage.handler = Some("m-zhao".into());
            r.triage.case_known = Some(true);
            r.triage.linked = vec!["2026-000001".into(), "2026-000002".into()];
            r.triage.link_days = Some(7);
            r.deadlines.answer_by = Some("2026-12-02T09:30:00Z".parse().unwrap());
            r.deadlines.missed = vec!["answer".into()];
        })
        .await
        .unwrap();
    let url = redis.url();
    let run = |args: &[&str]| {
        let out = hotline()
            .args(args)
            .args(["--config", "config/hotline.toml", "--redis-url", &url])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let list = run(&["tickets", "list", "--state", "intake"]);
    // 20:00 in Qingdao.
    assert!(
        list.starts_with(&format!("{number}  2026-11-27 20:00:00  intake")),
        "{list}"
    );
    let show = run(&["tickets", "show", &number]);
    assert!(show.contains("call-id    cli@test"), "{show}");
    assert!(show.contains("gateway    created"), "{show}");
    assert!(show.contains("\nhandler    m-zhao\n"), "{show}");
    assert!(
        show.contains("\nlinked     本案7日内第3次举报: 2026-000001, 2026-000002\n"),
        "{show}"
    );
    // 17:30 in Qingdao, passed unanswered.
    assert!(
        show.contains("\nanswer by  2026-12-02 17:30:00  MISSED\n"),
        "{show}"
    );
    assert!(run(&["tickets", "list", "--state", "closed"]).is_empty());
}

#[test]
fn recording_verify_says_ok_or_names_the_chunk() {
    use hotline::media::rtp::FrameSink;
    let dir = tempfile_dir("verify");
    let path = dir.join("v.wav");
    let mut r = hotline::recording::Recorder::create(path.clone(), "v@t", "2026-000001").unwrap();
    for i in 0..150i16 {
        r.frame(&[i; 160], &[-i; 160]);
    }
    r.finish();
    let run = || {
        hotline()
            .args(["recording", "verify"])
            .arg(&path)
            .output()
            .unwrap()
    };
    let ok = run();
    assert!(ok.status.success());
    assert_eq!(String::from_utf8_lossy(&ok.stdout), "ok\n");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[44 + 32000 + 5] ^= 0x40;
    std::fs::write(&path, bytes).unwrap();
    let bad = run();
    assert_eq!(bad.status.code(), Some(1));
    let text = String::from_utf8_lossy(&bad.stdout);
    assert!(
        text.ends_with("chunk 1 (seconds 1-2) does not match\n"),
        "{text}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// Who `hotline roster who` names, by id: the day desk, or the duty
/// period's number with its unit (and the unit's members) and court police
/// officer; each override it applied, and whether the holiday dates were
/// provisional.
fn on_duty(who: &str) -> String {
    let mut desk = Vec::new();
    let (mut period, mut unit, mut police) = (None, None, None);
    let (mut members, mut notes) = (Vec::new(), Vec::new());
    let id = |rest: &str| rest.split_whitespace().next().unwrap_or("").to_string();
    for line in who.lines() {
        let (label, rest) = line.split_at(line.len().min(11));
        match label.trim() {
            "desk" => desk.push(id(rest)),
            "period" => {
                period = rest
                    .split("period ")
                    .nth(1)
                    .map(|p| p.trim_end_matches(')').to_string())
            }
            "unit" => unit = Some(id(rest)),
            "police" => police = Some(id(rest)),
            "override" => notes.push(rest.split(" (").next().unwrap().to_string()),
            "warning" => notes.push("provisional calendar".to_string()),
            "" if unit.is_some() && police.is_none() => members.push(id(rest)),
            _ => {}
        }
    }
    let mut s = match (period, unit, police) {
        (Some(p), Some(u), Some(o)) => {
            format!("period {p}: {u} ({}), police {o}", members.join(" "))
        }
        _ => format!("desk {}", desk.join(" ")),
    };
    for n in notes {
        s.push_str(&format!("; {n}"));
    }
    s
}

/// `hotline roster who` against config/roster.toml and config/holidays,
/// the expected names worked out by hand: a duty period is numbered by its
/// day since the rotation's epoch (2026-01-01), its unit is
/// `units[n % 5]` and its police officer `police[n % 3]` (unit-1..5;
/// p-sun, p-zhou, p-wu), unless an override replaces them; on a working
/// day 08:30-17:30 the desk answers, and before 08:30 the period of the
/// day before goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roster_who_names_who_is_on_duty() {
    let redis = Redis::start("everysec").await;
    let url = redis.url();
    let who = |at: &str| {
        let out = hotline()
            .args([
                "roster",
                "who",
                "--at",
                at,
                "--config",
                "config/hotline.toml",
                "--redis-url",
                &url,
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let u = |n: u8| format!("unit-{n} (u{n}-officer u{n}-clerk u{n}-driver)");
    for (at, expected) in [
        // Friday 13 February, a working day: the desk until 17:30.
        ("2026-02-13 17:29", "desk m-desk-1 m-desk-2".to_string()),
        // Then period 43 (31 days of January + 12): 43 % 5 = 3, 43 % 3 = 1.
        (
            "2026-02-13 17:30",
            format!("period 43: {}, police p-zhou", u(4)),
        ),
        // Saturday 14 February before 08:30: still Friday's period.
        (
            "2026-02-14 08:29",
            format!("period 43: {}, police p-zhou", u(4)),
        ),
        // ... a worked Saturday (调休): the desk.
        ("2026-02-14 10:00", "desk m-desk-1 m-desk-2".to_string()),
        // Sunday 15 February 03:00: Saturday's period 44 (44 % 5 = 4,
        // 44 % 3 = 2); unit-3's override starts with the 15th's period.
        (
            "2026-02-15 03:00",
            format!("period 44: {}, police p-wu", u(5)),
        ),
        // 17 February (春节), period 47: 47 % 5 = 2 is unit-3, replaced
        // by unit-5 from the 15th to the 17th; 47 % 3 = 2.
        (
            "2026-02-17 12:00",
            format!(
                "period 47: {}, police p-wu; unit-3 replaced by unit-5",
                u(5)
            ),
        ),
        // 2 October (国庆节), period 274 (273 days to 1 October):
        // 274 % 5 = 4; 274 % 3 = 1 is p-zhou, on leave 1-3 October: p-wu.
        (
            "2026-10-02 23:59",
            format!("period 274: {}, police p-wu; p-zhou replaced by p-wu", u(5)),
        ),
        // Thursday 31 December after hours, period 364: 364 % 5 = 4,
        // 364 % 3 = 1.
        (
            "2026-12-31 23:00",
            format!("period 364: {}, police p-zhou", u(5)),
        ),
        // 1 January 2027: no notice for 2027, New Year's Day is a
        // statutory holiday all the same; period 365: 365 % 5 = 0,
        // 365 % 3 = 2.
        (
            "2027-01-01 12:00",
            format!("period 365: {}, police p-wu; provisional calendar", u(1)),
        ),
    ] {
        let out = who(at);
        assert_eq!(on_duty(&out), expected, "{at}:\n{out}");
    }
    // Advancing the rotation moves the answer for every reader: Tuesday
    // 10 March after hours is period 68 (59 days to 1 March + 9):
    // 68 % 5 = 3, 68 % 3 = 2; advanced by one, 69 % 5 = 4, 69 % 3 = 0.
    let before = who("2026-03-10 22:00");
    assert_eq!(
        on_duty(&before),
        format!("period 68: {}, police p-wu", u(4))
    );
    let out = hotline()
        .args([
            "roster",
            "advance",
            "--config",
            "config/hotline.toml",
            "--redis-url",
            &url,
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let after = who("2026-03-10 22:00");
    assert_eq!(
        on_duty(&after),
        format!("period 68: {}, police p-sun", u(5))
    );
    // A bad time is refused with the flag named.
    let bad = hotline()
        .args([
            "roster",
            "who",
            "--at",
            "tomorrow",
            "--config",
            "config/hotline.toml",
            "--redis-url",
            &url,
        ])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).starts_with("--at \"tomorrow\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_sip_password_stores_only_the_ha1() {
    use std::io::Write as _;
    let redis = Redis::start("everysec").await;
    let url = redis.url();
    let set = |password: &str| {
        let mut child = hotline()
            .args(["officer", "set-sip-password", "p-sun"])
            .args(["--config", "config/hotline.toml", "--redis-url", &url])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
        child.wait_with_output().unwrap()
    };
    let short = set("short");
    assert!(!short.status.success());
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 12"));
    let ok = set("softphone-secret-1");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let store = Store::connect(&url, "hotline:").unwrap();
    // MD5("p-sun:hotline:softphone-secret-1"), computed independently.
    assert_eq!(
        store.sip_ha1("p-sun").await.unwrap().as_deref(),
        Some("6266f9479cc5ef8497c29bae238a4cd9")
    );
    let dump = redis_dump(&store).await;
    assert!(!dump.contains("softphone-secret-1"), "{dump}");
}

/// What `serve` refuses, `check-config` refuses too (through the same
/// loading), with every problem named: a table of broken configurations
/// run through both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_of_serve_is_a_refusal_of_check_config() {
    let roster = std::fs::read_to_string(repo().join("config/roster.toml")).unwrap();
    // (what, the roster, lines for [prompts], more TOML, what must be said)
    let cases: Vec<(&str, String, &str, &str, Vec<&str>)> = vec![
        (
            "a unit the rotation names does not exist",
            roster.replacen("units = [\"unit-1\"", "units = [\"unit-9\"", 1),
            "",
            "",
            vec!["\"unit-9\" is not in [[units]]"],
        ),
        (
            "a member's webhook names no receiver",
            roster.replacen(
                "sip = \"sip:8003@pbx.court.example\"",
                "sip = \"sip:8003@pbx.court.example\"\nwebhook = \"nobody\"",
                1,
            ),
            "",
            "",
            vec!["members m-chen: webhook: \"nobody\" is not a receiver"],
        ),
        (
            "a policy names a member the roster lacks",
            roster.clone(),
            "",
            "[paging.policies.lead]\nsteps = [{ after_seconds = 0, targets = [{ member = \"m-ghost\" }] }]\n",
            vec!["paging.policies.lead: member \"m-ghost\" is not in"],
        ),
        (
            "two problems in the main file, both named",
            roster.clone(),
            "",
            "[sip]\nmax_calls = 0\n[media]\nrtp_port_min = 0\n",
            vec!["sip.max_calls: must be at least 1", "media.rtp_port_min"],
        ),
        (
            "a prompt that is missing",
            roster.clone(),
            "thanks = \"no-such.wav\"\n",
            "",
            vec!["prompts.thanks"],
        ),
    ];
    for (what, roster_text, prompts, extra, expect) in cases {
        let dir = tempfile_dir("refusals");
        std::fs::write(dir.join("roster.toml"), &roster_text).unwrap();
        let config = dir.join("hotline.toml");
        std::fs::write(
            &config,
            format!(
                "[prompts]\ndir = \"{}\"\n{prompts}[roster]\nfile = \"roster.toml\"\nholidays = \"{}\"\n{extra}",
                repo().join("config/prompts").display(),
                repo().join("config/holidays").display()
            ),
        )
        .unwrap();
        let out = hotline()
            .args(["check-config", "--config"])
            .arg(&config)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(
            out.status.code(),
            Some(2),
            "{what}: check-config passed: {err}"
        );
        for e in &expect {
            assert!(
                err.contains(e),
                "{what}: check-config does not say {e:?}: {err}"
            );
        }
        // serve's path: the settings load, or the gateway does not build.
        let served = match hotline::config::Settings::load(&config, &Default::default()) {
            Err(e) => e.to_string(),
            Ok(s) => match hotline::app::App::build(s).await {
                Ok(_) => panic!("{what}: serve would start"),
                Err(e) => format!("{e:#}"),
            },
        };
        for e in &expect {
            assert!(
                served.contains(e),
                "{what}: serve does not say {e:?}: {served}"
            );
        }
    }
}

/// `hotline reload`: a broken roster changes nothing and says why; a valid
/// one is in force for the next ticket (who is paged follows it) and shows
/// in the fingerprint; a call in progress meanwhile goes on to a complete
/// recording.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_takes_a_valid_roster_and_refuses_a_broken_one() {
    let redis = Redis::start("everysec").await;
    let dir = tempfile_dir("reload");
    let roster_path = dir.join("roster.toml");
    let text = offline(&test_roster_text());
    let with_police = |who: &str| {
        text.replace(
            "police = [\"p-sun\", \"p-zhou\", \"p-wu\"]",
            &format!("police = [\"{who}\"]"),
        )
    };
    std::fs::write(&roster_path, with_police("p-sun")).unwrap();
    let config = write_config(&dir, &redis, &roster_path, "");
    let gw = Process::start(&config);
    let fingerprint = || async {
        let (_, body) = http_get(gw.http, "/healthz").await.unwrap();
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        v["config_fingerprint"].as_str().unwrap().to_string()
    };
    let reload = || {
        hotline()
            .args(["reload", "--config"])
            .arg(&config)
            .output()
            .unwrap()
    };
    let before = fingerprint().await;
    let call = crate::helpers::TestCall::place(gw.udp, "during-reload@t", 8).await;
    // Broken: a unit the rotation names does not exist.
    std::fs::write(
        &roster_path,
        with_police("p-sun").replacen("units = [\"unit-1\"", "units = [\"unit-9\"", 1),
    )
    .unwrap();
    let out = reload();
    assert!(!out.status.success(), "a broken roster was taken");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("\"unit-9\" is not in [[units]]"), "{err}");
    assert_eq!(fingerprint().await, before, "nothing changed");
    // Valid: the standby court police officer is now p-zhou.
    std::fs::write(&roster_path, with_police("p-zhou")).unwrap();
    let out = reload();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.starts_with("reloaded: configuration "), "{said}");
    assert_ne!(fingerprint().await, before);
    let store = hotline::tickets::Store::connect(&redis.url(), "hotline:").unwrap();
    let numbers = crate::helpers::open_tickets(&store, 1, "after-reload").await;
    let paged = |member: &'static str| {
        let (store, n) = (store.clone(), numbers[0].clone());
        async move {
            store.timeline(&n).await.is_ok_and(|tl| {
                tl.iter().any(|e| {
                    e.action == "page" && e.details.contains(&format!("\"member\":\"{member}\""))
                })
            })
        }
    };
    eventually(
        "the new police officer paged",
        Duration::from_secs(10),
        || paged("p-zhou"),
    )
    .await;
    assert!(!paged("p-sun").await, "the old roster paged");
    // The call that started before the reloads ends as any call does.
    call.hangup().await;
    let call_ticket = ticket_of(&store, "during-reload@t").await;
    eventually(
        "the call's recording complete",
        Duration::from_secs(10),
        || async {
            store.timeline(&call_ticket).await.is_ok_and(|tl| {
                tl.iter().any(|e| {
                    e.action == "recording" && e.details.contains("\"status\":\"complete\"")
                })
            })
        },
    )
    .await;
}

/// Issue 30: `officer revoke` left the SIP password and the softphones.
/// Now it ends the member's sessions and forgets their HA1 and every
/// binding: the token is refused, the keys are gone from Redis, nothing is
/// left to page, and a REGISTER with the old password gets 403.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn officer_revoke_forgets_the_sip_password_and_every_softphone() {
    use crate::helpers::{register_udp, registrar, PASSWORD};
    let gw = registrar().await;
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let ok = register_udp(&gw, &sock, "p-sun", PASSWORD, 1).await;
    assert!(ok.starts_with("SIP/2.0 200 "), "{ok}");
    let api = crate::helpers::Api::new(&gw);
    let token = api.logged_in(&gw.store, &["p-sun"]).await.remove(0);
    assert_eq!(api.call("GET", "/tickets", Some(&token), None).await.0, 200);
    let keys = [
        "hotline:sip:ha1:p-sun",
        "hotline:sip:bindings:p-sun",
        "hotline:sip:bindings:p-sun:expiry",
    ];
    let exists = || async {
        let mut c = gw.store.connection();
        let mut out = Vec::new();
        for k in keys {
            let n: u32 = redis::cmd("EXISTS")
                .arg(k)
                .query_async(&mut c)
                .await
                .unwrap();
            out.push(n);
        }
        out
    };
    assert_eq!(exists().await, [1, 1, 1], "registered: {keys:?}");

    let out = hotline()
        .args([
            "officer",
            "revoke",
            "p-sun",
            "--config",
            "config/hotline.toml",
        ])
        .args(["--redis-url", &gw.redis.url()])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains(
            "1 session(s) of p-sun ended; SIP password removed; 1 softphone binding(s) removed"
        ),
        "{said}"
    );
    assert_eq!(exists().await, [0, 0, 0], "after revoke: {keys:?}");
    let now = jiff::Timestamp::now().as_millisecond();
    assert!(gw.store.bindings("p-sun", now).await.unwrap().is_empty());
    assert_eq!(api.call("GET", "/tickets", Some(&token), None).await.0, 401);
    let again = register_udp(&gw, &sock, "p-sun", PASSWORD, 3).await;
    assert!(again.starts_with("SIP/2.0 403 "), "{again}");
    gw.stop().await;
}

/// Issue 32: a malformed partners file or case directory is refused by
/// `check-config` and by a reload, naming file, line and field; the
/// running gateway keeps the files it had (its fingerprint stays) until a
/// valid one comes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_refuses_a_malformed_partners_file_or_case_directory() {
    let redis = Redis::start("everysec").await;
    let dir = tempfile_dir("reload-partners");
    let roster_path = dir.join("roster.toml");
    std::fs::write(&roster_path, offline(&test_roster_text())).unwrap();
    let partners = dir.join("partners.toml");
    let cases = dir.join("cases.csv");
    let good_partners = "[[partners]]\nname = \"辽宁路派出所\"\nnumbers = [\"053282820110\"]\n";
    let good_cases = "case_number,handler\n202602031234,m-zhao\n";
    std::fs::write(&partners, good_partners).unwrap();
    std::fs::write(&cases, good_cases).unwrap();
    let extra = format!(
        "[partners]\nfile = {:?}\n[cases]\nfile = {:?}\n",
        partners.display().to_string(),
        cases.display().to_string()
    );
    let config = write_config(&dir, &redis, &roster_path, &extra);
    let gw = Process::start(&config);
    let fingerprint = || async {
        let (_, body) = http_get(gw.http, "/healthz").await.unwrap();
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        v["config_fingerprint"].as_str().unwrap().to_string()
    };
    let run = |cmd: &str| {
        hotline()
            .args([cmd, "--config"])
            .arg(&config)
            .output()
            .unwrap()
    };
    let before = fingerprint().await;
    let bad = [
        (
            &partners,
            format!(
                "{good_partners}\n[[partners]]\nname = \"重复\"\nnumbers = [\"0532-8282-0110\"]\n"
            ),
            format!(
                "{}: line 7: numbers: \"0532-8282-0110\" is listed for \"辽宁路派出所\" already",
                partners.display()
            ),
        ),
        (
            &partners,
            "[[partners]]\nname = \"x\"\nnumber = [\"110\"]\n".to_string(),
            format!("{}: line 3: unknown field `number`", partners.display()),
        ),
        (
            &cases,
            format!("{good_cases}202602035678,m-qian,extra\n"),
            format!(
                "{}: line 3: 3 fields, expected case_number,handler",
                cases.display()
            ),
        ),
        (
            &cases,
            format!("{good_cases}202602035678,m-nobody\n"),
            format!(
                "{}: line 3: handler: \"m-nobody\" is no member or unit of the roster",
                cases.display()
            ),
        ),
    ];
    for (file, text, expect) in bad {
        std::fs::write(file, text).unwrap();
        let check = run("check-config");
        assert_eq!(check.status.code(), Some(2), "check-config took it");
        let err = String::from_utf8_lossy(&check.stderr);
        assert!(err.contains(&expect), "check-config: {err}");
        let reload = run("reload");
        assert!(!reload.status.success(), "a reload took it");
        let err = String::from_utf8_lossy(&reload.stderr);
        assert!(err.contains(&expect), "reload: {err}");
        assert_eq!(fingerprint().await, before, "the running files were kept");
        std::fs::write(&partners, good_partners).unwrap();
        std::fs::write(&cases, good_cases).unwrap();
    }
    // A valid change is taken.
    std::fs::write(&cases, format!("{good_cases}202602035678,unit-2\n")).unwrap();
    let out = run("reload");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ne!(fingerprint().await, before);
}
