//! The call scripts (sans-IO over keys, prompts finished and deadlines;
//! `script::Script` is what the call engine drives): the caller's
//! [`intake`], the officer's [`question`] (a page, a whisper, the
//! follow-up's survey), [`ringback`] (connecting, ringback, the bridged
//! call, an announcement). The prompts of all are named here ([`Prompt`]).

pub mod intake;
pub mod question;
pub mod ringback;
pub mod script;

pub use script::{Input, Script};

use crate::tickets::model::Category;

/// The prompts the intake plays, by role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Prompt {
    Greeting,
    Menu,
    CaseNumber,
    CaseReadback,
    Confirm,
    Invalid,
    Message,
    Beep,
    TicketReadback,
    Thanks,
    Digit(u8),
    /// Paging calls: "the command center, an urgent report, number ..."
    PageIntro,
    /// Paging calls: "1 to acknowledge, 2 to pass it on".
    PageAsk,
    /// The name of a category, for paging calls.
    Category(Category),
    /// 「转人工请按0」, after the greeting.
    PersonHint,
    /// Key 0: "connecting you, please wait".
    Connecting,
    /// While a person is rung.
    Ringback,
    /// Nobody took the call: "leave a message".
    NoPerson,
    /// The officer's whisper before a bridge: "key 1 to take it".
    Whisper,
    /// The officer's whisper before a partner's call: "the police or an
    /// assisting unit calls, key 1 to take it", the partner's own name
    /// prompt after it when `[partners]` gives one.
    PartnerWhisper,
    /// A partner's own name (`[partners]`'s `prompt`), by its place in
    /// the partners file.
    PartnerName(u16),
    /// A partner nobody took the call of: "the duty is told and will come".
    PartnerPromise,
    /// A consultation's closing: "the case's handler will answer you within
    /// three working days".
    ConsultationPromise,
    /// The officer's whisper before a callback.
    CallbackWhisper,
    /// The informant, called back, before the officer.
    CallbackIntro,
    /// The follow-up call's question (1-5).
    FollowUp,
    /// "9 if you want no follow-up call".
    FollowUpOptOut,
}
