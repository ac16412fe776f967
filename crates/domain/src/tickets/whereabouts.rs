//! Where a debtor is, as a caller said it: the places a transcript names
//! (a road 路/街/大道, a building 大厦/楼, a hotel 酒店/宾馆, a compound 小区,
//! a house number 号 ...), pulled out for the ticket's whereabouts field,
//! which then says it was machine-read. Pure text rules; a person corrects
//! what they get wrong.

/// What ends a place name. Longer markers first (大道 before 道 would be
/// matched, and 道 alone is too common: 知道).
const MARKERS: [&str; 19] = [
    "大道", "大厦", "酒店", "宾馆", "饭店", "旅馆", "小区", "公寓", "广场", "花园", "市场", "大街",
    "路", "街", "巷", "楼", "号", "村", "站",
];

/// Words that lead into a place: the place starts after the last of them
/// before its first marker.
const LEADS: [&str; 9] = ["住在", "位于", "躲在", "在", "到", "于", "去", "进了", "进"];

/// Not places, though they hold a marker.
const NOT_PLACES: [&str; 5] = ["号码", "路上", "楼下", "楼上", "一路"];

/// A place, when none of the words before it leads into it, starts at
/// most this many characters before its first marker.
const NO_LEAD_CHARS: usize = 8;

/// The longest whereabouts kept (characters).
const MAX_CHARS: usize = 60;

/// The places the transcript names, joined with `；` (in the order said),
/// or `None` when it names none.
pub fn extract(transcript: &str) -> Option<String> {
    let mut places: Vec<String> = Vec::new();
    for clause in transcript.split(|c: char| "，。,.！？!?；;、\n".contains(c) || c.is_whitespace())
    {
        if let Some(p) = place_in(clause) {
            if !places.contains(&p) {
                places.push(p);
            }
        }
    }
    if places.is_empty() {
        return None;
    }
    Some(places.join("；").chars().take(MAX_CHARS).collect())
}

/// The place in one clause: from after the lead word before its first
/// marker to the end of its last marker.
fn place_in(clause: &str) -> Option<String> {
    let chars: Vec<char> = clause.chars().collect();
    // Every marker's (start, end), in characters, skipping the non-places.
    let mut found: Vec<(usize, usize)> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let rest: String = chars[i..].iter().collect();
        if let Some(n) = NOT_PLACES.iter().find(|w| rest.starts_with(*w)) {
            i += n.chars().count();
            continue;
        }
        match MARKERS.iter().find(|m| rest.starts_with(*m)) {
            Some(m) => {
                let len = m.chars().count();
                found.push((i, i + len));
                i += len;
            }
            None => i += 1,
        }
    }
    let (&(first, _), &(_, end)) = (found.first()?, found.last()?);
    let before: String = chars[..first].iter().collect();
    let start = LEADS
        .iter()
        .filter_map(|l| {
            before
                .rfind(l)
                .map(|b| before[..b].chars().count() + l.chars().count())
        })
        .max()
        .unwrap_or_else(|| first.saturating_sub(NO_LEAD_CHARS));
    // A marker alone (路 said by itself) is no place.
    if first <= start {
        return None;
    }
    let place: String = chars[start..end].iter().collect();
    let place = place.trim_start_matches(['的', '了']).to_string();
    (place.chars().count() >= 2).then_some(place)
}

#[cfg(test)]
mod tests {
    use super::extract;

    #[test]
    fn a_road_and_a_number_after_where_they_live() {
        assert_eq!(
            extract("被执行人住在辽宁路一百二十号").as_deref(),
            Some("辽宁路一百二十号")
        );
    }

    #[test]
    fn buildings_hotels_and_compounds() {
        assert_eq!(
            extract("老板每天晚上回到华美大厦").as_deref(),
            Some("华美大厦")
        );
        assert_eq!(
            extract("他现在在香港中路的酒店。").as_deref(),
            Some("香港中路的酒店")
        );
        assert_eq!(
            extract("被执行人今晚住在东方宾馆").as_deref(),
            Some("东方宾馆")
        );
        assert_eq!(
            extract("我看见他进了幸福小区三号楼").as_deref(),
            Some("幸福小区三号楼")
        );
        assert_eq!(extract("请马上派人到长江大道").as_deref(), Some("长江大道"));
    }

    #[test]
    fn no_lead_word_keeps_a_few_characters_before_the_marker() {
        assert_eq!(
            extract("我说我看见他的车人民路八号").as_deref(),
            Some("我看见他的车人民路八号")
        );
    }

    #[test]
    fn two_places_in_two_clauses_are_both_kept_in_order() {
        assert_eq!(
            extract("他白天在海尔大厦十楼，晚上住在东方宾馆。").as_deref(),
            Some("海尔大厦十楼；东方宾馆")
        );
    }

    #[test]
    fn no_place_no_whereabouts() {
        assert_eq!(extract(""), None);
        assert_eq!(extract("被执行人开着一辆白色汽车"), None);
        assert_eq!(extract("我知道他的电话号码"), None);
        assert_eq!(extract("他在路上"), None);
        assert_eq!(extract("路"), None);
    }

    #[test]
    fn long_text_is_cut_at_sixty_characters() {
        let t = "他住在".to_string() + &"很".repeat(100) + "长的路";
        let w = extract(&t).unwrap();
        assert_eq!(w.chars().count(), 60);
    }
}
