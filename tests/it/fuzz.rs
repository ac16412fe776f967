//! A mutation fuzzer on the stable toolchain: seeds from the RFC 4475/5118
//! torture corpus, the crashers found before (`tests/fixtures/fuzz/`) and
//! messages of our own (CJK, emoji, invalid UTF-8, NUL, oversized), mutated
//! and fed to `message::parse`, `message::frame` and `Core::on_message`
//! (sans-IO, so hundreds of thousands a minute), with calls answered and
//! placed so that dialogs, re-INVITEs and responses are reached too.
//!
//! In the suite it runs a seeded, bounded amount. `scripts/fuzz.sh SECONDS
//! [SEED]` runs it in a release build for as long as asked
//! (`HOTLINE_FUZZ_SECONDS`, `HOTLINE_FUZZ_SEED`); an input that panics is
//! saved under `tests/fixtures/fuzz/` (a seed from then on) and fails the run.

use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hotline::sip::admission::AdmissionConfig;
use hotline::sip::core::{CallCommand, CallEvent, Core, CoreConfig, Dial, Link, Output, Peer};
use hotline::sip::message::{self, Limits};
use hotline::sip::metrics::SipMetrics;
use tokio::time::Instant;

use crate::helpers::repo;

/// xorshift64*: small, seeded, the same sequence on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, one_in: u64) -> bool {
        self.next() % one_in == 0
    }
}

/// Tokens that matter to a SIP parser.
const DICTIONARY: &[&[u8]] = &[
    b"\r\n",
    b"\r\n\r\n",
    b"\n",
    b"\r",
    b"\0",
    b" ",
    b"\t",
    b":",
    b";",
    b",",
    b"<",
    b">",
    b"\"",
    b"\\",
    b"@",
    b"[",
    b"]",
    b"=",
    b"/",
    b"%00",
    b"SIP/2.0",
    b"SIP/",
    b"SIP/2.0/UDP ",
    b"SIP/2.0/TCP ",
    b"z9hG4bK",
    b";branch=",
    b";tag=",
    b";rport",
    b";received=",
    b";lr",
    b"sip:",
    b"sips:",
    b"tel:",
    b"[::1]",
    b"[2001:db8::1]:5060",
    b"Via: ",
    b"v: ",
    b"From: ",
    b"To: ",
    b"Call-ID: ",
    b"CSeq: ",
    b"Contact: ",
    b"Record-Route: ",
    b"Route: ",
    b"Max-Forwards: ",
    b"Content-Length: ",
    b"l: ",
    b"Content-Type: application/sdp",
    b"Require: 100rel",
    b"User-Agent: friendly-scanner",
    b"Content-Length: 99999999",
    b"Content-Length: -1",
    b"4294967296",
    b"2147483648",
    b"0",
    b"99999999999999999999",
    b"INVITE",
    b"ACK",
    b"BYE",
    b"CANCEL",
    b"OPTIONS",
    b"INFO",
    b"m=audio 0 RTP/AVP 0 8 101",
    b"a=rtpmap:101 telephone-event/8000",
    b"c=IN IP6 ::1",
    b"\xc3\xa9",
    b"\xe4\xb8\xad\xe6\x96\x87",
    b"\xf0\x9f\x98\x80",
    b"\xc3",
    b"\xe4\xb8",
    b"\xff\xfe",
    b"\xed\xa0\x80",
];

const SDP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n";

fn request(method: &str, n: u64, to_tag: &str, body: &str, display: &str) -> Vec<u8> {
    let ctype = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\r\n"
    };
    format!(
        "{method} sip:12368@127.0.0.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK{n};rport\r\n\
Via: SIP/2.0/TCP 10.0.0.1:5060;branch=z9hG4bKproxy{n}\r\n\
Record-Route: <sip:127.0.0.1:5070;lr>, <sip:10.0.0.1;lr;transport=tcp>\r\n\
Max-Forwards: 70\r\n\
From: \"{display}\" <sip:13800000000@127.0.0.1>;tag=f{n}\r\n\
To: <sip:12368@127.0.0.1>{to_tag}\r\n\
Call-ID: fuzz-{n}@127.0.0.1\r\n\
CSeq: {} {method}\r\n\
Contact: <sip:13800000000@127.0.0.1:5062>\r\n\
P-Asserted-Identity: <tel:+8613800000000>\r\n\
Privacy: none\r\n\
User-Agent: fuzz\r\n\
{ctype}Content-Length: {}\r\n\r\n{body}",
        n % 1000 + 1,
        body.len()
    )
    .into_bytes()
}

