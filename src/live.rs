//! The reloadable configuration in force: the roster (with the case
//! directory), the partners, the calendars, the prompts, the paging
//! policies and the webhook receivers are one
//! [`Loaded`] set behind one lock ([`Live`]). Each user takes the current
//! set when it starts a piece of work and keeps it to the end of it: a call
//! keeps the prompts it started with, a paging step the roster it resolved,
//! an API request the roster it checked. `crate::reload` loads the files
//! and replaces the set.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::escalation::Policies;
use crate::media::Prompt;
use crate::roster::{Calendar, Roster};
use crate::webhook::WebhookTarget;

/// One consistent set of the reloadable configuration.
pub struct Loaded {
    /// The roster, with the case directory attached.
    pub roster: Roster,
    /// The partners whose calls skip the menu.
    pub partners: crate::partners::Partners,
    pub calendar: Calendar,
    pub prompts: HashMap<crate::scripts::Prompt, Prompt>,
    pub policies: Policies,
    pub webhooks: HashMap<String, WebhookTarget>,
    /// The clocks' settings: `[partners]`, `[cases]`, `[dispatch]`.
    pub partner_settings: crate::partners::PartnerSettings,
    pub case_settings: crate::cases::CaseSettings,
    pub dispatch: crate::tickets::clocks::DispatchSettings,
    /// The fingerprint of the files it came from.
    pub fingerprint: String,
}

impl Loaded {
    /// The partner `name`'s name spoken, when `[partners]` gave it one
    /// (`PartnerName` by its place in this set's file): for the officer's
    /// whisper and the paging call.
    pub fn partner_name_prompt(&self, name: &str) -> Option<crate::scripts::Prompt> {
        let i = self.partners.list().iter().position(|p| p.name == name)?;
        let prompt = crate::scripts::Prompt::PartnerName(u16::try_from(i).ok()?);
        self.prompts.contains_key(&prompt).then_some(prompt)
    }
}

/// The current set.
pub struct Live(RwLock<Arc<Loaded>>);

impl Live {
    pub fn new(first: Loaded) -> Live {
        Live(RwLock::new(Arc::new(first)))
    }

    /// The set in force now (kept by the caller for as long as it needs).
    pub fn get(&self) -> Arc<Loaded> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Puts a new set in force; work already holding the old one finishes
    /// with it.
    pub fn set(&self, next: Loaded) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(next);
    }
}
