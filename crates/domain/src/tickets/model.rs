//! The lead ticket: the court's register entry (报案记录, 出警, 处置) for one
//! report, and the states it moves through. Pure data and rules.
//!
//! ```text
//!   intake ──> open ──> acknowledged ──> dispatched ──> on_scene ──> closed
//!     │          │  (签收)     │    (出警)      │                     ^
//!     │          └─────────────┴───────────────┴────── closed ───────┘
//!     └─> abandoned (nothing usable given)
//!   any state but the final ones ──> cancelled | duplicate (authorised person)
//! ```

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// Where a ticket stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Intake,
    Open,
    Acknowledged,
    Dispatched,
    OnScene,
    Closed,
    Abandoned,
    Cancelled,
    Duplicate,
}

pub const ALL_STATES: [State; 9] = [
    State::Intake,
    State::Open,
    State::Acknowledged,
    State::Dispatched,
    State::OnScene,
    State::Closed,
    State::Abandoned,
    State::Cancelled,
    State::Duplicate,
];

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Intake => "intake",
            State::Open => "open",
            State::Acknowledged => "acknowledged",
            State::Dispatched => "dispatched",
            State::OnScene => "on_scene",
            State::Closed => "closed",
            State::Abandoned => "abandoned",
            State::Cancelled => "cancelled",
            State::Duplicate => "duplicate",
        }
    }

    pub fn parse(s: &str) -> Option<State> {
        ALL_STATES.into_iter().find(|st| st.as_str() == s)
    }

    /// No way out of these.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            State::Closed | State::Abandoned | State::Cancelled | State::Duplicate
        )
    }

    /// The states from which a ticket may move to `self`.
    pub fn allowed_from(self) -> &'static [State] {
        use State::*;
        match self {
            Intake => &[],
            Open => &[Intake],
            Acknowledged => &[Open],
            Dispatched => &[Acknowledged],
            OnScene => &[Dispatched],
            // Complaints and leads settled by phone close without dispatch.
            Closed => &[Open, Acknowledged, Dispatched, OnScene],
            Abandoned => &[Intake],
            Cancelled | Duplicate => &[Intake, Open, Acknowledged, Dispatched, OnScene],
        }
    }

    pub fn can_move_to(self, to: State) -> bool {
        to.allowed_from().contains(&self)
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the report is about (the intake menu, rule 第十条(三)), where the
/// handling differs (第十六条, 第十七条).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// 执行线索: where a debtor is, or their assets.
    Lead,
    /// 暴力抗法 / 突发事件 at an enforcement scene (第十七条(四)).
    Violence,
    /// The police or an assisting unit (another court, a bank, a hotel's
    /// police link) holds a debtor or asks for help (第十七条(五)(十一),
    /// 第三十七条): the person must be collected in time.
    Partner,
    /// 咨询: a question about a case, for its handler, not the night duty.
    Consultation,
    /// 信访投诉.
    Complaint,
    /// 财产保全, urgent (第十六条).
    Preservation,
    Other,
}

impl Category {
    /// Every category, in the sample menu's order.
    pub const ALL: [Category; 7] = [
        Category::Lead,
        Category::Violence,
        Category::Partner,
        Category::Consultation,
        Category::Complaint,
        Category::Preservation,
        Category::Other,
    ];

    pub fn parse(s: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Lead => "lead",
            Category::Violence => "violence",
            Category::Partner => "partner",
            Category::Consultation => "consultation",
            Category::Complaint => "complaint",
            Category::Preservation => "preservation",
            Category::Other => "other",
        }
    }

    /// Whether its tickets go to a dispatch (出警) and so are held to the
    /// five-minute rule (第二十三条): every category but consultations
    /// (answered by the case's handler) and complaints (the petition desk),
    /// which are never dispatched; the default escalation policies watch
    /// the rule for exactly these. A ticket with no category yet is a lead.
    pub fn five_minute_rule(self) -> bool {
        !matches!(self, Category::Consultation | Category::Complaint)
    }
}

/// Measures taken on disposal (处置).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    /// 传唤
    Summons,
    /// 拘传
    CompelledAppearance,
    /// 拘留
    Detention,
    /// 搜查
    Search,
    /// 查封
    Seal,
    /// 扣押
    Seizure,
    /// Nobody or nothing found.
    NoneFound,
    Other,
}

