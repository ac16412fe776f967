//! Writing messages: responses to a request (the request's headers copied
//! back, the top Via stamped with `received`/`rport`), and our requests.

use super::*;

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
