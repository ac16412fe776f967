//! SIP messages on the wire: parsing a datagram or framed stream message into a
//! [`Message`], and writing responses and requests.
//!
//! Header values, URIs and serialisation use the `sip` module of `rsipstack`
//! (its types never leave `src/sip/`). The start line, framing and the checks
//! RFC 3261 asks of a UAS are ours, because rsipstack's parser refuses
//! extension methods (its `Method` is a closed enum) and reads a bad
//! Content-Length as 0 (docs/adr/0001-sip-message-parsing.md).
//!
//! A message that cannot be accepted becomes a [`Malformed`] carrying the status
//! to answer with and, when the headers needed to address a response were
//! found, those headers.

use std::fmt::Write as _;
use std::net::SocketAddr;

use bytes::Bytes;
use rsipstack::sip as rs;
use rsipstack::sip::headers::{make_header, Header, Headers};

/// Request methods. Those we do not know are kept by name so they can be
/// answered (405/501) instead of dropped.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    Invite,
    Ack,
    Bye,
    Cancel,
    Options,
    Info,
    Register,
    Other(String),
}

impl Method {
    fn parse(token: &str) -> Method {
        match token {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "OPTIONS" => Method::Options,
            "INFO" => Method::Info,
            "REGISTER" => Method::Register,
            other => Method::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Options => "OPTIONS",
            Method::Info => "INFO",
            Method::Register => "REGISTER",
            Method::Other(s) => s,
        }
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The transport a message came over (decides framing and retransmission).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    pub fn reliable(self) -> bool {
        self == Transport::Tcp
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
        }
    }
}

/// What the start line says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    Request { method: Method, uri: String },
    Response { code: u16, reason: String },
}

/// The top Via, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopVia {
    pub transport: String,
    /// `host[:port]` as written.
    pub sent_by: String,
    pub host: String,
    pub branch: Option<String>,
    /// `rport` present (RFC 3581).
    pub rport: bool,
}

impl TopVia {
    /// The branch if it carries the RFC 3261 magic cookie.
    pub fn rfc3261_branch(&self) -> Option<&str> {
        // A bare cookie identifies nothing (RFC 4475 §3.2.1): use RFC 2543 matching.
        self.branch
            .as_deref()
            .filter(|b| b.len() > 7 && b.starts_with("z9hG4bK"))
    }
}

/// The headers a response must copy from its request (RFC 3261 §8.2.6.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyHeaders {
    pub vias: Vec<String>,
    pub from: String,
    pub to: String,
    pub call_id: String,
    pub cseq: String,
}

/// A parsed, checked SIP message.
#[derive(Debug, Clone)]
pub struct Message {
    pub start: StartLine,
    pub headers: Headers,
    pub reply: ReplyHeaders,
    pub top_via: TopVia,
    pub call_id: String,
    pub cseq: u32,
    pub cseq_method: Method,
    pub from_tag: Option<String>,
    pub to_tag: Option<String>,
    pub body: Bytes,
}

/// Why a message was refused, and how to answer it if it can be answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed {
    pub status: u16,
    pub reason: String,
    /// `Some` when the message was a request whose response can be addressed.
    pub reply: Option<Box<ReplyHeaders>>,
}

/// Limits applied while parsing.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_header_bytes: usize,
    pub max_body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_header_bytes: 16 * 1024,
            max_body_bytes: 16 * 1024,
        }
    }
}

