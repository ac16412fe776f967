//! Reading header values: URIs in angle brackets, display names and user
//! parts, comma lists outside quotes, header names in their long form.

use super::*;

/// The URI between `<` and `>`, or the whole value up to `;` for the bare form.
pub fn angle_uri(v: &str) -> Option<String> {
    if let (Some(a), Some(b)) = (v.find('<'), v.rfind('>')) {
        v.get(a + 1..b).map(|u| u.trim().to_string())
    } else {
        let u = v.split(';').next()?.trim();
        (!u.is_empty()).then(|| u.to_string())
    }
}

/// The display name and the user part (the number, for a phone) of a
/// From / P-Asserted-Identity value, as written (quotes removed).
pub fn display_and_user(v: &str) -> (Option<String>, Option<String>) {
    let v = v.trim();
    let display = match find_unquoted(v, b'<') {
        Ok(Some(lt)) => {
            let d = v.get(..lt).unwrap_or_default().trim();
            let d = d
                .strip_prefix('"')
                .and_then(|d| d.strip_suffix('"'))
                .map(|d| d.replace("\\\"", "\"").replace("\\\\", "\\"))
                .unwrap_or_else(|| d.to_string());
            (!d.is_empty()).then_some(d)
        }
        _ => None,
    };
    let user = angle_uri(v).and_then(|uri| {
        let (scheme, rest) = uri.split_once(':')?;
        let user = match rest.rfind('@') {
            Some(at) => rest.get(..at)?,
            None if scheme.eq_ignore_ascii_case("tel") => rest,
            None => return None,
        };
        let user = user.split([';', ':']).next()?.trim();
        (!user.is_empty()).then(|| user.to_string())
    });
    (display, user)
}

/// Splits a header value on commas that are outside quotes and angle brackets.
pub fn split_commas(v: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (mut quoted, mut angle, mut start) = (false, false, 0);
    let bytes = v.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if quoted => i += 1,
            b'"' => quoted = !quoted,
            b'<' if !quoted => angle = true,
            b'>' if !quoted => angle = false,
            b',' if !quoted && !angle => {
                out.push(v.get(start..i).unwrap_or_default().trim().to_string());
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    out.push(v.get(start..).unwrap_or_default().trim().to_string());
    out.retain(|s| !s.is_empty());
    out
}

/// Header name in its long form, lower case.
pub(super) fn canonical(name: &str) -> String {
    let n = name.trim().to_ascii_lowercase();
    let long = match n.as_str() {
        "v" => "via",
        "f" => "from",
        "t" => "to",
        "i" => "call-id",
        "m" => "contact",
        "l" => "content-length",
        "c" => "content-type",
        "k" => "supported",
        "s" => "subject",
        "e" => "content-encoding",
        "o" => "event",
        "r" => "refer-to",
        "u" => "allow-events",
        _ => return n,
    };
    long.to_string()
}

pub(super) fn name_value(h: &Header) -> (String, String) {
    let text = h.to_string();
    match text.split_once(':') {
        Some((n, v)) => (n.trim().to_string(), v.trim().to_string()),
        None => (text, String::new()),
    }
}

pub(super) fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
                )
        })
}
