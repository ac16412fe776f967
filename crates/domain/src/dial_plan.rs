//! The one dial plan for every call the gateway places through the court's
//! trunk (pages to a member's phone, bridges, callbacks, follow-ups): what
//! the trunk dials for a number (its national form), and whether the court
//! dials it at all (`[trunk] allow` and `deny`).
//!
//! A number is dialled when an `allow` pattern matches its national form
//! and no `deny` pattern does. The defaults allow mainland mobile and
//! landline numbers and refuse emergency and short service numbers
//! (110, 119, 120, 122, 12345, 10086, 95xxx, 96xxx …) and premium-rate
//! information lines (168…); an international number (`00…`) or any other
//! is refused unless an `allow` pattern lists it. Pure functions, no I/O.
//!
//! Patterns (as in a PBX's dial plan): digits stand for themselves, `X` is
//! any digit, `Z` 1-9, `N` 2-9, `[1-5]` or `[135]` one of those digits, and
//! a final `.` one or more digits more. `13XXXXXXXXX` is 11 digits starting
//! with 13; `00852.` any number in Hong Kong.

/// Mainland mobile numbers (11 digits, 13x-19x); landlines with their area
/// code (0 + 2-3 digits + 7-8 digits); local landlines of 7 or 8 digits.
pub const DEFAULT_ALLOW: &[&str] = &[
    "1[3-9]XXXXXXXXX",
    "0ZXXXXXXXX",
    "0ZXXXXXXXXX",
    "0ZXXXXXXXXXX",
    "[2-8]XXXXXX",
    "[2-8]XXXXXXX",
];

/// Emergency and service numbers (110, 119, 120, 122, 114, 10086, 12345,
/// 106 SMS …), 95xxx/96xxx service lines, 168 information (premium) lines,
/// local or behind an area code.
pub const DEFAULT_DENY: &[&str] = &["1[0-2].", "9[5-6].", "168.", "0ZX168.", "0ZXX168."];

/// One compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    text: String,
    /// The digits each position allows (bit n: digit n).
    places: Vec<u16>,
    /// A final `.`: one or more digits more.
    more: bool,
}

impl Pattern {
    fn parse(text: &str) -> Result<Pattern, String> {
        let bad = |why: &str| format!("{text:?}: {why}");
        let mut places = Vec::new();
        let mut more = false;
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            if more {
                return Err(bad("`.` must come last"));
            }
            let set: u16 = match c {
                '0'..='9' => 1 << (c as u8 - b'0'),
                'X' | 'x' => 0b11_1111_1111,
                'Z' | 'z' => 0b11_1111_1110,
                'N' | 'n' => 0b11_1111_1100,
                '.' => {
                    more = true;
                    continue;
                }
                '[' => {
                    let mut set = 0u16;
                    let mut prev: Option<u8> = None;
                    loop {
                        match chars.next() {
                            Some(']') => break,
                            Some('-') => {
                                let (Some(from), Some(to @ '0'..='9')) = (prev, chars.next())
                                else {
                                    return Err(bad("a range is digit-digit, as in [1-5]"));
                                };
                                let to = to as u8 - b'0';
                                if to < from {
                                    return Err(bad("a range must run upwards"));
                                }
                                for d in from..=to {
                                    set |= 1 << d;
                                }
                                prev = None;
                            }
                            Some(d @ '0'..='9') => {
                                let d = d as u8 - b'0';
                                set |= 1 << d;
                                prev = Some(d);
                            }
                            _ => return Err(bad("a class holds digits and ranges, as in [135] or [1-5], and ends with ]")),
                        }
                    }
                    if set == 0 {
                        return Err(bad("an empty class"));
                    }
                    set
                }
                _ => {
                    return Err(bad(
                        "only digits, X, Z, N, [classes] and a final . are patterns",
                    ))
                }
            };
            places.push(set);
        }
        if places.is_empty() {
            return Err(bad("an empty pattern"));
        }
        Ok(Pattern {
            text: text.to_string(),
            places,
            more,
        })
    }

    fn matches(&self, digits: &str) -> bool {
        let n = self.places.len();
        let len_ok = if self.more {
            digits.len() > n
        } else {
            digits.len() == n
        };
        len_ok
            && digits
                .bytes()
                .zip(&self.places)
                .all(|(b, set)| b.is_ascii_digit() && set & (1 << (b - b'0')) != 0)
    }
}

/// `[trunk] allow` and `deny`, compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialPlan {
    allow: Vec<Pattern>,
    deny: Vec<Pattern>,
}

/// Why the court does not dial a number. Never names the number: an
/// informant's number stays secret in every message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("not a phone number (3 to 15 digits, optionally +country code)")]
    NotANumber,
    #[error("the dial plan refuses it ([trunk] deny {0:?})")]
    Denied(String),
    #[error("the dial plan does not allow it (no [trunk] allow pattern matches)")]
    NotAllowed,
}

impl DialPlan {
    /// The plan of `allow` and `deny`; `Err` names the key and the pattern.
    pub fn new(allow: &[String], deny: &[String]) -> Result<DialPlan, (&'static str, String)> {
        let compile = |key: &'static str, list: &[String]| {
            list.iter()
                .map(|p| Pattern::parse(p).map_err(|e| (key, e)))
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(DialPlan {
            allow: compile("trunk.allow", allow)?,
            deny: compile("trunk.deny", deny)?,
        })
    }