impl Message {
    pub fn method(&self) -> Option<&Method> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match &self.start {
            StartLine::Response { code, .. } => Some(*code),
            StartLine::Request { .. } => None,
        }
    }

    /// Every value of the header `name` (compact forms included), in order.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = String> + 'a {
        self.headers.iter().filter_map(move |h| {
            let (n, v) = name_value(h);
            (canonical(&n) == canonical(name)).then_some(v)
        })
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.header_values(name).next()
    }

    /// Comma-separated tokens of every `name` header (e.g. Require, Supported).
    pub fn tokens(&self, name: &str) -> Vec<String> {
        self.header_values(name)
            .flat_map(|v| {
                v.split(',')
                    .map(|t| t.trim().to_string())
                    .filter(|t| !t.is_empty())
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// The URI inside the first Contact header, without angle brackets.
    pub fn contact_uri(&self) -> Option<String> {
        self.header("Contact").and_then(|c| angle_uri(&c))
    }

    /// Record-Route entries in order (RFC 3261 §12.1.1).
    pub fn record_route(&self) -> Vec<String> {
        self.header_values("Record-Route")
            .flat_map(|v| split_commas(&v))
            .collect()
    }

    pub fn content_type(&self) -> Option<String> {
        self.header("Content-Type").map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
    }
}

/// The URI between `<` and `>`, or the whole value up to `;` for the bare form.
pub fn angle_uri(v: &str) -> Option<String> {
    if let (Some(a), Some(b)) = (v.find('<'), v.rfind('>')) {
        (a < b).then(|| v[a + 1..b].trim().to_string())
    } else {
        let u = v.split(';').next()?.trim();
        (!u.is_empty()).then(|| u.to_string())
    }
}

/// The display name and the user part (the number, for a phone) of a
/// From / P-Asserted-Identity value, as written (quotes removed).
pub fn display_and_user(v: &str) -> (Option<String>, Option<String>) {
    let v = v.trim();
    let display = match find_unquoted(v, b'<') {
        Ok(Some(lt)) => {
            let d = v[..lt].trim();
            let d = d
                .strip_prefix('"')
                .and_then(|d| d.strip_suffix('"'))
                .map(|d| d.replace("\\\"", "\"").replace("\\\\", "\\"))
                .unwrap_or_else(|| d.to_string());
            (!d.is_empty()).then_some(d)
        }
        _ => None,
    };
    let user = angle_uri(v).and_then(|uri| {
        let (scheme, rest) = uri.split_once(':')?;
        let user = match rest.rfind('@') {
            Some(at) => &rest[..at],
            None if scheme.eq_ignore_ascii_case("tel") => rest,
            None => return None,
        };
        let user = user.split([';', ':']).next()?.trim();
        (!user.is_empty()).then(|| user.to_string())
    });
    (display, user)
}

/// Splits a header value on commas that are outside quotes and angle brackets.
pub fn split_commas(v: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (mut quoted, mut angle, mut start) = (false, false, 0);
    let bytes = v.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if quoted => i += 1,
            b'"' => quoted = !quoted,
            b'<' if !quoted => angle = true,
            b'>' if !quoted => angle = false,
            b',' if !quoted && !angle => {
                out.push(v[start..i].trim().to_string());
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    out.push(v[start..].trim().to_string());
    out.retain(|s| !s.is_empty());
    out
}

/// Header name in its long form, lower case.
fn canonical(name: &str) -> String {
    let n = name.trim().to_ascii_lowercase();
    let long = match n.as_str() {
        "v" => "via",
        "f" => "from",
        "t" => "to",
        "i" => "call-id",
        "m" => "contact",
        "l" => "content-length",
        "c" => "content-type",
        "k" => "supported",
        "s" => "subject",
        "e" => "content-encoding",
        "o" => "event",
        "r" => "refer-to",
        "u" => "allow-events",
        _ => return n,
    };
    long.to_string()
}

fn name_value(h: &Header) -> (String, String) {
    let text = h.to_string();
    match text.split_once(':') {
        Some((n, v)) => (n.trim().to_string(), v.trim().to_string()),
        None => (text, String::new()),
    }
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
                )
        })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Length of the leading CRLFs a sender may put before a message
/// (RFC 3261 §7.5; also the RFC 5626 keep-alive).
pub fn leading_crlf(data: &[u8]) -> usize {
    data.iter()
        .take_while(|b| **b == b'\r' || **b == b'\n')
        .count()
}

/// Where one message ends in a byte stream (RFC 3261 §18.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// More bytes are needed.
    Incomplete,
    /// The first `n` bytes are one message.
    Complete(usize),
    /// The stream cannot be framed (header section too large, bad
    /// Content-Length): the first `n` bytes go to the parser so the refusal
    /// can be answered, then the connection is closed.
    Broken(usize),
}

/// Frames the next message of a stream that starts at a message (leading
/// CRLFs already removed).
pub fn frame(buf: &[u8], limits: &Limits) -> Frame {
    frame_from(buf, limits, &mut 0)
}

/// As [`frame`], when the first `*searched` bytes are known to hold no end
/// of the header section; updated when the end is still not there (a
/// header arriving a byte at a time costs one pass, not one pass per byte).
/// Reset it to 0 once bytes are taken off the front of `buf`.
pub fn frame_from(buf: &[u8], limits: &Limits, searched: &mut usize) -> Frame {
    let from = searched.saturating_sub(3).min(buf.len());
    let Some(end) = buf
        .get(from..)
        .and_then(|b| find(b, b"\r\n\r\n"))
        .map(|e| e + from)
    else {
        *searched = buf.len();
        return if buf.len() > limits.max_header_bytes {
            Frame::Broken(buf.len())
        } else {
            Frame::Incomplete
        };
    };
    if end > limits.max_header_bytes {
        return Frame::Broken(end + 4);
    }
    let head = &buf[..end];
    let mut length = 0usize;
    // Lines as the parser cuts them (CRLF only), so both agree on where a
    // message ends.
    let mut rest = head;
    while !rest.is_empty() {
        let (line, next) = match find(rest, b"\r\n") {
            // `i` is where the two-byte CRLF starts: `i + 2 <= rest.len()`.
            Some(i) => (&rest[..i], &rest[i + 2..]),
            None => (rest, &[][..]),
        };
        rest = next;
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let name = String::from_utf8_lossy(&line[..colon]);
        if canonical(&name) != "content-length"
            || line.first().is_some_and(|b| *b == b' ' || *b == b'\t')
        {
            continue;
        }
        let value = String::from_utf8_lossy(&line[colon + 1..]);
        let v = value.trim();
        match v.parse::<usize>() {
            Ok(n) if v.bytes().all(|b| b.is_ascii_digit()) && n <= limits.max_body_bytes => {
                length = n
            }
            _ => return Frame::Broken(end + 4),
        }
    }
    let total = end + 4 + length;
    if buf.len() >= total {
        Frame::Complete(total)
    } else {
        Frame::Incomplete
    }
}

/// One logical header line after unfolding.
struct RawHeader<'a> {
    name: &'a str,
    value: String,
}

