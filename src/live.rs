//! The reloadable configuration in force: the roster (with the case
//! directory), the partners, the calendars, the prompts, the paging
//! policies and the webhook receivers are one
//! [`Loaded`] set behind one lock ([`Live`]). Each user takes the current
//! set when it starts a piece of work and keeps it to the end of it: a call
//! keeps the prompts it started with, a paging step the roster it resolved,
//! an API request the roster it checked. `crate::reload` loads the files
//! and replaces the set.
//!
//! The roster in force is the file's plan with the dynamic overrides (the
//! approved swaps and the director's overrides, which `crate::swaps` reads
//! from the store) applied after the file's own: [`Live::set_dynamic`]
//! puts a new list in force, [`Live::set`] new files under the same list.
//! Whoever resolves the duty (paging, the bridge, the handover, the board,
//! the API) reads [`Live::get`] and needs nothing of its own.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::escalation::Policies;
use crate::media::Prompt;
use crate::roster::{Calendar, Override, Roster};
use crate::webhook::WebhookTarget;

/// One consistent set of the reloadable configuration.
#[derive(Clone)]
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
    /// A set of the roster and calendars alone, for a process that only
    /// resolves the duty (the CLI).
    pub fn roster_only(roster: Roster, calendar: Calendar) -> Loaded {
        Loaded {
            roster,
            partners: Default::default(),
            calendar,
            prompts: Default::default(),
            policies: Default::default(),
            webhooks: Default::default(),
            partner_settings: Default::default(),
            case_settings: Default::default(),
            dispatch: Default::default(),
            fingerprint: String::new(),
        }
    }

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
pub struct Live(RwLock<InForce>);

/// The files' set, the dynamic overrides, and the two together.
struct InForce {
    files: Arc<Loaded>,
    dynamic: Vec<Override>,
    current: Arc<Loaded>,
}

/// A dynamic override left out, and why.
pub type LeftOut = Vec<(Override, String)>;

/// `files` with `dynamic` applied to its roster.
fn in_force(files: Arc<Loaded>, dynamic: Vec<Override>) -> (InForce, LeftOut) {
    let (current, left) = match dynamic.is_empty() {
        true => (files.clone(), Vec::new()),
        false => {
            let (roster, left) = files.roster.clone().with_dynamic(dynamic.clone());
            let mut set = (*files).clone();
            set.roster = roster;
            (Arc::new(set), left)
        }
    };
    (
        InForce {
            files,
            dynamic,
            current,
        },
        left,
    )
}

impl Live {
    pub fn new(first: Loaded) -> Live {
        Live(RwLock::new(in_force(Arc::new(first), Vec::new()).0))
    }

    /// The set in force now (kept by the caller for as long as it needs).
    pub fn get(&self) -> Arc<Loaded> {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .current
            .clone()
    }

    /// The files' set alone (the roster without the dynamic overrides).
    pub fn files(&self) -> Arc<Loaded> {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .files
            .clone()
    }

    /// Puts a new set of files in force under the same dynamic overrides;
    /// work already holding the old one finishes with it. The overrides the
    /// new roster cannot apply (a member or unit gone) are left out and
    /// returned.
    pub fn set(&self, next: Loaded) -> LeftOut {
        let mut g = self.0.write().unwrap_or_else(|e| e.into_inner());
        let (state, left) = in_force(Arc::new(next), std::mem::take(&mut g.dynamic));
        *g = state;
        left
    }

    /// Puts the dynamic overrides `list` in force (in the order they came
    /// into force) on the files in force; those the roster cannot apply
    /// are left out and returned.
    pub fn set_dynamic(&self, list: Vec<Override>) -> LeftOut {
        let mut g = self.0.write().unwrap_or_else(|e| e.into_inner());
        let (state, left) = in_force(g.files.clone(), list);
        *g = state;
        left
    }
}
