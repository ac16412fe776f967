//! A smoke run of the load harness (benches/load/run.sh): a few full calls
//! against this build's binary, with a real redis-server and SIPp. It keeps
//! the harness working; it times nothing (benchmarks are not tests).

use std::process::{Command, Stdio};
use std::time::Duration;
#[allow(clippy::disallowed_types)]
use std::time::Instant;

use crate::helpers::{repo, tempfile_dir};

// A plain test (no runtime): it waits on the harness's process.
#[allow(clippy::disallowed_types, clippy::disallowed_methods)]
#[test]
fn load_harness_places_full_calls_and_finds_them_recorded() {
    let dir = tempfile_dir("load");
    let json = dir.join("result.json");
    let mut child = Command::new("bash")
        .arg(repo().join("benches/load/run.sh"))
        // A first wave of one call: the run's figures leave it out.
        .args([
            "run", "--name", "smoke", "--calls", "3", "--rate", "3", "--warm", "1",
        ])
        .args(["--message", "0", "--bin", env!("CARGO_BIN_EXE_hotline")])
        .arg("--json")
        .arg(&json)
        .env("TMPDIR", &dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bash runs the harness");
    // One call of ~15 s and its rest (12 s), then three placed within a
    // second: bounded at 180 s.
    // On timeout SIGTERM lets the script stop what it started.
    let end = Instant::now() + Duration::from_secs(180);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if Instant::now() > end {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            std::thread::sleep(Duration::from_secs(5));
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let out = child.wait_with_output().unwrap();
    let log = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        status.is_some_and(|s| s.success()),
        "the harness finishes within 180 s: {log}"
    );
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("result JSON")).unwrap();
    assert_eq!(r["attempted"], 3, "{r:#}");
    assert_eq!(r["answered"], 3, "{r:#}");
    assert_eq!(r["failed"], 0, "{r:#}");
    assert_eq!(r["gateway_bye"], 3, "the intake ran to its end: {r:#}");
    assert_eq!(r["recordings"], 3, "{r:#}");
    assert_eq!(r["gateway_ended"]["intake_complete"], 3, "{r:#}");
    assert_eq!(r["warm_calls"], 1, "{r:#}");
    assert!(r["rss_cold_mb"].as_f64().unwrap() > 0.0, "{r:#}");
    // Each call reported a case of its own, as the gateway logged them.
    assert_eq!(r["case_numbers"], 3, "{r:#}");
    assert_eq!(r["distinct_cases"], 3, "{r:#}");
    let expected = r["rtp_expected"].as_f64().unwrap();
    let written = r["rtp_written"].as_f64().unwrap();
    assert!(expected > 0.0, "{r:#}");
    // Loopback loses nothing; the tolerance is for a slow debug build on a
    // busy machine (a packet or two per call landing late).
    assert!(
        written >= expected * 0.99,
        "recordings hold the RTP sent: {written} of {expected}: {r:#}"
    );
    for k in ["trying_ms", "answer_ms"] {
        assert_eq!(r[k]["n"], 3, "{k} measured for every call: {r:#}");
    }
    // The keys went as SIP INFO (no raw socket), and the figures a reader
    // scales from are there: CPU per call, call-seconds, the allocator's.
    assert_eq!(r["keys"], "info", "{r:#}");
    assert!(r["call_seconds"].as_f64().unwrap() > 3.0, "{r:#}");
    assert!(r["cpu_us_per_call"].as_u64().unwrap() > 0, "{r:#}");
    for when in ["cold", "before", "after"] {
        assert!(
            r["allocator_mb"][when]["resident"].as_f64().unwrap() > 0.0,
            "jemalloc's resident bytes on /metrics at {when}: {r:#}"
        );
        // RSS by mapping: the binary's own pages and the anonymous ones.
        for kind in ["binary", "anonymous"] {
            assert!(
                r["rss_mappings"][when][kind].as_f64().unwrap() > 0.0,
                "{kind} pages resident at {when}: {r:#}"
            );
        }
    }
    assert!(r["cpu_s"].as_f64().unwrap() > 0.0, "{r:#}");
    assert!(r["rss_peak_mb"].as_f64().unwrap() > 0.0, "{r:#}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_kill_loop_loses_no_ticket_and_no_recording() {
    // benches/killloop/run.py's short run with this build's binary: three
    // kill -9 under SIPp's calls, then the final start. Bounded: 3 cycles
    // of at most 8 s, and the final start.
    let dir = tempfile_dir("killloop");
    let json = dir.join("report.json");
    let out = Command::new("python3")
        .arg(repo().join("benches/killloop/run.py"))
        .args([
            "--cycles",
            "3",
            "--rate",
            "10",
            "--bin",
            env!("CARGO_BIN_EXE_hotline"),
        ])
        .arg("--json")
        .arg(&json)
        .stdin(Stdio::null())
        .output()
        .expect("python3 runs the kill loop");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert!(r["calls_answered"].as_u64().unwrap() > 0, "{r}");
    assert_eq!(r["lost"], 0, "{r}");
    assert_eq!(r["duplicates"], 0, "{r}");
    assert_eq!(r["readable"], r["recordings"], "{r}");
    assert_eq!(r["verified"], r["recordings"], "{r}");
    assert_eq!(r["not_final"], 0, "{r}");
    assert_eq!(r["answering_again_ms"]["starts"], 4, "{r}");
    let _ = std::fs::remove_dir_all(dir);
}