/// Splits the header section into start line and unfolded headers. A line
/// that is not a header is skipped and reported, so the headers needed to
/// answer can still be found.
fn split_head(head: &str) -> (&str, Vec<RawHeader<'_>>, Option<&'static str>) {
    let mut lines = head.split("\r\n");
    let start = lines.next().unwrap_or("");
    let mut headers: Vec<RawHeader> = Vec::new();
    let mut problem = None;
    for line in lines {
        // Lines end in CRLF (RFC 3261 §7); a bare CR or LF would smuggle a
        // header into what we copy back. (A NUL may stand in a quoted pair,
        // RFC 4475 §3.1.1.3.)
        if line.contains(['\r', '\n']) {
            problem.get_or_insert("Bare CR or LF In Header");
            continue;
        }
        if line.starts_with(' ') || line.starts_with('\t') {
            match headers.last_mut() {
                Some(h) => {
                    h.value.push(' ');
                    h.value.push_str(line.trim());
                }
                None => {
                    problem.get_or_insert("Folded Line Before Any Header");
                }
            }
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            problem.get_or_insert("Malformed Header Line");
            continue;
        };
        let name = name.trim_end_matches([' ', '\t']);
        if !is_token(name) {
            problem.get_or_insert("Malformed Header Name");
            continue;
        }
        headers.push(RawHeader {
            name,
            value: value.trim().to_string(),
        });
    }
    (start, headers, problem)
}

/// The headers needed to answer, found leniently (for refusing a message
/// whose other parts are broken).
fn scan_reply(headers: &[RawHeader]) -> Option<ReplyHeaders> {
    let get = |n: &str| {
        headers
            .iter()
            .find(|h| canonical(h.name) == n)
            .map(|h| h.value.clone())
            .filter(|v| !v.is_empty())
    };
    let vias: Vec<String> = headers
        .iter()
        .filter(|h| canonical(h.name) == "via")
        .map(|h| h.value.clone())
        .collect();
    if vias.is_empty() {
        return None;
    }
    // Without Via a response cannot be addressed; the other headers are
    // copied when present (a 400 for a missing Call-ID still goes back).
    Some(ReplyHeaders {
        vias,
        from: get("from").unwrap_or_default(),
        to: get("to").unwrap_or_default(),
        call_id: get("call-id").unwrap_or_default(),
        cseq: get("cseq").unwrap_or_default(),
    })
}

/// Parses one message. `datagram` is true when `data` is exactly one UDP
/// datagram (so Content-Length may not exceed what is there); stream framing
/// has already cut `data` to header section + Content-Length bytes.
pub fn parse(data: &[u8], datagram: bool, limits: &Limits) -> Result<Message, Malformed> {
    let data = &data[leading_crlf(data)..];
    let refuse = |status: u16, reason: String, reply: Option<ReplyHeaders>| Malformed {
        status,
        reason,
        reply: reply.map(Box::new),
    };
    let head_end = find(data, b"\r\n\r\n");
    let head_len = head_end.unwrap_or(data.len());
    let cut = &data[..head_len.min(limits.max_header_bytes + 4)];
    let (head, mut problem) = match std::str::from_utf8(cut) {
        Ok(h) => (std::borrow::Cow::Borrowed(h), None),
        // A section cut at the size limit may end inside a character.
        Err(e) if cut.len() < head_len && cut.len() - e.valid_up_to() < 4 => (
            std::borrow::Cow::Borrowed(
                std::str::from_utf8(&cut[..e.valid_up_to()]).expect("valid prefix"),
            ),
            None,
        ),
        // Still find the headers needed to say so.
        Err(_) => (
            String::from_utf8_lossy(cut),
            Some("Header Section Not UTF-8"),
        ),
    };
    let (start, raw, bad_line) = split_head(&head);
    problem = problem.or(bad_line);
    let is_response = start.starts_with("SIP/");
    // Never answer a response or an ACK.
    let reply = if is_response || start.starts_with("ACK ") {
        None
    } else {
        scan_reply(&raw)
    };
    let fail = |status: u16, reason: &str| refuse(status, reason.to_string(), reply.clone());

    if head_len > limits.max_header_bytes {
        return Err(fail(400, "Header Section Too Large"));
    }
    if let Some(p) = problem {
        return Err(fail(400, p));
    }
    let Some(head_end) = head_end else {
        return Err(fail(400, "Missing Empty Line After Headers"));
    };

    // Start line (RFC 3261 §7.1, §7.2): single spaces, three parts.
    let start = if is_response {
        let mut parts = start.splitn(3, ' ');
        let (_v, code) = (parts.next(), parts.next().unwrap_or(""));
        let reason = parts.next().unwrap_or("").to_string();
        match code.parse::<u16>() {
            Ok(c) if code.len() == 3 && (100..700).contains(&c) => {
                StartLine::Response { code: c, reason }
            }
            _ => return Err(fail(400, "Bad Status-Line")),
        }
    } else {
        let parts: Vec<&str> = start.split(' ').collect();
        if start.contains(['\t', '\n', '\r']) {
            return Err(fail(400, "Malformed Request-Line"));
        }
        if parts.len() != 3 || parts.iter().any(|p| p.is_empty()) {
            return Err(fail(400, "Malformed Request-Line"));
        }
        let (method, uri, version) = (parts[0], parts[1], parts[2]);
        if !is_token(method) {
            return Err(fail(400, "Malformed Method"));
        }
        if !version.eq_ignore_ascii_case("SIP/2.0") {
            return Err(
                // Bytes, not `str` slicing: the token may hold any UTF-8.
                if version.len() > 4
                    && version
                        .as_bytes()
                        .get(..4)
                        .is_some_and(|p| p.eq_ignore_ascii_case(b"SIP/"))
                {
                    fail(505, "Version Not Supported")
                } else {
                    fail(400, "Malformed SIP-Version")
                },
            );
        }
        check_request_uri(uri).map_err(|(s, r)| fail(s, r))?;
        StartLine::Request {
            method: Method::parse(method),
            uri: uri.to_string(),
        }
    };

    // Headers into rsipstack's model; single-valued ones must agree.
    let mut headers = Headers::default();
    let mut content_length: Option<usize> = None;
    let mut seen: Vec<(String, String)> = Vec::new();
    for h in &raw {
        let canon = canonical(h.name);
        if matches!(
            canon.as_str(),
            "from" | "to" | "call-id" | "cseq" | "content-length" | "max-forwards"
        ) {
            if let Some((_, prev)) = seen.iter().find(|(n, _)| *n == canon) {
                if *prev != h.value {
                    return Err(fail(400, &format!("Conflicting {} Headers", title(&canon))));
                }
            } else {
                seen.push((canon.clone(), h.value.clone()));
            }
        }
        match canon.as_str() {
            "content-length" => {
                let v = h.value.trim();
                if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) || v.len() > 9 {
                    return Err(fail(400, "Bad Content-Length"));
                }
                content_length = Some(v.parse().unwrap_or(usize::MAX));
            }
            "max-forwards" => {
                let v = h.value.trim();
                // Leading zeros are legal ("0068", RFC 4475 §3.1.1.1).
                if v.is_empty() || v.len() > 10 || !v.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(fail(400, "Bad Max-Forwards"));
                }
            }
            _ => {}
        }
        headers.push(make_header(h.name, h.value.clone()));
    }

    let reply = match reply.clone().or_else(|| scan_reply(&raw)) {
        Some(r)
            if !(r.from.is_empty()
                || r.to.is_empty()
                || r.call_id.is_empty()
                || r.cseq.is_empty()) =>
        {
            r
        }
        _ => return Err(fail(400, &missing(&raw))),
    };

    // Body and Content-Length (RFC 3261 §18.3, §20.14).
    let available = &data[head_end + 4..];
    let body = match content_length {
        Some(n) if n > limits.max_body_bytes => return Err(fail(513, "Message Too Large")),
        Some(n) if n > available.len() => {
            return Err(fail(400, "Content-Length Larger Than Message"));
        }
        Some(n) => &available[..n],
        None if datagram => available,
        None => &available[..0],
    };
    if body.len() > limits.max_body_bytes {
        return Err(fail(513, "Message Too Large"));
    }

    let top_via = parse_top_via(&reply.vias[0]).ok_or_else(|| fail(400, "Malformed Via"))?;
    let (cseq, cseq_method) = parse_cseq(&reply.cseq).ok_or_else(|| fail(400, "Bad CSeq"))?;
    if let StartLine::Request { method, .. } = &start {
        if *method != cseq_method {
            return Err(fail(400, "CSeq Method Does Not Match Request"));
        }
    }
    let from_tag = tag_of(&reply.from).map_err(|_| fail(400, "Malformed From"))?;
    let to_tag = tag_of(&reply.to).map_err(|_| fail(400, "Malformed To"))?;
    let call_id = reply.call_id.trim().to_string();
    if call_id.contains(char::is_whitespace) {
        return Err(fail(400, "Malformed Call-ID"));
    }

    Ok(Message {
        start,
        headers,
        top_via,
        call_id,
        cseq,
        cseq_method,
        from_tag,
        to_tag,
        body: Bytes::copy_from_slice(body),
        reply,
    })
}