/// Seeds: the torture corpus, earlier crashers, and our own.
fn seeds() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for dir in ["rfc4475", "rfc5118", "fuzz"] {
        let Ok(entries) = std::fs::read_dir(repo().join("tests/fixtures").join(dir)) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        files.sort();
        for f in files {
            if let Ok(b) = std::fs::read(&f) {
                out.push(b);
            }
        }
    }
    for (i, display) in ["张三", "😀 caller", "Zhang San", ""].iter().enumerate() {
        let n = i as u64;
        out.push(request("INVITE", n, "", SDP, display));
        out.push(request("OPTIONS", n, "", "", display));
        out.push(request("BYE", n, ";tag=x", "", display));
        out.push(request("CANCEL", n, "", "", display));
        out.push(request("INFO", n, ";tag=x", "", display));
    }
    // A softphone's REGISTER with credentials and several contacts.
    out.push(
        String::from_utf8(request("REGISTER", 11, "", "", "p-sun"))
            .unwrap()
            .replacen(
                "Max-Forwards",
                "Authorization: Digest username=\"p-sun\", realm=\"hotline\", nonce=\"0000000065f0a1b2aa\", uri=\"sip:127.0.0.1\", response=\"6629fae49393a05397450978507c4ef1\", qop=auth, nc=00000001, cnonce=\"c0\"\r\nContact: <sip:p-sun@10.0.0.2:5060;ob>;expires=60, sip:p-sun@10.0.0.3;expires=0\r\nExpires: 120\r\nMax-Forwards",
                1,
            )
            .into_bytes(),
    );
    let mut latin1 = request("INVITE", 9, "", SDP, "caller");
    latin1.extend_from_slice(b"\xe9\xe8\x00\xff");
    out.push(latin1);
    let big = format!("X-Pad: {}\r\n", "a".repeat(20_000));
    out.push(
        String::from_utf8(request("INVITE", 10, "", SDP, "x"))
            .unwrap()
            .replacen("Max-Forwards", &format!("{big}Max-Forwards"), 1)
            .into_bytes(),
    );
    out.push(
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: r\r\nCSeq: 1 INVITE\r\nContact: <sip:c@127.0.0.1>\r\nRecord-Route: <sip:127.0.0.1:5070;lr>\r\nContent-Length: 0\r\n\r\n"
            .to_vec(),
    );
    out
}

fn mutate(rng: &mut Rng, seed: &[u8], others: &[Vec<u8>]) -> Vec<u8> {
    let mut d = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = d.len().max(1);
        match rng.below(10) {
            0 => {
                if !d.is_empty() {
                    let i = rng.below(d.len());
                    d[i] ^= 1 << rng.below(8);
                }
            }
            1 => {
                if !d.is_empty() {
                    let i = rng.below(d.len());
                    d[i] = [0u8, 0xff, b'\r', b'\n', b':', b';', b' ', 0xc3, 0x80, b'"']
                        [rng.below(10)];
                }
            }
            2 | 3 => {
                let t = DICTIONARY[rng.below(DICTIONARY.len())];
                let i = rng.below(len);
                let i = i.min(d.len());
                d.splice(i..i, t.iter().copied());
            }
            4 => {
                let a = rng.below(len).min(d.len());
                let b = (a + rng.below(64)).min(d.len());
                d.drain(a..b);
            }
            5 => {
                // Repeat a slice (a header many times, an oversized value).
                let a = rng.below(len).min(d.len());
                let b = (a + 1 + rng.below(200)).min(d.len());
                let piece = d[a..b].to_vec();
                for _ in 0..rng.below(50) {
                    d.splice(b..b, piece.iter().copied());
                }
            }
            6 => {
                // Splice in a piece of another seed.
                let o = &others[rng.below(others.len())];
                if !o.is_empty() {
                    let a = rng.below(o.len());
                    let b = (a + rng.below(300)).min(o.len());
                    let i = rng.below(len).min(d.len());
                    d.splice(i..i, o[a..b].iter().copied());
                }
            }
            7 => d.truncate(rng.below(len)),
            8 => {
                // A number replaced by an extreme one.
                if let Some(i) = d.iter().position(|b| b.is_ascii_digit()).map(|p| {
                    let skip = rng.below(d.len().saturating_sub(p).max(1));
                    (p + skip).min(d.len() - 1)
                }) {
                    let t: &[u8] =
                        [&b"0"[..], b"4294967295", b"65536", b"99999999999", b"-1"][rng.below(5)];
                    d.splice(i..(i + 1).min(d.len()), t.iter().copied());
                }
            }
            _ => {
                // Swap two lines.
                let lines: Vec<usize> = d
                    .windows(2)
                    .enumerate()
                    .filter(|(_, w)| w == b"\r\n")
                    .map(|(i, _)| i + 2)
                    .collect();
                if lines.len() > 2 {
                    let a = lines[rng.below(lines.len() - 1)];
                    let b = lines[rng.below(lines.len() - 1)];
                    let (a, b) = (a.min(b), a.max(b));
                    let end_a = d[a..].windows(2).position(|w| w == b"\r\n").map(|p| a + p);
                    if let Some(end_a) = end_a.filter(|e| *e <= b) {
                        let line = d[a..end_a].to_vec();
                        d.drain(a..end_a);
                        let at = b - (end_a - a);
                        d.splice(at..at, line);
                    }
                }
            }
        }
    }
    d.truncate(70_000);
    d
}

