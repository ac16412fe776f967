//! The one table of display names (Chinese) for what the register stores
//! by an English id: categories, states (a ticket's outcome is its state),
//! measures, a lead's value, the paging channels, and the stand-ins for
//! "no category" and "no unit". The statistics, the charts, the exports,
//! the monthly report and the CLI take their labels from here; the pages
//! (the mobile page, the board) get [`table`] as JSON inside the page
//! (`api`), so no copy of it lives in their scripts. Members and units are
//! named by the roster (`Roster::name_of`), not here.

use serde_json::{json, Value};

use super::model::{Category, LeadValue, Measure, State, ALL_STATES};

/// A category's name (电话菜单的类别).
pub fn category(c: Category) -> &'static str {
    match c {
        Category::Lead => "执行线索",
        Category::Violence => "暴力抗法/突发事件",
        Category::Partner => "公安/协助单位",
        Category::Consultation => "咨询",
        Category::Complaint => "信访投诉",
        Category::Preservation => "财产保全",
        Category::Other => "其他",
    }
}

/// A ticket with no category (the caller chose none).
pub const NO_CATEGORY: &str = "未分类";

/// The statistics' `by_unit` for a ticket nobody acknowledged.
pub const NO_UNIT: &str = "未签收";

/// The statistics' `by_unit` for a member of no unit.
pub const CENTER: &str = "指挥中心";

/// A state's name (a ticket's outcome is the state it is in).
pub fn state(s: State) -> &'static str {
    match s {
        State::Intake => "通话中",
        State::Open => "待签收",
        State::Acknowledged => "已签收",
        State::Dispatched => "已出警",
        State::OnScene => "已到场",
        State::Closed => "已办结",
        State::Abandoned => "已放弃",
        State::Cancelled => "已撤销",
        State::Duplicate => "重复",
    }
}

/// A disposal measure's name (处置措施).
pub fn measure(m: Measure) -> &'static str {
    match m {
        Measure::Summons => "传唤",
        Measure::CompelledAppearance => "拘传",
        Measure::Detention => "拘留",
        Measure::Search => "搜查",
        Measure::Seal => "查封",
        Measure::Seizure => "扣押",
        Measure::NoneFound => "未发现",
        Measure::Other => "其他",
    }
}

/// Every measure, in the order the forms offer them.
pub const MEASURES: [Measure; 8] = [
    Measure::Summons,
    Measure::CompelledAppearance,
    Measure::Detention,
    Measure::Search,
    Measure::Seal,
    Measure::Seizure,
    Measure::NoneFound,
    Measure::Other,
];

/// What a closed lead was worth.
pub fn lead_value(v: LeadValue) -> &'static str {
    match v {
        LeadValue::Valuable => "有价值",
        LeadValue::Ordinary => "一般",
        LeadValue::Worthless => "无效",
    }
}

/// The paging channels an attempt names (`call::dial`, `paging::channels`).
pub const CHANNELS: [(&str, &str); 6] = [
    ("event", "页面推送"),
    ("call", "电话"),
    ("phone", "手机"),
    ("registered", "软电话"),
    ("sip_message", "短信"),
    ("webhook", "群机器人"),
];

/// A channel's name; one this table does not know is 其他渠道.
pub fn channel(id: &str) -> &'static str {
    CHANNELS
        .iter()
        .find(|(k, _)| *k == id)
        .map_or("其他渠道", |(_, v)| v)
}

/// A category id as the statistics key it (`none`: no category) to its
/// name; an id no category has is shown as it is.
pub fn category_key(key: &str) -> String {
    match key {
        "none" => NO_CATEGORY.into(),
        k => Category::ALL
            .iter()
            .find(|c| c.as_str() == k)
            .map_or_else(|| k.to_string(), |c| category(*c).to_string()),
    }
}

/// A state id (the statistics' outcomes) to its name.
pub fn state_key(key: &str) -> String {
    ALL_STATES
        .iter()
        .find(|s| s.as_str() == key)
        .map_or_else(|| key.to_string(), |s| state(*s).to_string())
}

/// An ISO week key (`2026-W49`) as 2026年第49周.
pub fn week_key(key: &str) -> String {
    match key.split_once("-W") {
        Some((y, w)) => format!("{y}年第{}周", w.trim_start_matches('0')),
        None => key.to_string(),
    }
}

/// The whole table as JSON for the pages' scripts: `categories`,
/// `states`, `measures` (in order, `[id, name]` pairs), `values`,
/// `channels`, `none`.
pub fn table() -> Value {
    let categories: serde_json::Map<String, Value> = Category::ALL
        .iter()
        .map(|c| (c.as_str().to_string(), json!(category(*c))))
        .collect();
    let states: serde_json::Map<String, Value> = ALL_STATES
        .iter()
        .map(|s| (s.as_str().to_string(), json!(state(*s))))
        .collect();
    let measures: Vec<Value> = MEASURES
        .iter()
        .map(|m| json!([id(m), measure(*m)]))
        .collect();
    let values: serde_json::Map<String, Value> = [
        LeadValue::Valuable,
        LeadValue::Ordinary,
        LeadValue::Worthless,
    ]
    .iter()
    .map(|v| (id(v), json!(lead_value(*v))))
    .collect();
    let channels: serde_json::Map<String, Value> = CHANNELS
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    json!({
        "categories": categories,
        "states": states,
        "measures": measures,
        "values": values,
        "channels": channels,
        "none": {"category": NO_CATEGORY, "unit": NO_UNIT, "center": CENTER},
    })
}

/// The id the API writes for a unit enum (serde, `snake_case`).
fn id<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every variant has a Chinese name, none is left as its English id,
    /// and no two share one within a kind.
    #[test]
    fn every_variant_has_a_chinese_name() {
        let cjk = |s: &str| s.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c));
        let mut seen = std::collections::BTreeSet::new();
        for c in Category::ALL {
            assert!(cjk(category(c)), "{c:?}");
            assert!(seen.insert(category(c)), "{c:?} shares its name");
        }
        seen.clear();
        for s in ALL_STATES {
            assert!(cjk(state(s)), "{s:?}");
            assert!(seen.insert(state(s)), "{s:?} shares its name");
        }
        // Measures: MEASURES holds each once (a match over it would not
        // compile without every variant in `measure`).
        let ids: std::collections::BTreeSet<String> = MEASURES.iter().map(id).collect();
        assert_eq!(ids.len(), 8);
        for (k, v) in CHANNELS {
            assert!(cjk(v), "{k}");
        }
        let t = table();
        assert_eq!(
            t["categories"].as_object().unwrap().len(),
            Category::ALL.len()
        );
        assert_eq!(t["states"].as_object().unwrap().len(), ALL_STATES.len());
        assert_eq!(t["measures"][1], json!(["compelled_appearance", "拘传"]));
        assert_eq!(t["values"]["worthless"], "无效");
    }

    #[test]
    fn statistics_keys_become_names() {
        assert_eq!(category_key("lead"), "执行线索");
        assert_eq!(category_key("none"), "未分类");
        assert_eq!(state_key("on_scene"), "已到场");
        assert_eq!(week_key("2026-W05"), "2026年第5周");
        assert_eq!(channel("sip_message"), "短信");
        assert_eq!(channel("carrier pigeon"), "其他渠道");
    }
}