fn title(canon: &str) -> &'static str {
    match canon {
        "from" => "From",
        "to" => "To",
        "call-id" => "Call-ID",
        "cseq" => "CSeq",
        "content-length" => "Content-Length",
        _ => "Max-Forwards",
    }
}

fn missing(raw: &[RawHeader]) -> String {
    for (n, t) in [
        ("via", "Via"),
        ("from", "From"),
        ("to", "To"),
        ("call-id", "Call-ID"),
        ("cseq", "CSeq"),
    ] {
        if !raw
            .iter()
            .any(|h| canonical(h.name) == n && !h.value.is_empty())
        {
            return format!("Missing {t} Header");
        }
    }
    "Missing Required Header".into()
}

/// The Request-URI: no whitespace or angle brackets, a scheme we serve
/// (sip, sips, tel), a parsable SIP URI.
fn check_request_uri(uri: &str) -> Result<(), (u16, &'static str)> {
    if uri.contains(['<', '>', '"']) {
        return Err((400, "Malformed Request-URI"));
    }
    let Some((scheme, rest)) = uri.split_once(':') else {
        return Err((400, "Malformed Request-URI"));
    };
    let scheme_ok = !scheme.is_empty()
        && scheme.as_bytes()[0].is_ascii_alphabetic()
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    if !scheme_ok {
        return Err((400, "Malformed Request-URI"));
    }
    match scheme.to_ascii_lowercase().as_str() {
        "sip" | "sips" => {
            if rest.is_empty() {
                return Err((400, "Malformed Request-URI"));
            }
            // `?` may stand in the user part (RFC 3261 §25.1 user-unreserved);
            // after the host it starts headers.
            if rest[rest.rfind('@').map_or(0, |i| i + 1)..].contains('?') {
                // RFC 4475 §3.1.2.11: headers have no place in a Request-URI.
                return Err((400, "Headers In Request-URI"));
            }
            check_hostport(rest).ok_or((400, "Malformed Request-URI"))?;
            // rsipstack refuses the three-colon IPv6 form RFC 5118 §4.10 asks
            // us to tolerate; bracketed hosts were checked above.
            if !rest.contains('[') {
                rs::parse_uri(uri).map_err(|_| (400, "Malformed Request-URI"))?;
            }
            Ok(())
        }
        "tel" => Ok(()),
        _ => Err((416, "Unsupported URI Scheme")),
    }
}

