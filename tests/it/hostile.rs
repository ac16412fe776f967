//! Hostile traffic: the datagram that used to kill the SIP thread, a thread
//! that dies anyway, an INVITE flood from many addresses, a scanner. The
//! line stays up for real callers throughout.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UdpSocket};

use crate::helpers::*;

async fn options_answered(gw: SocketAddr, from: &UdpSocket, id: &str) -> bool {
    let me = from.local_addr().unwrap();
    from.send_to(options(id, me).as_bytes(), gw).await.unwrap();
    while let Some(m) = recv(from, Duration::from_secs(3)).await {
        if status_of(&m) == Some(200) && String::from_utf8_lossy(&m).contains(id) {
            return true;
        }
    }
    false
}

/// The 20-byte datagram of issue 13, over UDP and over TCP.
const KILLER: &[u8] = b"OPTIONS sip:a@b SIP\xc3\xa9\r\n\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_datagram_that_killed_the_sip_thread_costs_nothing() {
    let gw = Gateway::start(settings()).await;
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for _ in 0..3 {
        sock.send_to(KILLER, gw.udp).await.unwrap();
    }
    let mut tcp = TcpStream::connect(gw.tcp).await.unwrap();
    tcp.write_all(KILLER).await.unwrap();
    tcp.write_all(KILLER).await.unwrap();
    assert!(options_answered(gw.udp, &sock, "after-killer").await);
    let call = TestCall::place(gw.udp, "after-killer-call@test", 8).await;
    hears_the_greeting(&call).await;
    call.hangup().await;
    let (status, body) = gw.get("/healthz").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"sip\":true"), "{body}");
    assert_eq!(gw.metrics.get("sip_panics"), 0);
    assert!(
        gw.metrics.get("sip_malformed_dropped") >= 3,
        "no Via: dropped, counted"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_sip_thread_fails_health_and_exits_non_zero() {
    let redis = Redis::start("everysec").await;
    let dir = tempfile_dir("fault");
    let roster = test_roster(&offline(&test_roster_text()));
    let config = write_config(&dir, &redis, &roster, "");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_hotline"));
    child.env("HOTLINE_FAULT_INJECTION", "1");
    let gw = Process::start_command(child, &config);
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    assert!(options_answered(gw.udp, &sock, "before-fault").await);
    let http = gw.http;
    let health = || http_get(http, "/healthz");
    assert_eq!(health().await.map(|h| h.0), Some(200));
    sock.send_to(hotline::sip::transport::FAULT_DATAGRAM, gw.udp)
        .await
        .unwrap();
    // Health says so while the process is still there...
    let mut seen = None;
    let end = tokio::time::Instant::now() + Duration::from_secs(5);
    while tokio::time::Instant::now() < end {
        if let Some((code, body)) = health().await {
            if code == 503 {
                seen = Some(body);
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let body = seen.expect("/healthz answered 503 after the SIP thread died");
    assert!(body.contains("\"sip\":false"), "{body}");
    assert!(body.contains("\"status\":\"failed\""), "{body}");
    // ...then it exits non-zero, for systemd to restart it.
    let (status, log) = exit_within(gw, Duration::from_secs(10))
        .await
        .expect("the gateway exits within 10 s");
    assert!(!status.success(), "non-zero exit: {status:?}");
    assert!(log.contains("the SIP thread ended unexpectedly"), "{log}");
    assert!(log.contains("task=sip"), "{log}");
}

/// How the gateway exited within `limit`, and what it logged.
async fn exit_within(
    mut gw: Process,
    limit: Duration,
) -> Option<(std::process::ExitStatus, String)> {
    // On the blocking pool: a wall-clock bound on a child process.
    #[allow(clippy::disallowed_types, clippy::disallowed_methods)]
    tokio::task::spawn_blocking(move || {
        let end = std::time::Instant::now() + limit;
        loop {
            if let Some(s) = gw.child.try_wait().unwrap() {
                return Some((s, gw.log.lock().unwrap().clone()));
            }
            if std::time::Instant::now() > end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    })
    .await
    .unwrap()
}

/// `/healthz` within 5 s as `want` would have it (polled every 20 ms).
async fn health_until(http: SocketAddr, want: impl Fn(u16, &str) -> bool) -> Option<(u16, String)> {
    let end = tokio::time::Instant::now() + Duration::from_secs(5);
    while tokio::time::Instant::now() < end {
        if let Some((code, body)) = http_get(http, "/healthz").await {
            if want(code, &body) {
                return Some((code, body));
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

/// Each long-lived task, made to panic through the admin socket's `fault
/// NAME` (debug builds, `HOTLINE_FAULT_INJECTION=1`), one gateway process
/// each: the gateway logs the task's name as ended, `/healthz` answers 503
/// `failed` naming it (not once the HTTP server is the one gone), and the
/// process exits non-zero.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_dead_task_is_named_fails_health_and_exits_non_zero() {
    let redis = Redis::start("everysec").await;
    let roster = test_roster(&offline(&test_roster_text()));
    // Every optional task on (follow-ups call through a trunk: nobody's;
    // the channel watch with nothing on its schedule).
    let extra = "[follow_up]\nenabled = true\n[registrar]\n[webrtc]\nenabled = true\n\
[trunk]\nproxy = \"127.0.0.1:9\"\nfrom_user = \"053212368\"\n\
[transcribe]\n[watch]\ntrunk_options_seconds = 0\nwebhook_test_at = \"off\"\nsoftphone_check_seconds = 0\nduty_check_at = \"off\"\n";
    for name in [
        "handover",
        "digest",
        "follow-ups",
        "retention",
        "reloads",
        "paging",
        "tickets",
        "registrar",
        "key-check",
        "web-pruning",
        "watch",
        "replies",
        "swaps",
        "reminders",
        "transcribe",
        "allocator",
        "http",
    ] {
        let dir = tempfile_dir(&format!("fault-{name}"));
        let config = write_config(&dir, &redis, &roster, extra);
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_hotline"));
        child.env("HOTLINE_FAULT_INJECTION", "1");
        let gw = Process::start_command(child, &config);
        let http = gw.http;
        let up = health_until(http, |code, _| code == 200).await;
        assert!(up.is_some(), "{name}: the gateway never got healthy");
        let answer = admin(&dir.join("journal/admin.sock"), &format!("fault {name}")).await;
        assert!(answer.starts_with("ok\n"), "{name}: {answer}");
        if name != "http" {
            let failed = format!("\"failed\":\"{name}\"");
            let seen = health_until(http, |code, body| code == 503 && body.contains(&failed)).await;
            let (_, body) = seen.unwrap_or_else(|| panic!("{name}: no 503 naming it"));
            assert!(body.contains("\"status\":\"failed\""), "{name}: {body}");
            assert!(body.contains("\"sip\":false"), "{name}: {body}");
        }
        let (status, log) = exit_within(gw, Duration::from_secs(10))
            .await
            .unwrap_or_else(|| panic!("{name}: the gateway exits within 10 s"));
        assert!(!status.success(), "{name}: non-zero exit: {status:?}");
        assert!(log.contains(&format!("task={name}")), "{name}: {log}");
        assert!(log.contains("ended unexpectedly"), "{name}: {log}");
        assert!(log.contains("fault injected"), "{name}: {log}");
    }
}

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap()
}

fn flood_invite(from: SocketAddr, n: u32) -> String {
    Invite::new(&format!("storm{n}@{from}"), from)
        .branch(format!("z9hG4bK-flood-{n}"))
        .from("<sip:flood@127.0.0.1>")
        .tag(format!("storm{n}"))
        .media("m=audio 9 RTP/AVP 8\r\n")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invite_flood_from_many_addresses_silences_nobody() {
    let redis = Redis::start("everysec").await;
    let dir = tempfile_dir("flood");
    let roster = test_roster(&offline(&test_roster_text()));
    // The defaults: nobody trusted, 5 INVITEs a second per source.
    let config = write_config(&dir, &redis, &roster, "");
    let gw = Process::start(&config);
    let store = hotline::tickets::Store::connect(&redis.url(), "hotline:").unwrap();
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    assert!(options_answered(gw.udp, &sock, "warm-up").await);
    let rss_before = rss_kib(gw.child.id());

    // 200 INVITEs a second from 127.0.0.2-21 for 5 s, never acknowledged
    // (bounded: 1,000 datagrams).
    let mut flooders = Vec::new();
    for i in 2..22u8 {
        flooders.push(
            UdpSocket::bind((std::net::Ipv4Addr::new(127, 0, 0, i), 0))
                .await
                .unwrap(),
        );
    }
    let target = gw.udp;
    let flood = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(5));
        for n in 0..1000u32 {
            tick.tick().await;
            let s = &flooders[n as usize % flooders.len()];
            let me = s.local_addr().unwrap();
            let _ = s.send_to(flood_invite(me, n).as_bytes(), target).await;
        }
    });
    // Meanwhile, real calls from 127.0.0.1: every one answered and confirmed.
    let mut real = Vec::new();
    for i in 0..8 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let call_id = format!("real-{i}@during-flood");
        let call = TestCall::place(gw.udp, &call_id, 8).await;
        hears_the_greeting(&call).await;
        call.hangup().await;
        real.push(call_id);
    }
    flood.await.unwrap();
    for call_id in &real {
        ticket_of(&store, call_id).await;
    }
    // No ticket from the flood: none was ever confirmed.
    let dump = redis_dump(&store).await;
    let left: Vec<&str> = dump.lines().filter(|l| l.contains("storm")).collect();
    assert!(
        left.is_empty(),
        "a flood INVITE left something in Redis: {left:?}"
    );
    let tickets = store.list("all", 100).await.unwrap();
    assert_eq!(
        tickets.len(),
        real.len(),
        "a ticket for each real call, none else"
    );
    let rss_after = rss_kib(gw.child.id());
    println!("flood: RSS {rss_before} KiB before, {rss_after} KiB after");
    assert!(
        rss_after * 2 <= rss_before * 3,
        "RSS {rss_before} KiB before, {rss_after} KiB after the flood"
    );
    let log = gw.log.lock().unwrap().clone();
    let banned: std::collections::BTreeSet<&str> = log
        .lines()
        .filter_map(|l| l.split("SECURITY event=banned src=").nth(1))
        .filter_map(|r| r.split(' ').next())
        .collect();
    assert!(
        banned.len() >= 15
            && banned
                .iter()
                .all(|a| a.starts_with("127.0.0.") && *a != "127.0.0.1"),
        "the flooders are banned, nobody else: {banned:?}"
    );
    assert!(
        log.contains("SECURITY event=rate_limited src=127.0.0."),
        "limit hits logged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sipvicious_scan_is_not_answered() {
    let gw = Gateway::start(settings()).await;
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let me = sock.local_addr().unwrap();
    // svwar -m INVITE: one INVITE per extension, User-Agent friendly-scanner.
    for ext in 100..150 {
        let m = Invite::new(&format!("scan{ext}"), me)
            .to(
                &format!("sip:{ext}@127.0.0.1"),
                &format!("\"{ext}\" <sip:{ext}@127.0.0.1>"),
            )
            .branch(format!("z9hG4bK-scan{ext}"))
            .rport()
            .from(&format!("\"{ext}\" <sip:{ext}@127.0.0.1>"))
            .tag(format!("scan{ext}"))
            .headers("User-Agent: friendly-scanner\r\nAccept: application/sdp\r\n")
            .without_sdp()
            .to_string();
        sock.send_to(m.as_bytes(), gw.udp).await.unwrap();
    }
    // The probe for the scanner's own "is anyone there" OPTIONS.
    let probe = options("scan-probe", me).replace(
        "Content-Length: 0",
        "User-Agent: friendly-scanner\r\nContent-Length: 0",
    );
    sock.send_to(probe.as_bytes(), gw.udp).await.unwrap();
    // An ordinary OPTIONS after them is answered, and it is the first
    // answer: everything before it was handled, none of it answered.
    sock.send_to(options("after-scan", me).as_bytes(), gw.udp)
        .await
        .unwrap();
    let first = recv(&sock, Duration::from_secs(5))
        .await
        .expect("an answer");
    let first = String::from_utf8_lossy(&first);
    assert!(
        first.starts_with("SIP/2.0 200 OK\r\n") && first.contains("after-scan"),
        "{first}"
    );
    assert_eq!(gw.metrics.get("sip_scanner_dropped"), 51);
    assert_eq!(gw.metrics.get("calls_offered"), 0);
    assert!(gw.store.list("all", 10).await.unwrap().is_empty());
    gw.stop().await;
}