/// Who called, as received, each value sealed (`privacy::CallerKey`): the
/// informant stays secret (rule 第二十条(三)).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caller {
    pub number: Option<String>,
    /// The court's trunk or SBC vouched for the number (`[sip] trusted`:
    /// its P-Asserted-Identity, or its From); else it is only what the
    /// caller's INVITE claimed, shown as 未核实 and never dialled.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub asserted: bool,
    pub display_name: Option<String>,
    /// The raw P-Asserted-Identity header.
    pub p_asserted_identity: Option<String>,
    /// The caller asked for privacy (Privacy: id/user, or anonymous From).
    pub privacy: bool,
    /// How the call came when not by phone: `web` (the caller page).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// A web caller's address, sealed like a number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<String>,
}

/// How a ticket's number is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Provenance {
    /// Vouched for by the court's trunk or SBC.
    Asserted,
    /// Only what the caller's request said (未核实).
    Claimed,
    /// No number: withheld (privacy), anonymous, or a browser's call.
    Withheld,
}

impl Caller {
    pub fn provenance(&self) -> Provenance {
        match (&self.number, self.privacy, self.asserted) {
            (None, _, _) | (_, true, _) => Provenance::Withheld,
            (Some(_), false, true) => Provenance::Asserted,
            (Some(_), false, false) => Provenance::Claimed,
        }
    }
}

/// The register's report section.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Intake {
    pub category: Option<Category>,
    /// 案号, when the caller gave one.
    pub case_number: Option<String>,
    pub urgent: bool,
    pub whereabouts: Option<String>,
    /// The whereabouts were read by the machine from the transcript
    /// (`whereabouts::extract`), not given or corrected by a person.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub whereabouts_machine: bool,
    /// Where the caller's spoken message starts and ends in the call's
    /// recording (milliseconds from its start).
    pub message_start_ms: Option<u64>,
    pub message_end_ms: Option<u64>,
    /// How long the call lasted, once it ended.
    pub call_seconds: Option<f64>,
    /// How the call ended (`caller_bye`, `max_duration`, ...).
    pub call_end: Option<String>,
    /// The caller pressed 9: no follow-up call (回访).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_follow_up: bool,
    /// The partner (`[partners]`) whose asserted number called, by name,
    /// in clear: a police station or a court is no informant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partner: Option<String>,
}

/// Where a ticket went when it opened (the triage): the case directory's
/// handler, the earlier reports on the same case.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Triage {
    /// When the triage ran (the paging worker's first look at the ticket);
    /// `None`: not yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<Timestamp>,
    /// The handling judge or unit (a member or unit id) the case directory
    /// names for the case number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handler: Option<String>,
    /// Whether the case directory knows the case number (`None`: no case
    /// number was given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case_known: Option<bool>,
    /// Earlier tickets naming the same case within the linking window,
    /// oldest first: this is report `linked.len() + 1` on the case.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub linked: Vec<String>,
    /// The linking window the triage looked back over (`[cases]
    /// link_days` then), for 本案N日内第M次举报.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_days: Option<u32>,
    /// An earlier lead on the case, dispatched and not closed, whose
    /// officers this one was sent to instead of a second dispatch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub joined: Option<String>,
    /// Those officers (member ids).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub joined_officers: Vec<String>,
}

impl Triage {
    /// 本案7日内第3次举报: this report's place among the case's reports
    /// within the linking window, when it is not the first.
    pub fn repeat_report(&self) -> Option<String> {
        if self.linked.is_empty() {
            return None;
        }
        Some(format!(
            "本案{}日内第{}次举报",
            self.link_days.unwrap_or_default(),
            self.linked.len() + 1
        ))
    }
}

/// The clocks that run on a ticket besides the five minutes (those come
/// from its escalation policy), each an instant by which something is due.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deadlines {
    /// A partner's call: the person held must be collected (on scene) by
    /// then (`[partners] pickup_minutes` from the call).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pickup_by: Option<Timestamp>,
    /// A consultation: answered by then (`[cases] answer_working_days`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer_by: Option<Timestamp>,
    /// Dispatched: on scene by then (`[dispatch] arrive_minutes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arrive_by: Option<Timestamp>,
    /// A property lead: checked by then (seven days, three when urgent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_by: Option<Timestamp>,
    /// The deadlines that passed unmet (`pickup`, `answer`, `arrival`,
    /// `verification`), as they passed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missed: Vec<String>,
}

/// How a consultation was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswerVia {
    /// The confidential callback (回拨, `POST /tickets/{n}/callback`).
    Callback,
    /// A recorded reply.
    Reply,
}

impl AnswerVia {
    pub fn as_str(self) -> &'static str {
        match self {
            AnswerVia::Callback => "callback",
            AnswerVia::Reply => "reply",
        }
    }
}