/// `[userinfo@]host[:port][;params]` of a SIP URI. IPv6 references must be
/// bracketed (RFC 5118 §4.2); inside brackets we accept the three-colon
/// form RFC 3261's grammar allows (RFC 5118 §4.10).
fn check_hostport(rest: &str) -> Option<()> {
    let host_start = rest.rfind('@').map_or(0, |i| i + 1);
    let hostport = rest[host_start..].split(';').next()?;
    let (host, port) = if let Some(inner) = hostport.strip_prefix('[') {
        let close = inner.find(']')?;
        let v6 = &inner[..close];
        if v6.is_empty()
            || !v6
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return None;
        }
        let after = &inner[close + 1..];
        (
            v6,
            if after.is_empty() {
                None
            } else {
                Some(after.strip_prefix(':')?)
            },
        )
    } else {
        match hostport.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if host.is_empty() {
        return None;
    }
    if !hostport.starts_with('[')
        && !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return None;
    }
    if let Some(p) = port {
        p.parse::<u16>().ok()?;
    }
    Some(())
}

/// The top entry of the first Via header value.
pub fn parse_top_via(value: &str) -> Option<TopVia> {
    let first = split_commas(value).into_iter().next()?;
    // rsipstack accepts any protocol name; we need `SIP / 2.0 / transport`.
    let mut proto = first.splitn(3, '/');
    let (name, version, rest) = (proto.next()?.trim(), proto.next()?.trim(), proto.next()?);
    if !name.eq_ignore_ascii_case("SIP") || version != "2.0" {
        return None;
    }
    let rest = rest.trim_start();
    let split = rest.find(char::is_whitespace)?;
    let transport = rest[..split].to_ascii_uppercase();
    if !is_token(&transport) {
        return None;
    }
    // rsipstack's Transport is a closed enum; RFC 3261 allows any token
    // (`other-transport`), which only names the hop, so parse the sent-by
    // with a transport it knows.
    let via = rs::typed::Via::parse(&format!("SIP/2.0/UDP {}", &rest[split..])).ok()?;
    let host = via.sent_by().host.to_string();
    let sent_by = via.sent_by().to_string();
    let mut branch = None;
    let mut rport = false;
    for p in first.split(';').skip(1) {
        if p.trim().is_empty() {
            // `;;` (RFC 4475 §3.1.2.1): no parameter there.
            return None;
        }
        let (k, v) = match p.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim())),
            None => (p.trim(), None),
        };
        if k.eq_ignore_ascii_case("branch") {
            branch = v.filter(|v| !v.is_empty()).map(str::to_string);
        } else if k.eq_ignore_ascii_case("rport") {
            rport = true;
        }
    }
    Some(TopVia {
        transport,
        sent_by,
        host,
        branch,
        rport,
    })
}

/// `CSeq: 1*DIGIT LWS Method`, the number below 2**31 (RFC 3261 §8.1.1.5).
fn parse_cseq(value: &str) -> Option<(u32, Method)> {
    let mut it = value.split_whitespace();
    let (num, method) = (it.next()?, it.next()?);
    if it.next().is_some() || !num.bytes().all(|b| b.is_ascii_digit()) || num.len() > 10 {
        return None;
    }
    let n: u64 = num.parse().ok()?;
    if n >= 1 << 31 || !is_token(method) {
        return None;
    }
    Some((n as u32, Method::parse(method)))
}

/// The `tag` parameter of a From/To value, after checking its syntax
/// (RFC 3261 §20.10, §25.1): a quoted or token display name, an addr-spec
/// without whitespace, then `;name[=value]` parameters with optional LWS.
fn tag_of(value: &str) -> Result<Option<String>, ()> {
    let v = value.trim();
    let params = if let Some(lt) = find_unquoted(v, b'<')? {
        let display = v[..lt].trim();
        if display.starts_with('"') {
            let close = end_of_quoted(display).ok_or(())?;
            if !display[close..].trim().is_empty() {
                return Err(());
            }
        } else if !display.split_whitespace().all(is_token) {
            return Err(());
        }
        let gt = v[lt..].find('>').ok_or(())? + lt;
        let uri = &v[lt + 1..gt];
        if uri.is_empty() || uri.contains(char::is_whitespace) || !uri.contains(':') {
            return Err(());
        }
        &v[gt + 1..]
    } else {
        let end = v.find(';').unwrap_or(v.len());
        let uri = v[..end].trim_end();
        if uri.is_empty() || uri.contains(char::is_whitespace) || !uri.contains(':') {
            return Err(());
        }
        &v[end..]
    };
    let mut tag = None;
    let params = params.trim();
    if params.is_empty() {
        return Ok(None);
    }
    let params = params.strip_prefix(';').ok_or(())?;
    for p in params.split(';') {
        let (name, val) = match p.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim())),
            None => (p.trim(), None),
        };
        if !is_token(name) {
            return Err(());
        }
        if name.eq_ignore_ascii_case("tag") {
            let t = val.ok_or(())?;
            if !is_token(t) {
                return Err(());
            }
            tag = Some(t.to_string());
        }
    }
    Ok(tag)
}

/// Index of `c` outside any quoted string; `Err` for an unterminated quote.
fn find_unquoted(s: &str, c: u8) -> Result<Option<usize>, ()> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut quoted = false;
    while i < b.len() {
        match b[i] {
            b'\\' if quoted => i += 1,
            b'"' => quoted = !quoted,
            x if x == c && !quoted => return Ok(Some(i)),
            _ => {}
        }
        i += 1;
    }
    if quoted {
        Err(())
    } else {
        Ok(None)
    }
}

