//! From bytes to a [`Message`]: stream framing (RFC 3261 §18.3), the start
//! line, the header section and every check a UAS makes before it answers.

use super::*;

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
    let Some(head) = buf.get(..end) else {
        return Frame::Broken(buf.len());
    };
    let mut length = 0usize;
    // Lines as the parser cuts them (CRLF only), so both agree on where a
    // message ends.
    let mut rest = head;
    while !rest.is_empty() {
        let (line, next) = match find(rest, b"\r\n") {
            // `i` is where the two-byte CRLF starts.
            Some(i) => (
                rest.get(..i).unwrap_or_default(),
                rest.get(i + 2..).unwrap_or_default(),
            ),
            None => (rest, &[] as &[u8]),
        };
        rest = next;
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let Some((name, value)) = line.split_at_checked(colon) else {
            continue;
        };
        let name = String::from_utf8_lossy(name);
        if canonical(&name) != "content-length"
            || line.first().is_some_and(|b| *b == b' ' || *b == b'\t')
        {
            continue;
        }
        let value = String::from_utf8_lossy(value.get(1..).unwrap_or_default());
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
    let data = data.get(leading_crlf(data)..).unwrap_or_default();
    let refuse = |status: u16, reason: String, reply: Option<ReplyHeaders>| Malformed {
        status,
        reason,
        reply: reply.map(Box::new),
    };
    let head_end = find(data, b"\r\n\r\n");
    let head_len = head_end.unwrap_or(data.len());
    let cut = data
        .get(..head_len.min(limits.max_header_bytes + 4))
        .unwrap_or(data);
    // A section cut at the size limit may end inside a character.
    let cut_inside_a_char =
        |e: &std::str::Utf8Error| cut.len() < head_len && cut.len() - e.valid_up_to() < 4;
    let (head, mut problem) = match std::str::from_utf8(cut) {
        Ok(h) => (std::borrow::Cow::Borrowed(h), None),
        Err(e) if cut_inside_a_char(&e) => {
            let valid = cut.get(..e.valid_up_to()).unwrap_or_default();
            (String::from_utf8_lossy(valid), None)
        }
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
        let &[method, uri, version] = parts.as_slice() else {
            return Err(fail(400, "Malformed Request-Line"));
        };
        if [method, uri, version].iter().any(|p| p.is_empty()) {
            return Err(fail(400, "Malformed Request-Line"));
        }
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
    let available = data.get(head_end + 4..).unwrap_or_default();
    let body = match content_length {
        Some(n) if n > limits.max_body_bytes => return Err(fail(513, "Message Too Large")),
        Some(n) => match available.get(..n) {
            Some(body) => body,
            None => return Err(fail(400, "Content-Length Larger Than Message")),
        },
        None if datagram => available,
        None => &[],
    };
    if body.len() > limits.max_body_bytes {
        return Err(fail(513, "Message Too Large"));
    }

    let top_via = reply
        .vias
        .first()
        .and_then(|v| parse_top_via(v))
        .ok_or_else(|| fail(400, "Malformed Via"))?;
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
    let scheme_ok = scheme
        .as_bytes()
        .first()
        .is_some_and(|b| b.is_ascii_alphabetic())
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
            let after_user = rest.rfind('@').map_or(0, |i| i + 1);
            if rest.get(after_user..).is_some_and(|h| h.contains('?')) {
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
    let hostport = rest.get(host_start..)?.split(';').next()?;
    let (host, port) = if let Some(inner) = hostport.strip_prefix('[') {
        let close = inner.find(']')?;
        let v6 = inner.get(..close)?;
        if v6.is_empty()
            || !v6
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return None;
        }
        let after = inner.get(close + 1..)?;
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
    let (transport, sent_by) = rest.split_at_checked(split)?;
    let transport = transport.to_ascii_uppercase();
    if !is_token(&transport) {
        return None;
    }
    // rsipstack's Transport is a closed enum; RFC 3261 allows any token
    // (`other-transport`), which only names the hop, so parse the sent-by
    // with a transport it knows.
    let via = rs::typed::Via::parse(&format!("SIP/2.0/UDP {sent_by}")).ok()?;
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
pub(super) fn tag_of(value: &str) -> Result<Option<String>, ()> {
    let v = value.trim();
    let params = if let Some(lt) = find_unquoted(v, b'<')? {
        let display = v.get(..lt).ok_or(())?.trim();
        if display.starts_with('"') {
            let close = end_of_quoted(display).ok_or(())?;
            if !display.get(close..).ok_or(())?.trim().is_empty() {
                return Err(());
            }
        } else if !display.split_whitespace().all(is_token) {
            return Err(());
        }
        let gt = v.get(lt..).and_then(|r| r.find('>')).ok_or(())? + lt;
        let uri = v.get(lt + 1..gt).ok_or(())?;
        if uri.is_empty() || uri.contains(char::is_whitespace) || !uri.contains(':') {
            return Err(());
        }
        v.get(gt + 1..).ok_or(())?
    } else {
        let (uri, params) = v
            .split_at_checked(v.find(';').unwrap_or(v.len()))
            .ok_or(())?;
        let uri = uri.trim_end();
        if uri.is_empty() || uri.contains(char::is_whitespace) || !uri.contains(':') {
            return Err(());
        }
        params
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
pub(super) fn find_unquoted(s: &str, c: u8) -> Result<Option<usize>, ()> {
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