/// A consultation's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    pub by: String,
    pub at: Timestamp,
    /// `callback` (the confidential callback) or `reply` (a recorded reply).
    pub via: String,
    pub text: String,
}

/// A lead marked as one about property (财产线索): checked within seven
/// days, three when urgent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Property {
    pub urgent: bool,
    pub by: String,
    pub at: Timestamp,
    /// When it was checked, and what was found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
}

/// What a closed lead was worth, as the director rates it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeadValue {
    /// 有价值
    Valuable,
    /// 一般
    Ordinary,
    /// 无效
    Worthless,
}

/// The director's rating, the reward proposed, and the decision on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reward {
    pub value: LeadValue,
    pub rated_by: String,
    pub rated_at: Timestamp,
    /// The reward proposed, in yuan (none: no reward).
    pub amount_yuan: Option<u32>,
    pub decision: Option<RewardDecision>,
}

/// The chief commander's or a deputy's decision on a proposed reward.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RewardDecision {
    pub approved: bool,
    pub by: String,
    pub at: Timestamp,
}

/// The follow-up call's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowUp {
    pub at: Timestamp,
    /// The informant's key, 1 (very unhappy) to 5 (very satisfied).
    pub satisfaction: Option<u8>,
    /// `key 4`, `no answer`, `answered, no key`, `answered 486`, ...
    pub outcome: String,
}

/// A person the gateway joined to the caller: the live bridge (key 0) or
/// an officer's callback (回拨).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Connection {
    /// `bridge` or `callback`.
    pub kind: String,
    pub member: String,
    /// How the member was reached (`call`, `registered`, `phone`).
    pub channel: String,
    pub connected_at: Timestamp,
    /// How long they talked, once it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
    /// How it ended (`caller_bye`, `officer_hung_up`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub how: Option<String>,
}

/// The dispatch section (签收, 出警, arrival).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dispatch {
    pub acknowledged_by: Option<String>,
    pub acknowledged_at: Option<Timestamp>,
    pub officers: Vec<String>,
    pub vehicle: Option<String>,
    pub departed_at: Option<Timestamp>,
    pub arrived_at: Option<Timestamp>,
    /// No dispatch within five minutes of opening (rule 第二十三条).
    #[serde(default)]
    pub five_minute_breach: bool,
}

/// The disposal section.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disposal {
    pub measures: Vec<Measure>,
    pub result: Option<String>,
    pub closed_by: Option<String>,
    pub closed_at: Option<Timestamp>,
}

/// A recording of the call (filled by the recording issue).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingLink {
    pub path: String,
    pub duration_ms: u64,
    pub sha256: String,
}

impl RecordingLink {
    /// The link to the recording at `path`, as the ticket keeps it.
    pub fn new(path: &std::path::Path, duration_ms: u64, sha256: String) -> RecordingLink {
        RecordingLink {
            path: path.display().to_string(),
            duration_ms,
            sha256,
        }
    }
}

/// The parts of a ticket kept as one JSON document; state, version and the
/// indexed fields live beside it (docs/redis-keys.md).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Register {
    pub caller: Caller,
    pub intake: Intake,
    pub dispatch: Dispatch,
    pub disposal: Disposal,
    pub notes: Vec<Note>,
    pub recordings: Vec<RecordingLink>,
    /// Who talked with the caller, when and how long.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub connections: Vec<Connection>,
    /// The follow-up call (回访) after closing, once made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follow_up: Option<FollowUp>,
    /// The lead's value and the informant's reward (第二十条(四)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reward: Option<Reward>,
    /// A legal hold: the ticket's recordings are kept past the retention
    /// period while it stands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold: Option<Hold>,
    /// Where it went when it opened.
    #[serde(default, skip_serializing_if = "is_default")]
    pub triage: Triage,
    #[serde(default, skip_serializing_if = "is_default")]
    pub deadlines: Deadlines,
    /// A consultation's answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<Answer>,
    /// A property lead and its check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub property: Option<Property>,
    /// The caller's side of the call's recording as text (the transcriber,
    /// docs/adr/0012-transcription.md); none while it waits its turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcript: Option<Transcript>,
}