/// Byte index just past the closing quote of a string starting with `"`.
fn end_of_quoted(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'"' => return Some(i + 1),
            _ => {}
        }
        i += 1;
    }
    None
}

/// Builds a response to a request.
pub struct ResponseBuilder<'a> {
    reply: &'a ReplyHeaders,
    code: u16,
    reason: &'a str,
    to_tag: Option<&'a str>,
    source: Option<SocketAddr>,
    extra: Vec<(&'static str, String)>,
    body: Option<(&'static str, &'a [u8])>,
}

impl<'a> ResponseBuilder<'a> {
    pub fn new(reply: &'a ReplyHeaders, code: u16, reason: &'a str) -> Self {
        ResponseBuilder {
            reply,
            code,
            reason,
            to_tag: None,
            source: None,
            extra: Vec::new(),
            body: None,
        }
    }

    /// Adds our To tag unless the request's To already has one.
    pub fn to_tag(mut self, tag: &'a str) -> Self {
        self.to_tag = Some(tag);
        self
    }

    /// Where the request came from: adds `received` and fills `rport`
    /// (RFC 3261 §18.2.1, RFC 3581 §4).
    pub fn source(mut self, addr: SocketAddr) -> Self {
        self.source = Some(addr);
        self
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.extra.push((name, value.into()));
        self
    }

    pub fn body(mut self, content_type: &'static str, body: &'a [u8]) -> Self {
        self.body = Some((content_type, body));
        self
    }

    pub fn build(self) -> Bytes {
        let mut headers = Headers::default();
        for (i, via) in self.reply.vias.iter().enumerate() {
            let value = match (i, self.source) {
                (0, Some(src)) => stamp_via(via, src),
                _ => via.clone(),
            };
            headers.push(Header::Via(rs::Via::new(value)));
        }
        let r = self.reply;
        if !r.from.is_empty() {
            headers.push(Header::From(rs::From::new(r.from.clone())));
        }
        // A tag is added only to a To that parses and has none.
        let to = match (self.to_tag, tag_of(&r.to)) {
            (Some(tag), Ok(None)) => format!("{};tag={tag}", r.to),
            _ => r.to.clone(),
        };
        if !to.is_empty() {
            headers.push(Header::To(rs::To::new(to)));
        }
        if !r.call_id.is_empty() {
            headers.push(Header::CallId(rs::CallId::new(r.call_id.clone())));
        }
        if !r.cseq.is_empty() {
            headers.push(Header::CSeq(rs::CSeq::new(r.cseq.clone())));
        }
        for (name, value) in self.extra {
            headers.push(make_header(name, value));
        }
        let (ctype, body) = self.body.unwrap_or(("", &[]));
        if !ctype.is_empty() {
            headers.push(Header::ContentType(rs::ContentType::new(ctype)));
        }
        headers.push(Header::ContentLength(rs::ContentLength::new(
            body.len().to_string(),
        )));
        let response = rs::Response {
            status_code: rs::StatusCode::from(self.code),
            wire_reason: None,
            version: rs::Version::V2,
            headers,
            body: body.to_vec(),
        };
        // rsipstack writes only the standard phrase; ours says what was wrong.
        let mut out = String::with_capacity(512);
        let _ = write!(
            out,
            "SIP/2.0 {} {}\r\n{}\r\n",
            response.status_code.code(),
            self.reason,
            response.headers
        );
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&response.body);
        Bytes::from(bytes)
    }
}

/// Adds `received=` when the sent-by host is not the source address, and the
/// port to a bare `rport`.
fn stamp_via(via: &str, src: SocketAddr) -> String {
    let first_end = split_first_len(via);
    let (first, rest) = via.split_at(first_end);
    let Some(top) = parse_top_via(first) else {
        return via.to_string();
    };
    let ip = src.ip().to_string();
    let mut params: Vec<String> = first.split(';').map(|s| s.to_string()).collect();
    let mut has_received = false;
    for p in params.iter_mut().skip(1) {
        let key = p
            .split('=')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if key == "rport" {
            *p = format!("rport={}", src.port());
        } else if key == "received" {
            *p = format!("received={ip}");
            has_received = true;
        }
    }
    let host = top.host.trim_start_matches('[').trim_end_matches(']');
    if !has_received && (host != ip || top.rport) {
        params.push(format!("received={ip}"));
    }
    format!("{}{}", params.join(";"), rest)
}

/// Byte length of the first comma-separated entry of a Via value.
fn split_first_len(via: &str) -> usize {
    let mut quoted = false;
    for (i, c) in via.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => return i,
            _ => {}
        }
    }
    via.len()
}

/// A request we send inside a dialog (BYE).
pub struct RequestSpec<'a> {
    pub method: &'a str,
    pub uri: &'a str,
    pub via: String,
    pub from: &'a str,
    pub to: &'a str,
    pub call_id: &'a str,
    pub cseq: u32,
    pub route: &'a [String],
    pub contact: Option<&'a str>,
    pub user_agent: &'a str,
    /// `(content type, body)`.
    pub body: Option<(&'a str, &'a [u8])>,
    /// More headers (credentials).
    pub headers: &'a [(&'static str, String)],
}

