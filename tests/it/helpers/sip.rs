//! SIP by hand: receiving, reading and building messages, and SIPp as an
//! independent caller or phone.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::UdpSocket;

use super::*;

/// Receives one datagram within `limit` (a bound, not a timing assumption).
pub async fn recv(sock: &UdpSocket, limit: Duration) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 65536];
    match tokio::time::timeout(limit, sock.recv_from(&mut buf)).await {
        Ok(Ok((n, _))) => Some(buf[..n].to_vec()),
        _ => None,
    }
}

pub fn status_of(msg: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(msg).ok()?;
    let line = text.lines().next()?;
    line.strip_prefix("SIP/2.0 ")?.get(..3)?.parse().ok()
}

pub fn header<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
    msg.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// A 200 OK to `request` (its Via, From, To with `to_tag` added when given,
/// Call-ID and CSeq), without a body.
pub fn ok_to(request: &str, to_tag: Option<&str>) -> String {
    let h = |name| header(request, name).unwrap_or_default();
    let tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
    format!(
        "SIP/2.0 200 OK\r\nVia: {}\r\nFrom: {}\r\nTo: {}{tag}\r\nCall-ID: {}\r\nCSeq: {}\r\nContent-Length: 0\r\n\r\n",
        h("Via"),
        h("From"),
        h("To"),
        h("Call-ID"),
        h("CSeq")
    )
}

pub fn options(call_id: &str, from: SocketAddr) -> String {
    format!(
        "OPTIONS sip:12368@127.0.0.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP {from};branch=z9hG4bK-{call_id}\r\n\
Max-Forwards: 70\r\n\
From: <sip:probe@127.0.0.1>;tag=probe\r\n\
To: <sip:12368@127.0.0.1>\r\n\
Call-ID: {call_id}\r\n\
CSeq: 1 OPTIONS\r\n\
Content-Length: 0\r\n\r\n"
    )
}