    /// The defaults.
    pub fn standard() -> DialPlan {
        let list = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        DialPlan::new(&list(DEFAULT_ALLOW), &list(DEFAULT_DENY)).unwrap_or_else(|_| DialPlan {
            allow: Vec::new(),
            deny: Vec::new(),
        })
    }

    /// What the trunk dials for `phone`, if the court dials it.
    pub fn permit(&self, phone: &str) -> Result<String, Refusal> {
        let digits = national(phone).ok_or(Refusal::NotANumber)?;
        if let Some(p) = self.deny.iter().find(|p| p.matches(&digits)) {
            return Err(Refusal::Denied(p.text.clone()));
        }
        if !self.allow.iter().any(|p| p.matches(&digits)) {
            return Err(Refusal::NotAllowed);
        }
        Ok(digits)
    }
}

/// The national form of a number: E.164 in China becomes what is dialled
/// inside it (a mobile `+86138…` → `138…`, a landline `+86532…` →
/// `0532…`), another country `00…`; a national number stays as written
/// (spaces, dashes and brackets dropped). `None` for what is no number.
pub fn national(phone: &str) -> Option<String> {
    let p: String = phone
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '(' | ')'))
        .collect();
    let (plus, digits) = match p.strip_prefix('+') {
        Some(d) => (true, d),
        None => (false, p.as_str()),
    };
    if digits.len() < 3 || digits.len() > 15 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !plus {
        return Some(digits.to_string());
    }
    Some(match digits.strip_prefix("86") {
        Some(rest) if rest.starts_with('1') && rest.len() == 11 => rest.to_string(),
        Some(rest) if !rest.is_empty() => format!("0{rest}"),
        Some(_) => return None,
        None => format!("00{digits}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn national_forms() {
        for (phone, want) in [
            ("+8653200000001", "053200000001"),
            ("+8613800000020", "13800000020"),
            ("+86 138-0000-0020", "13800000020"),
            ("053285551234", "053285551234"),
            ("85551234", "85551234"),
            ("+14155550100", "0014155550100"),
        ] {
            assert_eq!(national(phone).as_deref(), Some(want), "{phone}");
        }
        for bad in ["", "+", "+86", "abc", "138x", "+8612345678901234567"] {
            assert_eq!(national(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_standard_plan_dials_mobiles_and_landlines_only() {
        let plan = DialPlan::standard();
        for ok in [
            "13800000020",
            "+8619912345678",
            "053285551234",
            "01065551234",
            "+8653285551234",
            "85551234",
            "6555123",
        ] {
            assert!(plan.permit(ok).is_ok(), "{ok}");
        }
        let denied = |n: &str| match plan.permit(n) {
            Err(Refusal::Denied(p)) => p,
            other => panic!("{n}: {other:?}"),
        };
        assert_eq!(denied("110"), "1[0-2].");
        // "+86110" is no Chinese number (0110): refused all the same.
        assert_eq!(plan.permit("+86110"), Err(Refusal::NotAllowed));
        for n in [
            "119",
            "120",
            "122",
            "114",
            "12345",
            "10086",
            "12110",
            "1069012345",
        ] {
            assert_eq!(denied(n), "1[0-2].", "{n}");
        }
        assert_eq!(denied("95588"), "9[5-6].");
        assert_eq!(denied("16812345"), "168.");
        assert_eq!(denied("053216812345"), "0ZXX168.");
        for n in [
            "+8821234567890",
            "+14155550100",
            "4008123123",
            "0110",
            "12",
            "1380000002",
        ] {
            assert!(plan.permit(n).is_err(), "{n}");
        }
        assert_eq!(plan.permit("+8821234567890"), Err(Refusal::NotAllowed));
        assert_eq!(plan.permit("12"), Err(Refusal::NotANumber));
    }

    #[test]
    fn an_international_prefix_is_dialled_once_listed() {
        let allow = vec!["1[3-9]XXXXXXXXX".to_string(), "00882.".to_string()];
        let plan = DialPlan::new(&allow, &[]).unwrap();
        assert_eq!(
            plan.permit("+8821234567890").as_deref(),
            Ok("008821234567890")
        );
        assert_eq!(plan.permit("+4412345678"), Err(Refusal::NotAllowed));
    }

    #[test]
    fn patterns_and_their_errors() {
        let p = Pattern::parse("0[13-5]X.").unwrap();
        assert!(p.matches("0189"));
        assert!(p.matches("04123"));
        assert!(!p.matches("018"), "`.` wants one digit more at least");
        assert!(!p.matches("0289"));
        for (bad, why) in [
            ("", "empty"),
            ("1.2", "last"),
            ("1[", "ends with ]"),
            ("[]", "empty class"),
            ("[5-1]", "upwards"),
            ("1a", "only digits"),
        ] {
            let e = Pattern::parse(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
        let e = DialPlan::new(&["1[".into()], &[]).unwrap_err();
        assert_eq!(e.0, "trunk.allow");
        let e = DialPlan::new(&[], &["x?".into()]).unwrap_err();
        assert_eq!(e.0, "trunk.deny");
    }

    #[test]
    fn a_refusal_never_names_the_number() {
        let plan = DialPlan::standard();
        for n in ["110", "+8821234567890", "abc12"] {
            let e = plan.permit(n).unwrap_err().to_string();
            assert!(!e.contains(n.trim_start_matches('+')), "{e}");
        }
    }
}