impl RequestSpec<'_> {
    pub fn build(&self) -> Bytes {
        let mut headers = Headers::default();
        headers.push(Header::Via(rs::Via::new(self.via.clone())));
        headers.push(Header::MaxForwards(rs::MaxForwards::new("70")));
        for r in self.route {
            headers.push(Header::Route(rs::Route::new(r.clone())));
        }
        headers.push(Header::From(rs::From::new(self.from)));
        headers.push(Header::To(rs::To::new(self.to)));
        headers.push(Header::CallId(rs::CallId::new(self.call_id)));
        headers.push(Header::CSeq(rs::CSeq::new(format!(
            "{} {}",
            self.cseq, self.method
        ))));
        if let Some(c) = self.contact {
            headers.push(Header::Contact(rs::Contact::new(format!("<{c}>"))));
        }
        headers.push(Header::UserAgent(rs::UserAgent::new(self.user_agent)));
        for (name, value) in self.headers {
            headers.push(make_header(name, value.clone()));
        }
        let (ctype, body) = self.body.unwrap_or(("", &[]));
        if !ctype.is_empty() {
            headers.push(Header::ContentType(rs::ContentType::new(ctype)));
        }
        headers.push(Header::ContentLength(rs::ContentLength::new(
            body.len().to_string(),
        )));
        // The method is ours (a token: BYE, MESSAGE, PRACK, ...).
        let mut out =
            format!("{} {} SIP/2.0\r\n{}\r\n", self.method, self.uri, headers).into_bytes();
        out.extend_from_slice(body);
        Bytes::from(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &str = "INVITE sip:12368@hotline.example SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bK776asdhds;rport\r\n\
Max-Forwards: 70\r\n\
To: <sip:12368@hotline.example>\r\n\
From: \"Caller\" <sip:13800000000@carrier.example>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.example\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:13800000000@192.0.2.7:5060>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 4\r\n\r\nv=0\n";

    fn p(s: &str) -> Result<Message, Malformed> {
        parse(s.as_bytes(), true, &Limits::default())
    }

    #[test]
    fn parses_invite() {
        let m = p(INVITE).unwrap();
        assert_eq!(m.method(), Some(&Method::Invite));
        assert_eq!(m.cseq, 314159);
        assert_eq!(m.from_tag.as_deref(), Some("1928301774"));
        assert_eq!(m.to_tag, None);
        assert_eq!(m.top_via.rfc3261_branch(), Some("z9hG4bK776asdhds"));
        assert!(m.top_via.rport);
        assert_eq!(&m.body[..], b"v=0\n");
        assert_eq!(
            m.contact_uri().as_deref(),
            Some("sip:13800000000@192.0.2.7:5060")
        );
    }

    #[test]
    fn extension_method_is_kept() {
        let s = INVITE
            .replace("INVITE sip", "FOO-BAR sip")
            .replace("314159 INVITE", "314159 FOO-BAR");
        let m = p(&s).unwrap();
        assert_eq!(m.method(), Some(&Method::Other("FOO-BAR".into())));
    }

    #[test]
    fn refusals_name_the_problem() {
        let cases = [
            (INVITE.replace("SIP/2.0\r\nVia", "SIP/7.0\r\nVia"), 505),
            (INVITE.replace("sip:12368@", "foo:12368@"), 416),
            (INVITE.replace("314159 INVITE", "314159 OPTIONS"), 400),
            (INVITE.replace("314159", "4294967301"), 400),
            (
                INVITE.replace("Content-Length: 4", "Content-Length: 40"),
                400,
            ),
            (
                INVITE.replace("Content-Length: 4", "Content-Length: -4"),
                400,
            ),
            (
                INVITE.replace("Call-ID: a84b4c76e66710@pc33.example\r\n", ""),
                400,
            ),
        ];
        for (msg, status) in cases {
            let e = p(&msg).unwrap_err();
            assert_eq!(e.status, status, "{}: {}", e.reason, msg);
            // Via is there: the refusal can be sent.
            assert!(e.reply.is_some(), "{msg}");
        }
    }

    #[test]
    fn response_copies_and_stamps_via() {
        let m = p(INVITE).unwrap();
        let src: SocketAddr = "198.51.100.4:40000".parse().unwrap();
        let r = ResponseBuilder::new(&m.reply, 180, "Ringing")
            .to_tag("abc")
            .source(src)
            .build();
        let text = std::str::from_utf8(&r).unwrap();
        assert!(text.starts_with("SIP/2.0 180 Ringing\r\n"), "{text}");
        assert!(
            text.contains("Via: SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bK776asdhds;rport=40000;received=198.51.100.4\r\n"),
            "{text}"
        );
        assert!(text.contains("To: <sip:12368@hotline.example>;tag=abc\r\n"));
        assert!(text.contains("CSeq: 314159 INVITE\r\n"));
        assert!(text.ends_with("Content-Length: 0\r\n\r\n"));
        // What we write parses back.
        let back = parse(&r, true, &Limits::default()).unwrap();
        assert_eq!(back.status(), Some(180));
        assert_eq!(back.to_tag.as_deref(), Some("abc"));
    }

    #[test]
    fn broken_lines_still_answered() {
        let no_colon = INVITE.replace("Max-Forwards: 70\r\n", "Max-Forwards 70\r\n");
        let e = p(&no_colon).unwrap_err();
        assert_eq!(
            (e.status, e.reason.as_str()),
            (400, "Malformed Header Line")
        );
        assert!(e.reply.is_some());
        let mut latin1 = INVITE.as_bytes().to_vec();
        let at = INVITE.find("Caller").unwrap();
        latin1[at] = 0xC7; // not UTF-8 on its own
        let e = parse(&latin1, true, &Limits::default()).unwrap_err();
        assert_eq!(
            (e.status, e.reason.as_str()),
            (400, "Header Section Not UTF-8")
        );
        assert!(e.reply.is_some());
    }

    #[test]
    fn other_transport_in_via() {
        let v = parse_top_via("SIP/2.0/FOO host.example:5070;branch=z9hG4bKx").unwrap();
        assert_eq!(
            (v.transport.as_str(), v.sent_by.as_str()),
            ("FOO", "host.example:5070")
        );
        assert!(parse_top_via("SIP/2.0/UDP 192.0.2.15;;").is_none());
        assert!(parse_top_via("SIP/7.0/UDP 192.0.2.15").is_none());
    }

    #[test]
    fn caller_identity_parts() {
        assert_eq!(
            display_and_user("\"Zhang San\" <sip:13800000000@carrier.example>;tag=1"),
            (Some("Zhang San".into()), Some("13800000000".into()))
        );
        assert_eq!(
            display_and_user("<tel:+8653212368;phone-context=x>"),
            (None, Some("+8653212368".into()))
        );
        assert_eq!(display_and_user("sip:carrier.example"), (None, None));
        // Short or odd URIs never panic.
        for v in ["<a:>;tag=1", "<a:é>", "<:1>", "<é:>", ":", "<>"] {
            let _ = display_and_user(v);
        }
    }

    #[test]
    fn stream_framing() {
        let l = Limits::default();
        let two = format!("{INVITE}{INVITE}");
        let one = INVITE.len();
        assert_eq!(frame(two.as_bytes(), &l), Frame::Complete(one));
        assert_eq!(frame(&two.as_bytes()[..one - 1], &l), Frame::Incomplete);
        assert_eq!(frame(&two.as_bytes()[..40], &l), Frame::Incomplete);
        let bad = INVITE.replace("Content-Length: 4", "Content-Length: -4");
        assert!(matches!(frame(bad.as_bytes(), &l), Frame::Broken(_)));
        let huge = "X".repeat(l.max_header_bytes + 1);
        assert_eq!(frame(huge.as_bytes(), &l), Frame::Broken(huge.len()));
    }

    #[test]
    fn version_with_multibyte_characters_is_refused_not_a_panic() {
        for v in [
            "SIP\u{e9}",
            "SIP/\u{e9}",
            "\u{4e2d}\u{6587}",
            "S\u{1f600}",
            "SIP/2.0\u{0}",
        ] {
            let msg = INVITE.replacen("SIP/2.0\r\n", &format!("{v}\r\n"), 1);
            let e = p(&msg).unwrap_err();
            assert!(e.status == 400 || e.status == 505, "{v}: {e:?}");
        }
        let e = parse(
            b"OPTIONS sip:a@b SIP\xc3\xa9\r\n\r\n",
            true,
            &Limits::default(),
        );
        assert!(e.unwrap_err().reply.is_none(), "no Via: nothing to answer");
    }

    #[test]
    fn bare_line_feeds_cannot_smuggle_headers() {
        // A From with a bare LF would copy "X-Evil" into every answer.
        let evil = INVITE.replace(";tag=1928301774\r\n", ";tag=1928301774\nX-Evil: 1\r\n");
        let e = p(&evil).unwrap_err();
        assert_eq!(
            (e.status, e.reason.as_str()),
            (400, "Bare CR or LF In Header")
        );
        let cr = INVITE.replace("Caller", "Cal\rler");
        assert_eq!(p(&cr).unwrap_err().status, 400);
        // The framer sees the same lines: a Content-Length behind a bare LF
        // does not count there either.
        let hidden = INVITE
            .replace("Content-Length: 4\r\n", "X-A: 1\nContent-Length: 40\r\n")
            .replace(
                "Content-Type: application/sdp\r\n",
                "Content-Type: application/sdp\r\nContent-Length: 4\r\n",
            );
        assert_eq!(
            frame(hidden.as_bytes(), &Limits::default()),
            Frame::Complete(hidden.len())
        );
    }

    #[test]
    fn a_body_over_the_limit_is_513_whatever_arrived() {
        let l = Limits {
            max_header_bytes: 16 * 1024,
            max_body_bytes: 100,
        };
        let big = INVITE.replace("Content-Length: 4", "Content-Length: 5000");
        assert_eq!(parse(big.as_bytes(), true, &l).unwrap_err().status, 513);
    }

    #[test]
    fn framing_resumes_where_it_stopped() {
        let l = Limits::default();
        let mut searched = 0;
        let bytes = INVITE.as_bytes();
        let head_end = INVITE.find("\r\n\r\n").unwrap();
        // Byte by byte up to the header end: never complete, one pass.
        for n in 1..head_end + 3 {
            assert_eq!(
                frame_from(&bytes[..n], &l, &mut searched),
                Frame::Incomplete
            );
            assert_eq!(searched, n);
        }
        // The end found, the body still missing: `searched` stays.
        assert_eq!(
            frame_from(&bytes[..head_end + 5], &l, &mut searched),
            Frame::Incomplete
        );
        assert_eq!(
            frame_from(bytes, &l, &mut searched),
            Frame::Complete(bytes.len())
        );
    }

    #[test]
    fn leading_crlf_is_skipped() {
        let m = p(&format!("\r\n\r\n{INVITE}")).unwrap();
        assert_eq!(m.cseq, 314159);
    }

    #[test]
    fn header_too_large() {
        let big = INVITE.replace(
            "Max-Forwards: 70\r\n",
            &format!("X-Pad: {}\r\n", "a".repeat(20_000)),
        );
        let e = p(&big).unwrap_err();
        assert_eq!(
            (e.status, e.reason.as_str()),
            (400, "Header Section Too Large")
        );
    }
}