/// A token made from any text (for tags and branches).
pub fn token(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

/// Runs sipp (from Debian's sip-tester) against the gateway; returns its
/// exit status and error log.
pub async fn sipp(
    gateway: SocketAddr,
    scenario: &str,
    transport: &str,
    extra: &[&str],
) -> (bool, String) {
    sipp_for(gateway, scenario, transport, extra, 40).await
}

/// As [`sipp`], for a scenario that lasts up to `seconds` (SIPp's
/// `-timeout`; the hard limit here is 20 s more).
pub async fn sipp_for(
    gateway: SocketAddr,
    scenario: &str,
    transport: &str,
    extra: &[&str],
    seconds: u64,
) -> (bool, String) {
    sipp_at(gateway, scenario, transport, free_port(), extra, seconds).await
}

/// As [`sipp_for`], from the local port `port` (a softphone that registers
/// there and is called there later).
pub async fn sipp_at(
    gateway: SocketAddr,
    scenario: &str,
    transport: &str,
    port: u16,
    extra: &[&str],
    seconds: u64,
) -> (bool, String) {
    sipp_from(
        "127.0.0.1",
        gateway,
        scenario,
        transport,
        port,
        extra,
        seconds,
    )
    .await
}

/// As [`sipp_at`], the caller on loopback address `ip` (127.0.0.0/8).
pub async fn sipp_from(
    ip: &str,
    gateway: SocketAddr,
    scenario: &str,
    transport: &str,
    port: u16,
    extra: &[&str],
    seconds: u64,
) -> (bool, String) {
    let port = port.to_string();
    let scenario = repo().join("tests/sipp").join(scenario);
    let mut args: Vec<std::ffi::OsString> = vec![gateway.to_string().into(), "-sf".into()];
    args.push(scenario.into());
    for a in ["-t", transport, "-i", ip, "-p", &port, "-l", "1"]
        .iter()
        .chain(extra)
    {
        args.push(a.into());
    }
    run_sipp("sipp", args, seconds).await
}

/// One sipp run, bounded as every test's is: one call, `-timeout` of
/// `seconds`, and a hard limit of 20 s more here; returns (success, error
/// log and stderr).
async fn run_sipp(tag: &str, args: Vec<std::ffi::OsString>, seconds: u64) -> (bool, String) {
    let dir = tempfile_dir(tag);
    let timeout = format!("{seconds}s");
    let mut cmd = tokio::process::Command::new("sipp");
    cmd.args(args)
        .args([
            "-m",
            "1",
            "-nostdin",
            "-timeout",
            timeout.as_str(),
            "-timeout_error",
            "-trace_err",
            "-error_file",
        ])
        .arg(dir.join("errors.log"))
        .current_dir(&dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(seconds + 20), cmd.output())
        .await
        .expect("sipp finishes within its bound")
        .expect("sipp runs (apt-get install sip-tester)");
    let log = std::fs::read_to_string(dir.join("errors.log")).unwrap_or_default();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let _ = std::fs::remove_dir_all(&dir);
    (out.status.success(), format!("{log}\n{stderr}"))
}

/// Runs sipp as a server (a phone the gateway calls) on `port`, in the
/// background; the handle resolves to (success, error log).
pub fn sipp_server(scenario: &str, port: u16) -> tokio::task::JoinHandle<(bool, String)> {
    sipp_server_over(scenario, port, "u1")
}

/// As [`sipp_server`], over SIPp's `transport` (`u1` UDP, `t1` TCP).
pub fn sipp_server_over(
    scenario: &str,
    port: u16,
    transport: &str,
) -> tokio::task::JoinHandle<(bool, String)> {
    sipp_server_with(scenario, port, transport, &[])
}

/// As [`sipp_server_over`], with more of SIPp's arguments (`-set rtp N`).
pub fn sipp_server_with(
    scenario: &str,
    port: u16,
    transport: &str,
    extra: &[&str],
) -> tokio::task::JoinHandle<(bool, String)> {
    let scenario = repo().join("tests/sipp").join(scenario);
    let media = free_port().to_string();
    let mut args: Vec<std::ffi::OsString> = vec!["-sf".into(), scenario.into()];
    for a in [
        "-i",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-mp",
        &media,
        "-t",
        transport,
    ]
    .iter()
    .chain(extra)
    {
        args.push(a.into());
    }
    tokio::spawn(run_sipp("sipp-uas", args, 40))
}

/// SIPp as a member's text channel on `port`: takes `messages` SIP
/// MESSAGEs (each answered 200; `tests/sipp/uas_message.xml`) within
/// `seconds`, then exits; the handle resolves to (success, SIPp's trace of
/// every message it took, to read the texts from).
pub fn sipp_message_receiver(
    port: u16,
    messages: usize,
    seconds: u64,
) -> tokio::task::JoinHandle<(bool, String)> {
    let dir = tempfile_dir("sipp-message");
    let scenario = repo().join("tests/sipp/uas_message.xml");
    let trace = dir.join("messages.log");
    let mut cmd = tokio::process::Command::new("sipp");
    cmd.arg("-sf")
        .arg(scenario)
        .args(["-i", "127.0.0.1", "-p", &port.to_string(), "-t", "u1"])
        .args(["-m", &messages.to_string(), "-nostdin"])
        .args(["-timeout", &format!("{seconds}s"), "-timeout_error"])
        .args(["-trace_msg", "-message_file"])
        .arg(&trace)
        .current_dir(&dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    tokio::spawn(async move {
        let out = tokio::time::timeout(Duration::from_secs(seconds + 20), cmd.output())
            .await
            .expect("sipp finishes within its bound")
            .expect("sipp runs (apt-get install sip-tester)");
        let text = std::fs::read_to_string(&trace).unwrap_or_default();
        let _ = std::fs::remove_dir_all(&dir);
        (out.status.success(), text)
    })
}

/// An INVITE built by hand, for a test that sends it itself: by default
/// for the line (`sip:12368@127.0.0.1`) over UDP from `me`, caller
/// `<sip:13800000000@127.0.0.1>`, Via branch `z9hG4bK-` and From tag made
/// from the Call-ID, a Contact at `me` with the caller's number, offering
/// PCMU on port 9. Each setter changes one thing; `to_string()` is the
/// message, Content-Length counted.
#[derive(Debug, Clone)]
pub struct Invite {
    me: std::net::SocketAddr,
    uri: String,
    to: String,
    transport: &'static str,
    via: String,
    branch: String,
    rport: bool,
    record_route: Option<String>,
    max_forwards: u8,
    from: String,
    tag: String,
    call_id: String,
    headers: String,
    media: Option<String>,
}

impl Invite {
    pub fn new(call_id: &str, me: std::net::SocketAddr) -> Invite {
        Invite {
            me,
            uri: "sip:12368@127.0.0.1".into(),
            to: "<sip:12368@127.0.0.1>".into(),
            transport: "UDP",
            via: me.to_string(),
            branch: format!("z9hG4bK-{}", token(call_id)),
            rport: false,
            record_route: None,
            max_forwards: 70,
            from: "<sip:13800000000@127.0.0.1>".into(),
            tag: token(call_id),
            call_id: call_id.into(),
            headers: String::new(),
            media: Some("m=audio 9 RTP/AVP 0\r\n".into()),
        }
    }

    /// The line at another host (a proxy in front of the gateway): the
    /// Request-URI and To.
    pub fn via_host(mut self, host: impl std::fmt::Display) -> Invite {
        self.uri = format!("sip:12368@{host}");
        self.to = format!("<sip:12368@{host}>");
        self
    }

    /// Another Request-URI and To (a name-addr).
    pub fn to(mut self, uri: &str, to: &str) -> Invite {
        self.uri = uri.into();
        self.to = to.into();
        self
    }

    /// The caller: a name-addr such as `"Name" <sip:number@host>`; the
    /// Contact carries its user part, as a phone's does.
    pub fn from(mut self, name_addr: &str) -> Invite {
        self.from = name_addr.into();
        self
    }

    pub fn tag(mut self, tag: impl Into<String>) -> Invite {
        self.tag = tag.into();
        self
    }

    /// The whole Via branch (`z9hG4bK-…`).
    pub fn branch(mut self, branch: impl Into<String>) -> Invite {
        self.branch = branch.into();
        self
    }

    /// `;rport` on the Via.
    pub fn rport(mut self) -> Invite {
        self.rport = true;
        self
    }

    /// Over TCP (Via and Contact say so).
    pub fn tcp(mut self) -> Invite {
        self.transport = "TCP";
        self
    }

    /// Over TLS: a `sips:` Request-URI; Via and Contact say TLS.
    pub fn tls(mut self) -> Invite {
        self.transport = "TLS";
        self.uri = self.uri.replacen("sip:", "sips:", 1);
        self
    }

    /// As forwarded by a proxy at `proxy` that record-routed it: its Via
    /// and Record-Route, one hop less.
    pub fn forwarded_by(mut self, proxy: std::net::SocketAddr) -> Invite {
        self.via = proxy.to_string();
        let tp = transport_param(self.transport);
        self.record_route = Some(format!("<sip:{proxy}{tp};lr>"));
        self.max_forwards -= 1;
        self
    }

    /// More header lines, each ending in CRLF, after the Contact.
    pub fn headers(mut self, lines: &str) -> Invite {
        self.headers.push_str(lines);
        self
    }

    /// The SDP's media section (after the session lines), e.g.
    /// `m=audio 4000 RTP/AVP 8 0\r\n`.
    pub fn media(mut self, section: impl Into<String>) -> Invite {
        self.media = Some(section.into());
        self
    }

    /// No body (no offer).
    pub fn without_sdp(mut self) -> Invite {
        self.media = None;
        self
    }
}

/// The URI parameter for a transport other than UDP.
fn transport_param(transport: &str) -> String {
    match transport {
        "UDP" => String::new(),
        t => format!(";transport={}", t.to_ascii_lowercase()),
    }
}

impl std::fmt::Display for Invite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Invite {
            me,
            uri,
            to,
            transport,
            via,
            branch,
            rport,
            record_route,
            max_forwards,
            from,
            tag,
            call_id,
            headers,
            media,
        } = self;
        let rport = if *rport { ";rport" } else { "" };
        let rr = record_route
            .as_ref()
            .map(|r| format!("Record-Route: {r}\r\n"))
            .unwrap_or_default();
        let user = from
            .split("sip:")
            .nth(1)
            .and_then(|u| u.split('@').next())
            .unwrap_or("caller");
        let tp = transport_param(transport);
        write!(
            f,
            "INVITE {uri} SIP/2.0\r\nVia: SIP/2.0/{transport} {via};branch={branch}{rport}\r\n{rr}\
Max-Forwards: {max_forwards}\r\nFrom: {from};tag={tag}\r\nTo: {to}\r\nCall-ID: {call_id}\r\n\
CSeq: 1 INVITE\r\nContact: <sip:{user}@{me}{tp}>\r\n{headers}"
        )?;
        match media {
            Some(m) => {
                let sdp = format!(
                    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n{m}"
                );
                write!(
                    f,
                    "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
                    sdp.len()
                )
            }
            None => write!(f, "Content-Length: 0\r\n\r\n"),
        }
    }
}
