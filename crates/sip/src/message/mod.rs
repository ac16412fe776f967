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

mod build;
mod identity;
mod parse;
mod values;

pub use build::*;
pub use identity::*;
pub use parse::*;
pub use values::*;

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
    /// TCP with TLS (RFC 3261 §26.3.1).
    Tls,
}

impl Transport {
    pub fn reliable(self) -> bool {
        self != Transport::Udp
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
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

#[cfg(test)]
mod tests;