fn peer(rng: &mut Rng, tcp: bool) -> Peer {
    let addr: SocketAddr = match rng.below(3) {
        0 => "[::1]:5062".parse().unwrap(),
        _ => SocketAddr::from(([127, 0, rng.below(4) as u8, 1 + rng.below(8) as u8], 5062)),
    };
    Peer {
        link: if tcp { Link::Tcp(1) } else { Link::Udp(0) },
        addr,
        local: "127.0.0.1:5060".parse().unwrap(),
    }
}

/// The outcome of a run.
pub struct Run {
    pub mutants: u64,
    pub crashes: Vec<(String, Vec<u8>)>,
}

/// Mutates and feeds inputs until `count` or `limit`, whichever comes first.
/// CPU-bound and synchronous: `limit` is on the wall clock.
#[allow(clippy::disallowed_types)]
pub fn run(seed: u64, count: u64, limit: Duration) -> Run {
    let seeds = seeds();
    assert!(seeds.len() > 60, "the torture corpus is there");
    let mut rng = Rng(seed | 1);
    let limits = Limits::default();
    let started = std::time::Instant::now();
    let mut crashes = Vec::new();
    let mut mutants = 0u64;
    let mut batch = 0u64;
    while mutants < count && started.elapsed() < limit {
        batch += 1;
        // A fresh core every batch; every other batch with the default
        // limits (bans, scanners), the others trusting everyone so the
        // parser and dialogs are reached, not the ban.
        let metrics = Arc::new(SipMetrics::default());
        let admission = if batch % 2 == 0 {
            AdmissionConfig::default()
        } else {
            AdmissionConfig {
                trusted: vec!["0.0.0.0/0".parse().unwrap(), "::/0".parse().unwrap()],
                ..AdmissionConfig::default()
            }
        };
        let mut core = Core::new(
            CoreConfig {
                max_calls: 50,
                admission,
                // REGISTERs reach the registrar's hand-over in two batches of three.
                registrar: batch % 3 != 0,
                ..CoreConfig::default()
            },
            metrics.clone(),
        );
        let mut now = Instant::now();
        core.on_connected(1, now);
        let mut tags: Vec<(u64, String)> = Vec::new();
        for _ in 0..500 {
            if mutants >= count {
                break;
            }
            mutants += 1;
            let base = &seeds[rng.below(seeds.len())];
            let data = if rng.chance(20) {
                // An unmutated call first, so that in-dialog mutants match.
                let n = rng.next() % 1_000_000;
                request("INVITE", n, "", SDP, "caller")
            } else if !tags.is_empty() && rng.chance(3) {
                let (n, tag) = &tags[rng.below(tags.len())];
                let method = ["ACK", "BYE", "INFO", "INVITE", "CANCEL"][rng.below(5)];
                let body = if method == "INVITE" { SDP } else { "" };
                let m = request(method, *n, &format!(";tag={tag}"), body, "caller");
                mutate(&mut rng, &m, &seeds)
            } else {
                mutate(&mut rng, base, &seeds)
            };
            let datagram = !rng.chance(4);
            let parsed = catch_unwind(|| {
                let _ = message::parse(&data, datagram, &limits);
                let _ = message::frame(&data, &limits);
                // The digest headers the registrar reads.
                let text = String::from_utf8_lossy(&data);
                for line in text.lines() {
                    if let Some(i) = line.find("Digest") {
                        let _ = hotline::sip::digest::Credentials::parse(&line[i..]);
                        let _ = hotline::sip::digest::parse(&line[i..]);
                    }
                }
            });
            if parsed.is_err() {
                crashes.push(("message::parse".into(), data.clone()));
                continue;
            }
            let before = metrics.get("sip_panics");
            let p = peer(&mut rng, !datagram);
            let fed = catch_unwind(AssertUnwindSafe(|| {
                core.on_message(&data, p, now);
                if rng.chance(50) {
                    let dial = Dial {
                        uri: "sip:officer@127.0.0.1:5099".into(),
                        from_uri: "sip:hotline@127.0.0.1".into(),
                        rtp: "127.0.0.1:30000".parse().unwrap(),
                        ring_timeout: Duration::from_secs(30),
                        credentials: Some(("u".into(), "p".into())),
                        route: vec!["<sip:127.0.0.1:5070;lr>".into()],
                    };
                    core.dial(&dial, p, now);
                }
                now += Duration::from_millis(rng.below(3000) as u64);
                core.on_timers(now);
                while let Some(out) = core.poll_output() {
                    match out {
                        Output::Event(CallEvent::Incoming { call, .. }) => {
                            let cmd = if rng.chance(4) {
                                CallCommand::Hangup { call }
                            } else {
                                CallCommand::Answer {
                                    call,
                                    rtp: "127.0.0.1:30002".parse().unwrap(),
                                }
                            };
                            core.on_command(cmd, now);
                        }
                        Output::Register(r) => core.answer_register(
                            hotline::sip::core::RegisterAnswer {
                                id: r.id,
                                status: 200,
                                reason: "OK",
                                headers: vec![("Contact", "<sip:p@127.0.0.1>;expires=60".into())],
                            },
                            now,
                        ),
                        Output::Send { data, .. } => {
                            // Remember our To tags for in-dialog mutants; feed
                            // our own requests back as responses now and then.
                            let text = String::from_utf8_lossy(&data);
                            if let Some(tag) = text
                                .lines()
                                .find(|l| l.starts_with("To:"))
                                .and_then(|l| l.split(";tag=").nth(1))
                            {
                                if let Some(n) = text
                                    .lines()
                                    .find(|l| l.starts_with("Call-ID: fuzz-"))
                                    .and_then(|l| l["Call-ID: fuzz-".len()..].split('@').next())
                                    .and_then(|n| n.parse().ok())
                                {
                                    if tags.len() > 64 {
                                        tags.remove(0);
                                    }
                                    tags.push((n, tag.trim().to_string()));
                                }
                            }
                        }
                        _ => {}
                    }
                }
            }));
            if fed.is_err() || metrics.get("sip_panics") > before {
                crashes.push(("Core::on_message".into(), data));
            }
        }
    }
    Run { mutants, crashes }
}

