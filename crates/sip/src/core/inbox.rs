//! MESSAGE (RFC 3428) outside a call, when the gateway takes replies to its
//! pages: the core checks the request's form (a `text/plain` body of at
//! most [`MAX_TEXT_BYTES`]: else 415 or 413), keeps its server transaction
//! and hands it over as [`Output::Text`] with what vouches for its sender:
//! where it came from, and the identity a `[sip] trusted` element asserts
//! (P-Asserted-Identity, else From), never the From of anyone else. The
//! app (`paging::replies`) answers with [`Core::answer_handed`], as the
//! registrar answers a REGISTER; no answer in [`REGISTRAR_WAIT`]: 503.
//!
//! Like every request outside a dialog it has passed the per-source limits
//! first (`Admission::request`): a flood of replies from a stranger gets
//! stateless 503s, then silence, before it reaches the app.

use super::*;

/// The longest body handed over; a reply to a page is a few bytes.
pub const MAX_TEXT_BYTES: usize = 1024;

/// A MESSAGE for the app to decide.
#[derive(Debug, Clone)]
pub struct TextRequest {
    /// The server transaction to answer on.
    pub id: u64,
    /// The From header's user part, whoever wrote it (only claimed).
    pub from_user: Option<String>,
    /// The sender's identity as a `[sip] trusted` element (the court's
    /// PBX) asserts it: its P-Asserted-Identity's user, else its From's.
    /// `None` from anyone else.
    pub asserted: Option<String>,
    pub call_id: String,
    /// The body (UTF-8 or not: the app's parser decides).
    pub body: Bytes,
    /// The flow it came on.
    pub flow: Peer,
    /// Where it comes from (the flow's peer, or the source a proxy of
    /// `[sip] proxies` forwarded).
    pub origin: Origin,
}

impl Core {
    /// A MESSAGE: checked, kept, handed to the inbox.
    pub(super) fn on_text(&mut self, msg: &Message, method: &Method, peer: Peer, now: Instant) {
        let tag = random_token();
        let refuse = |core: &mut Core, code: u16, reason: &'static str| {
            let b = core
                .builder(msg, peer, code, reason)
                .to_tag(&tag)
                .header("Accept", "text/plain");
            core.respond_new(msg, method, peer, now, b, code);
        };
        let plain = msg.content_type().is_some_and(|t| t == "text/plain");
        if !msg.body.is_empty() && !plain {
            return refuse(self, 415, "Unsupported Media Type");
        }
        if msg.body.len() > MAX_TEXT_BYTES {
            return refuse(self, 413, "Request Entity Too Large");
        }
        if !self
            .admission
            .tx_room(self.origin.ip(), self.txs.len(), now)
        {
            return self.refuse_stateless(msg, peer, "transactions");
        }
        let trusted = self.admission.trusted(self.origin.ip());
        let asserted = trusted.then(|| msg.caller_identity(true).number).flatten();
        let from_user = message::display_and_user(&msg.reply.from).1;
        let id = self.hand_over(msg, method, peer, tag.clone(), now);
        self.out.push_back(Output::Text(Box::new(TextRequest {
            id,
            from_user,
            asserted,
            call_id: msg.call_id.clone(),
            body: msg.body.clone(),
            flow: peer,
            origin: self.origin,
        })));
    }
}