/// The machine's transcript of the caller's channel of a recording.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transcript {
    /// `done` or `failed` (then `reason`, and retried while `attempts` is
    /// below the setting).
    pub status: String,
    #[serde(default)]
    pub text: String,
    /// The places the text names (`whereabouts::extract`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub place: Option<String>,
    /// `whisper-base`.
    #[serde(default)]
    pub model: String,
    /// The language decoded (`zh`).
    #[serde(default)]
    pub language: String,
    /// The audio's length in seconds.
    #[serde(default)]
    pub duration_s: f64,
    /// The sha256 of the recording it was made from.
    pub recording_sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Attempts made so far.
    #[serde(default)]
    pub attempts: u32,
    pub at: Timestamp,
}

impl Transcript {
    pub fn is_done(&self) -> bool {
        self.status == "done"
    }

    /// One line for text views: `transcript 被执行人…` or `transcript failed
    /// (reason)`.
    pub fn line(&self) -> String {
        if self.is_done() {
            format!("transcript {}", self.text)
        } else {
            format!(
                "transcript failed ({}), attempt {}",
                self.reason.as_deref().unwrap_or("unknown"),
                self.attempts
            )
        }
    }
}

fn is_default<T: Default + PartialEq>(t: &T) -> bool {
    *t == T::default()
}

/// Who put a ticket on legal hold, when and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    pub by: String,
    pub at: Timestamp,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    pub by: String,
    pub at: Timestamp,
    pub text: String,
}

/// A ticket as read from the store.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ticket {
    /// `2026-000123`: year (Asia/Shanghai) and a counter per year.
    pub number: String,
    pub call_id: String,
    pub state: State,
    /// Bumped by every change of state or register (not by entries that only
    /// add to the timeline, such as page attempts and downloads); a write
    /// naming an older version is refused.
    pub version: u64,
    pub received_at: Timestamp,
    #[serde(flatten)]
    pub register: Register,
}

/// One timeline entry (append-only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// The stream entry id.
    pub id: String,
    pub at: Timestamp,
    pub actor: String,
    pub action: String,
    pub from: Option<State>,
    pub to: State,
    pub version: u64,
    /// JSON details.
    pub details: String,
}

/// A list of tickets the store keeps (its `idx:<name>` key): every one,
/// the open ones, those paged or handed to a member or a unit, of a
/// category, in a state. Its name is built here and nowhere else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Index {
    All,
    Open,
    Member(String),
    Unit(String),
    Category(Category),
    State(State),
}

impl Index {
    /// The store's name of the list (`member:p-sun`, `state:open`, ...).
    pub fn name(&self) -> String {
        match self {
            Index::All => "all".into(),
            Index::Open => "open".into(),
            Index::Member(m) => format!("member:{m}"),
            Index::Unit(u) => format!("unit:{u}"),
            Index::Category(c) => format!("category:{}", c.as_str()),
            Index::State(s) => format!("state:{}", s.as_str()),
        }
    }
}

/// One change: who, what, and optionally the state to move to.
#[derive(Debug, Clone)]
pub struct Change {
    /// `None`: system changes, retried on a concurrent update.
    pub expected_version: Option<u64>,
    pub to: Option<State>,
    pub actor: String,
    pub action: String,
    pub details: serde_json::Value,
    /// Replay guard: the same op id is applied once.
    pub op_id: Option<String>,
    /// Index entries to add (`member:ID`, `unit:ID`).
    pub index: Vec<String>,
    /// A deadline the change sets (出警's arrival, a property lead's
    /// check): the escalation schedule looks at the ticket again by then,
    /// in the same atomic step, even when its policy is done.
    pub wake: Option<Timestamp>,
}

impl Change {
    pub fn new(actor: &str, action: &str) -> Change {
        Change {
            expected_version: None,
            to: None,
            actor: actor.to_string(),
            action: action.to_string(),
            details: serde_json::Value::Null,
            op_id: None,
            index: Vec::new(),
            wake: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_happy_path_is_allowed_step_by_step() {
        use State::*;
        let path = [Intake, Open, Acknowledged, Dispatched, OnScene, Closed];
        for w in path.windows(2) {
            assert!(w[0].can_move_to(w[1]), "{} -> {}", w[0], w[1]);
        }
        // No skipping 签收 or going back.
        assert!(!Open.can_move_to(Dispatched));
        assert!(!Dispatched.can_move_to(Acknowledged));
        assert!(!Intake.can_move_to(Closed));
    }

    #[test]
    fn final_states_have_no_way_out() {
        for from in ALL_STATES.into_iter().filter(|s| s.is_final()) {
            for to in ALL_STATES {
                assert!(!from.can_move_to(to), "{from} -> {to}");
            }
        }
    }

    #[test]
    fn names_round_trip() {
        for s in ALL_STATES {
            assert_eq!(State::parse(s.as_str()), Some(s));
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
        }
    }
}
