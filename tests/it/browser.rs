//! The officers' mobile page in Debian's headless Chromium, driven by
//! `tests/browser/page.mjs` (playwright-core): an officer logs in on a phone
//! screen, a call's page arrives live, and the page takes the ticket through
//! 签收, 出警 (a property lead marked and checked), 到场 and 办结, then logs
//! out. Redis must then hold what the
//! page did, and the screenshots are kept under `target/browser-screenshots/`
//! for a person to look at.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use hotline::tickets::model::{Measure, State};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::ChildStdout;

use crate::helpers::*;

const OFFICER: &str = "u1-officer";
const PIN: &str = "246810";

/// The test roster with unit 1 on duty at every hour, and paging only
/// through the page's events: no SIP or webhook contacts, so nothing leaves
/// the machine.
fn roster() -> std::path::PathBuf {
    let text = test_roster_text().replace(
        r#"units = ["unit-1", "unit-2", "unit-3", "unit-4", "unit-5"]"#,
        r#"units = ["unit-1"]"#,
    );
    assert!(
        text.contains(r#"units = ["unit-1"]"#),
        "rotation line changed"
    );
    test_roster(&offline(&text))
}

/// What the script said on stdout, and on stderr (read by a task).
struct Script {
    lines: Lines<BufReader<ChildStdout>>,
    said: Vec<String>,
    stderr: Arc<Mutex<String>>,
    stderr_task: Option<tokio::task::JoinHandle<()>>,
}

impl Script {
    /// The next line starting with `prefix`, within `limit`; the rest of it.
    async fn expect(&mut self, prefix: &str, limit: Duration) -> String {
        let end = tokio::time::Instant::now() + limit;
        loop {
            match tokio::time::timeout_at(end, self.lines.next_line()).await {
                Ok(Ok(Some(line))) => {
                    self.said.push(line.clone());
                    if let Some(rest) = line.strip_prefix(prefix) {
                        return rest.trim().to_string();
                    }
                }
                Ok(Ok(None)) | Ok(Err(_)) => self.fail(&format!("ended before {prefix}")).await,
                Err(_) => self.fail(&format!("no {prefix} within {limit:?}")).await,
            }
        }
    }

    async fn fail(&mut self, what: &str) -> ! {
        // All of stderr when the script has ended (bounded: it may still run).
        if let Some(t) = self.stderr_task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
        let err = self.stderr.lock().unwrap().clone();
        panic!(
            "browser script: {what}\nstdout:\n{}\nstderr:\n{err}",
            self.said.join("\n")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mobile_page_in_chromium_takes_a_live_page_to_closing() {
    let _one = CHROMIUM.lock().await;
    let started = Instant::now();
    let dir = repo().join("tests/browser");
    assert!(
        dir.join("node_modules/playwright-core").is_dir(),
        "playwright-core is missing: npm ci --prefix tests/browser (scripts/test.sh does it)"
    );
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists(),
        "Chromium is missing: apt-get install chromium (scripts/test.sh does it)"
    );
    let mut s = settings();
    s.roster.file = roster();
    let gw = Gateway::start(s).await;
    hotline::api::auth::set_pin(&gw.store, OFFICER, PIN)
        .await
        .unwrap();
    let shots = repo().join("target/browser-screenshots");
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots).unwrap();

    let mut child = tokio::process::Command::new("node")
        .arg(dir.join("page.mjs"))
        .arg("--base")
        .arg(format!("http://{}", gw.http))
        .args(["--member", OFFICER, "--pin", PIN, "--require-recording"])
        // Generous per step: the whole suite shares two cores with Chromium.
        .args(["--step-timeout-ms", "30000"])
        .arg("--shots")
        .arg(&shots)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs (Debian's nodejs)");
    let mut stdin = child.stdin.take().unwrap();
    let stderr = Arc::new(Mutex::new(String::new()));
    let mut err_pipe = child.stderr.take().unwrap();
    let err_buf = stderr.clone();
    let stderr_task = tokio::spawn(async move {
        let mut buf = [0u8; 4096];
        while let Ok(n) = err_pipe.read(&mut buf).await {
            if n == 0 {
                break;
            }
            err_buf
                .lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    let mut script = Script {
        lines: BufReader::new(child.stdout.take().unwrap()).lines(),
        said: Vec::new(),
        stderr,
        stderr_task: Some(stderr_task),
    };

    // Logged in, the live stream open: now a call comes in and is paged.
    script.expect("READY", Duration::from_secs(60)).await;
    let call = crate::helpers::TestCall::place(gw.udp, "browser@t", 0).await;
    call.info(0, '1').await; // a lead
    call.hangup().await;
    let store = gw.store.clone();
    let number = ticket_of(&store, "browser@t").await;
    let paged = script.expect("PAGED", Duration::from_secs(60)).await;
    assert_eq!(paged, number, "the page that arrived live is the call's");
    // The page may come a moment before the recording is linked: the
    // script opens the ticket once it is.
    let n2 = number.clone();
    eventually("the recording linked", Duration::from_secs(15), || async {
        store
            .timeline(&n2)
            .await
            .unwrap()
            .iter()
            .any(|e| e.action == "recording")
    })
    .await;
    stdin.write_all(b"GO\n").await.unwrap();
    let done = script.expect("DONE", Duration::from_secs(180)).await;
    assert_eq!(done, number);
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("the script exits after DONE")
        .unwrap();
    if !status.success() {
        script.fail(&format!("exited with {status}")).await;
    }

    // Redis holds what the officer did through the page.
    let t = gw.store.get(&number).await.unwrap();
    assert_eq!(t.state, State::Closed);
    let d = &t.register.dispatch;
    assert_eq!(d.acknowledged_by.as_deref(), Some(OFFICER));
    assert!(d.officers.iter().any(|m| m == OFFICER), "{d:?}");
    assert_eq!(d.vehicle.as_deref(), Some("鲁B·J0101"));
    assert!(d.departed_at.is_some() && d.arrived_at.is_some(), "{d:?}");
    // 出警 started the arrival clock; the page marked a property lead
    // (urgent) and recorded its check.
    assert!(t.register.deadlines.arrive_by.is_some(), "{t:?}");
    let p = t
        .register
        .property
        .as_ref()
        .expect("marked a property lead");
    assert!(p.urgent && p.by == OFFICER, "{p:?}");
    assert_eq!(p.result.as_deref(), Some("查到被执行人名下车辆一辆"));
    assert!(t.register.deadlines.verify_by.is_some() && p.verified_at.is_some());
    let disposal = &t.register.disposal;
    assert_eq!(disposal.closed_by.as_deref(), Some(OFFICER));
    assert_eq!(
        disposal.measures,
        vec![Measure::Detention, Measure::Seizure],
        "{disposal:?}"
    );
    assert_eq!(
        disposal.result.as_deref(),
        Some("已拘留被执行人，扣押车辆一辆")
    );
    let tl = gw.store.timeline(&number).await.unwrap();
    let by_officer: Vec<&str> = tl
        .iter()
        .filter(|e| e.actor == OFFICER)
        .map(|e| e.action.as_str())
        .collect();
    let steps: Vec<&str> = by_officer
        .iter()
        .copied()
        .filter(|a| matches!(*a, "acknowledge" | "dispatch" | "arrive" | "close"))
        .collect();
    assert_eq!(
        steps,
        ["acknowledge", "dispatch", "arrive", "close"],
        "{by_officer:?}"
    );
    assert!(
        by_officer.contains(&"recording_download"),
        "the page played the recording: {by_officer:?}"
    );
    // The page logged out: none of the officer's tokens is left.
    let mut c = gw.store.connection();
    let tokens: Vec<String> = redis::cmd("SMEMBERS")
        .arg(format!("hotline:tokens:{OFFICER}"))
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(tokens.is_empty(), "tokens left after logout: {tokens:?}");
    let closing = tl.iter().find(|e| e.action == "close").unwrap();
    assert_eq!(
        (closing.from, closing.to),
        (Some(State::OnScene), State::Closed)
    );

    // One screenshot per step, each a PNG.
    let files: Vec<std::path::PathBuf> = script
        .said
        .iter()
        .filter_map(|l| l.strip_prefix("SHOT "))
        .map(std::path::PathBuf::from)
        .collect();
    assert!(files.len() >= 12, "screenshots: {files:?}");
    for f in &files {
        let bytes = std::fs::read(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        assert!(
            bytes.len() > 1000 && bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
            "{} is not a PNG",
            f.display()
        );
    }
    gw.stop().await;
    eprintln!(
        "browser test: {} screenshots in {} after {:.1} s",
        files.len(),
        shots.display(),
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_in_chromium_hears_the_greeting_keys_a_category_and_is_recorded() {
    let _one = CHROMIUM.lock().await;
    let dir = repo().join("tests/browser");
    assert!(
        dir.join("node_modules/playwright-core").is_dir(),
        "playwright-core is missing: npm ci --prefix tests/browser (scripts/test.sh does it)"
    );
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists(),
        "Chromium is missing: apt-get install chromium (scripts/test.sh does it)"
    );
    let gw = Gateway::start(settings()).await;
    let shots = repo().join("target/caller-screenshots");
    let _ = std::fs::remove_dir_all(&shots);
    let mic = repo().join("tests/fixtures/speech.wav");
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new("node")
            .arg(dir.join("caller.mjs"))
            .arg("--base")
            .arg(format!("http://{}", gw.http))
            .arg("--mic")
            .arg(&mic)
            .arg("--shots")
            .arg(&shots)
            .args(["--key", "1", "--step-timeout-ms", "30000"])
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the caller script ends within 2 minutes")
    .expect("node runs (Debian's nodejs)");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "caller.mjs failed:\n{stderr}\nstdout:\n{}",
        stdout.chars().take(4000).collect::<String>()
    );
    let said = |prefix: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix} from the script"))
            .to_string()
    };
    // What the page heard is the greeting.
    let heard: Vec<f64> = said("HEARD ")
        .split(',')
        .map(|v| v.parse().unwrap())
        .collect();
    let greeting = envelope(&wav(&repo().join("config/prompts/greeting.wav")));
    assert!(heard.len() > greeting.len(), "heard {} frames", heard.len());
    // Chromium's jitter buffer stretches and squeezes the audio when the
    // machine is busy: the greeting is found in four parts, in order, each
    // within 200 ms of where the one before it ended.
    let c = aligned_correlation(&heard, &greeting, 4, 20);
    let other = envelope(&wav(&repo().join("config/prompts/partner_promise.wav")));
    let o = aligned_correlation(&heard, &other[..greeting.len().min(other.len())], 4, 20);
    eprintln!("browser caller: the greeting heard, correlation {c:.3} (a prompt never played: {o:.3}; whole-greeting {:.3})", best_correlation(&heard, &greeting));
    assert!(c >= 0.7, "the page heard the greeting: correlation {c:.3}");
    // The ticket the page showed: from the web, a lead, recorded.
    let number = said("TICKET ");
    let store = gw.store.clone();
    let n = number.clone();
    eventually(
        "the call's ticket recorded",
        Duration::from_secs(20),
        || async {
            store.get(&n).await.is_ok_and(|t| {
                !t.register.recordings.is_empty()
                    && t.register.intake.category == Some(hotline::tickets::model::Category::Lead)
            })
        },
    )
    .await;
    let t = gw.store.get(&number).await.unwrap();
    assert_eq!(t.register.caller.channel.as_deref(), Some("web"));
    // The recording's caller side is the fake microphone's audio (the file
    // loops; compare three seconds of the recording with it).
    let samples = wav(std::path::Path::new(&t.register.recordings[0].path));
    let left: Vec<i16> = samples.iter().step_by(2).copied().collect();
    let recorded = envelope(&left);
    assert!(recorded.len() > 500, "{} frames recorded", recorded.len());
    let speech = envelope(&wav(&mic));
    let looped: Vec<f64> = speech.iter().chain(speech.iter()).copied().collect();
    let window = &recorded[200..500];
    let c = aligned_correlation(&looped, window, 3, 20);
    eprintln!(
        "browser caller: microphone whole-window {:.3}",
        best_correlation(&looped, window)
    );
    assert!(
        c >= 0.8,
        "the microphone's audio is recorded: correlation {c:.3}"
    );
    eprintln!("browser caller: the microphone recorded, correlation {c:.3}");
    let files: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("SHOT "))
        .collect();
    assert!(files.len() >= 4, "screenshots: {files:?}");
    gw.stop().await;
}

/// A node script of `tests/browser` started with `args`, its stdout read as
/// lines and its stderr kept.
fn node(script: &str, args: &[String]) -> (tokio::process::Child, Script) {
    let mut child = tokio::process::Command::new("node")
        .arg(repo().join("tests/browser").join(script))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs (Debian's nodejs)");
    let stderr = Arc::new(Mutex::new(String::new()));
    let mut err_pipe = child.stderr.take().unwrap();
    let err_buf = stderr.clone();
    let stderr_task = tokio::spawn(async move {
        let mut buf = [0u8; 4096];
        while let Ok(n) = err_pipe.read(&mut buf).await {
            if n == 0 {
                break;
            }
            err_buf
                .lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    let script = Script {
        lines: BufReader::new(child.stdout.take().unwrap()).lines(),
        said: Vec::new(),
        stderr,
        stderr_task: Some(stderr_task),
    };
    (child, script)
}

/// The command center's board in Chromium (issue 20, item 1): the director
/// logs in, sees the call in progress and a lead received six minutes ago
/// with its 签收 clock red past five minutes; acknowledged meanwhile, it
/// moves to 已签收 live; wall and phone screenshots. An officer gets 403.
/// Issue 32: a consultation (its handler and answer deadline, no
/// five-minute clock), two partner calls with their pickup clocks (one
/// with time left, one past: red), three leads on one case (本案7日内第N次
/// 举报, the third sent to the first one's officers, the first dispatched
/// and overdue on scene: 超时未到场), and their figures in the statistics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_board_shows_calls_and_the_five_minute_clock_live() {
    use hotline::tickets::actions;
    use hotline::tickets::model::{Category, Intake, Register};
    let _one = CHROMIUM.lock().await;
    assert!(
        repo()
            .join("tests/browser/node_modules/playwright-core")
            .is_dir(),
        "playwright-core is missing: npm ci --prefix tests/browser (scripts/test.sh does it)"
    );
    let mut s = settings();
    s.roster.file = roster();
    s.media.timeout_seconds = 300;
    let gw = Gateway::start(s).await;
    for m in ["m-chen", OFFICER] {
        hotline::api::auth::set_pin(&gw.store, m, PIN)
            .await
            .unwrap();
    }
    // A lead reported six minutes ago, open, not acknowledged.
    let six_ago = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(360);
    let t = hotline::tickets::store::NewTicket {
        call_id: "board-late@t".into(),
        call: "board-late".into(),
        received_at: six_ago,
        register: Register {
            intake: Intake {
                category: Some(Category::Lead),
                ..Default::default()
            },
            ..Default::default()
        },
    };
    let (late, _) = gw.store.create(&t, "gateway").await.unwrap();
    let mut open = hotline::tickets::model::Change::new("gateway", "call_ended");
    open.to = Some(State::Open);
    gw.store.change(&late, &open, |_| {}).await.unwrap();
    // Issue 32's kinds, each as the clocks would have left it.
    let now = jiff::Timestamp::now();
    let ago = |m: i64| now - jiff::SignedDuration::from_mins(m);
    // A consultation for 赵法官, to be answered in two days; its deadline
    // as the board must write it, in Qingdao.
    let answer_by = now + jiff::SignedDuration::from_hours(48);
    let consultation = seed_opened(&gw.store, "board-ask", Category::Consultation, now, |r| {
        r.intake.case_number = Some("（2026）鲁0203执200号".into());
        r.triage.handler = Some("m-zhao".into());
        r.triage.case_known = Some(true);
        r.deadlines.answer_by = Some(answer_by);
    })
    .await;
    let answer_text = answer_by
        .to_zoned_datetime(hotline::court_time::court_tz())
        .strftime("%-m月%-d日 %H:%M")
        .to_string();
    // A partner's call now, the person to be collected within 25 minutes
    // (more than warn_minutes, 10: not red) ...
    let partner = seed_opened(&gw.store, "board-police", Category::Partner, now, |r| {
        r.intake.partner = Some("市北公安分局指挥中心".into());
        r.deadlines.pickup_by = Some(now + jiff::SignedDuration::from_mins(25));
    })
    .await;
    // ... and one 33 minutes ago whose pickup deadline passed 3 minutes ago.
    let partner_late = seed_opened(
        &gw.store,
        "board-police-late",
        Category::Partner,
        ago(33),
        |r| {
            r.intake.partner = Some("青岛市公安局交警支队".into());
            r.deadlines.pickup_by = Some(ago(3));
        },
    )
    .await;
    // Three leads on one case: the first dispatched 36 minutes ago and due
    // on scene 6 minutes ago, not there; the second linked to it; the
    // third linked to both and sent to the first one's officers.
    let case = "（2026）鲁0203执300号";
    let first = seed_opened(&gw.store, "board-case-1", Category::Lead, ago(40), |r| {
        r.intake.case_number = Some(case.into());
        r.deadlines.arrive_by = Some(ago(6));
    })
    .await;
    seed_dispatched(&gw.store, &first, ago(38), ago(36), None).await;
    let second = seed_opened(&gw.store, "board-case-2", Category::Lead, ago(20), |r| {
        r.intake.case_number = Some(case.into());
        r.triage.linked = vec![first.clone()];
    })
    .await;
    let third = seed_opened(&gw.store, "board-case-3", Category::Lead, ago(1), |r| {
        r.intake.case_number = Some(case.into());
        r.triage.linked = vec![first.clone(), second.clone()];
        r.triage.joined = Some(first.clone());
        r.triage.joined_officers = vec![OFFICER.into()];
    })
    .await;
    // A call in progress.
    let call = crate::helpers::TestCall::place(gw.udp, "board-call@t", 0).await;
    let in_call = ticket_of(&gw.store, "board-call@t").await;
    // The board's data is not an officer's.
    let api = crate::helpers::Api {
        base: format!("http://{}/api/v1", gw.http),
        http: crate::helpers::http_client(),
    };
    let officer = api.login(OFFICER, PIN).await;
    assert_eq!(api.call("GET", "/board", Some(&officer), None).await.0, 403);

    let shots = repo().join("target/board-screenshots");
    let _ = std::fs::remove_dir_all(&shots);
    let args: Vec<String> = [
        "--base",
        &format!("http://{}", gw.http),
        "--member",
        "m-chen",
        "--pin",
        PIN,
        "--shots",
        &shots.display().to_string(),
        "--late",
        &late,
        "--call",
        &in_call,
        "--consultation",
        &consultation,
        "--handler",
        "赵法官",
        "--answer-by",
        &answer_text,
        "--partner",
        &partner,
        "--partner-name",
        "市北公安分局指挥中心",
        "--partner-late",
        &partner_late,
        "--linked",
        &format!("{first},{second},{third}"),
        // Today's tickets: the late lead, the call, the consultation, two
        // partners, three leads.
        "--received",
        "8",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let (mut child, mut script) = node("board.mjs", &args);
    script.expect("READY", Duration::from_secs(90)).await;
    let ack = actions::acknowledge(OFFICER, None, jiff::Timestamp::now(), serde_json::json!({}));
    gw.store.act(&late, &ack).await.unwrap();
    // The statistics page's figures of the new kinds, worked out from the
    // tickets above: one consultation, neither answered nor overdue; two
    // partner calls, the late one missed; two linked reports, one joined;
    // one dispatch, past its arrival deadline with nobody on scene.
    let figures: serde_json::Value =
        serde_json::from_str(&script.expect("FIGURES", Duration::from_secs(90)).await).unwrap();
    for (figure, value) in [
        ("consultations.received", "1"),
        ("consultations.answered", "0"),
        ("consultations.overdue", "0"),
        ("consultations.working_days_median", "—"),
        ("partners.received", "2"),
        ("partners.collected_in_time", "0"),
        ("partners.missed", "1"),
        ("linked.reports", "2"),
        ("linked.joined", "1"),
        ("arrivals.dispatched", "1"),
        ("arrivals.never_arrived", "1"),
    ] {
        assert_eq!(figures[figure], value, "{figure}: {figures}");
    }
    script.expect("DONE", Duration::from_secs(90)).await;
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("the script exits after DONE")
        .unwrap();
    if !status.success() {
        script.fail(&format!("exited with {status}")).await;
    }
    let files: Vec<_> = std::fs::read_dir(&shots).unwrap().flatten().collect();
    assert_eq!(
        files.len(),
        6,
        "wall, the new kinds (the whole page), wall acknowledged, phone, statistics, register"
    );
    // The register's two entries in Redis, the second correcting the first.
    let today = jiff::Timestamp::now()
        .to_zoned_datetime(hotline::court_time::court_tz())
        .date();
    // (Today's, or yesterday's if midnight passed in Qingdao meanwhile.)
    let mut entries = gw
        .store
        .activities(today.yesterday().unwrap())
        .await
        .unwrap();
    entries.extend(gw.store.activities(today).await.unwrap());
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_eq!(entries[1].corrects.as_deref(), Some(entries[0].id.as_str()));
    call.hangup().await;
    gw.stop().await;
}