/// Saves a crashing input as a fixture (a seed for every later run).
fn save(data: &[u8]) -> PathBuf {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    data.hash(&mut h);
    let dir = repo().join("tests/fixtures/fuzz");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("crash-{:016x}.dat", h.finish()));
    std::fs::write(&path, data).unwrap();
    path
}

#[test]
fn mutants_of_the_torture_corpus_never_panic_the_parser_or_the_core() {
    // The suite's bounded, seeded share; scripts/fuzz.sh sets both for long runs.
    let seconds: u64 = std::env::var("HOTLINE_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40);
    let seed: u64 = std::env::var("HOTLINE_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20261201);
    let count = if std::env::var("HOTLINE_FUZZ_SECONDS").is_ok() {
        u64::MAX
    } else {
        150_000
    };
    #[allow(clippy::disallowed_types)]
    let started = std::time::Instant::now();
    let r = run(seed, count, Duration::from_secs(seconds));
    let secs = started.elapsed().as_secs_f64();
    println!(
        "fuzz: seed {seed}: {} mutants in {secs:.1} s ({:.0}/s), {} crashing",
        r.mutants,
        r.mutants as f64 / secs,
        r.crashes.len()
    );
    let saved: Vec<String> = r
        .crashes
        .iter()
        .map(|(what, data)| format!("{what}: {}", save(data).display()))
        .collect();
    assert!(
        saved.is_empty(),
        "inputs that panic, saved as fixtures:\n{}",
        saved.join("\n")
    );
    assert!(
        r.mutants >= 10_000,
        "the run did real work: {} mutants",
        r.mutants
    );
}
