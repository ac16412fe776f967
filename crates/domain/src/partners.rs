//! The court's partners (rules 第十七条(五)(十一), 第三十七条): police
//! command centres and stations, other courts, assisting units, each with
//! the numbers their calls come from. A call whose number the court's
//! trunk *asserts* and that is listed here skips the public menu: the duty
//! is rung at once, and the ticket names the partner in clear. A number
//! only claimed by the caller is no partner (docs/security.md).
//!
//! The file (`[partners] file`, reloadable like the roster):
//!
//! ```toml
//! [[partners]]
//! name = "市北公安分局指挥中心"
//! numbers = ["053266570110", "+8653266570111"]
//! prompt = "prompts/partner_police.wav"   # optional: the name, spoken
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::dial_plan::national;

/// `[partners]` in the main configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PartnerSettings {
    /// The partners file (relative to the configuration file); none: no
    /// partners, every caller takes the menu.
    pub file: Option<PathBuf>,
    /// The person a partner holds must be collected (the officers on
    /// scene) within this many minutes of the call.
    pub pickup_minutes: u64,
    /// This long before that deadline, with nobody on scene, the director
    /// and whoever holds the duty are told again.
    pub warn_minutes: u64,
}

impl Default for PartnerSettings {
    fn default() -> Self {
        PartnerSettings {
            file: None,
            pickup_minutes: 30,
            warn_minutes: 10,
        }
    }
}

/// One partner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partner {
    pub name: String,
    /// The numbers as written in the file.
    pub numbers: Vec<String>,
    /// The partner's name spoken (a WAV like the prompts), for the
    /// officer's whisper; relative to the partners file's directory.
    pub prompt: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PartnersFile {
    #[serde(default)]
    partners: Vec<PartnerEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PartnerEntry {
    name: Spanned<String>,
    numbers: Vec<Spanned<String>>,
    #[serde(default)]
    prompt: Option<PathBuf>,
}

/// The partners, found by number.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Partners {
    list: Vec<Partner>,
    /// National form of each number → index in `list`.
    by_number: HashMap<String, usize>,
}

/// The line of a byte offset in `text`, 1-based.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

impl Partners {
    /// Reads and checks the file; every error names the file, the line and
    /// the field.
    pub fn load(path: &Path) -> Result<Partners, String> {
        let file = path.display().to_string();
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("{file}: cannot read: {e}"))?;
        let mut p = Partners::parse(&text, &file)?;
        let base = path.parent().unwrap_or(Path::new("."));
        for partner in &mut p.list {
            if let Some(prompt) = &mut partner.prompt {
                *prompt = base.join(&*prompt);
            }
        }
        Ok(p)
    }

    /// Parses the file's text (`file` names it in errors).
    pub fn parse(text: &str, file: &str) -> Result<Partners, String> {
        let f: PartnersFile = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(1, |s| line_of(text, s.start));
            format!("{file}: line {line}: {}", e.message().trim())
        })?;
        let mut out = Partners::default();
        for entry in f.partners {
            let at = |s: &std::ops::Range<usize>| line_of(text, s.start);
            let name = entry.name.get_ref().trim().to_string();
            if name.is_empty() {
                return Err(format!(
                    "{file}: line {}: name: must not be empty",
                    at(&entry.name.span())
                ));
            }
            if entry.numbers.is_empty() {
                return Err(format!(
                    "{file}: line {}: numbers: {name:?} has no number",
                    at(&entry.name.span())
                ));
            }
            let index = out.list.len();
            for n in &entry.numbers {
                let line = at(&n.span());
                let Some(key) = national(n.get_ref()) else {
                    return Err(format!(
                        "{file}: line {line}: numbers: {:?} is no phone number",
                        n.get_ref()
                    ));
                };
                if let Some(other) = out.by_number.insert(key, index) {
                    let other = out.list.get(other).map_or(&name, |p| &p.name);
                    return Err(format!(
                        "{file}: line {line}: numbers: {:?} is listed for {other:?} already",
                        n.get_ref()
                    ));
                }
            }
            out.list.push(Partner {
                name,
                numbers: entry.numbers.into_iter().map(|n| n.into_inner()).collect(),
                prompt: entry.prompt,
            });
        }
        Ok(out)
    }

    /// The partner a number (as the trunk asserted it) belongs to, with its
    /// place in the file.
    pub fn find(&self, number: &str) -> Option<(usize, &Partner)> {
        let i = *self.by_number.get(&national(number)?)?;
        Some((i, &self.list[i]))
    }

    pub fn list(&self) -> &[Partner] {
        &self.list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
[[partners]]
name = "市北公安分局指挥中心"
numbers = ["053266570110", "+86 532 6657 0111"]

[[partners]]
name = "李沧区人民法院执行局"
numbers = ["13800000099"]
prompt = "prompts/licang.wav"
"#;

    #[test]
    fn a_partner_is_found_by_any_form_of_its_number() {
        let p = Partners::parse(SAMPLE, "partners.toml").unwrap();
        assert_eq!(p.list().len(), 2);
        for n in ["+8653266570110", "053266570110", "0532-6657-0111"] {
            assert_eq!(p.find(n).unwrap().1.name, "市北公安分局指挥中心", "{n}");
        }
        let (i, court) = p.find("+8613800000099").unwrap();
        assert_eq!((i, court.name.as_str()), (1, "李沧区人民法院执行局"));
        assert_eq!(
            court.prompt.as_deref(),
            Some(Path::new("prompts/licang.wav"))
        );
        assert!(p.find("053266570112").is_none());
        assert!(p.find("anonymous").is_none());
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let twice = "[[partners]]\nname = \"a\"\nnumbers = [\"110110110\"]\n\n[[partners]]\nname = \"b\"\nnumbers = [\n  \"110110110\",\n]\n";
        assert_eq!(
            Partners::parse(twice, "p.toml").unwrap_err(),
            "p.toml: line 8: numbers: \"110110110\" is listed for \"a\" already"
        );
        let bad = "[[partners]]\nname = \"a\"\nnumbers = [\"call me\"]\n";
        assert_eq!(
            Partners::parse(bad, "p.toml").unwrap_err(),
            "p.toml: line 3: numbers: \"call me\" is no phone number"
        );
        let unknown = "[[partners]]\nname = \"a\"\nnumber = [\"1\"]\n";
        let e = Partners::parse(unknown, "p.toml").unwrap_err();
        assert!(
            e.starts_with("p.toml: line 3: unknown field `number`"),
            "{e}"
        );
        let empty = "[[partners]]\nname = \" \"\nnumbers = [\"110110110\"]\n";
        assert_eq!(
            Partners::parse(empty, "p.toml").unwrap_err(),
            "p.toml: line 2: name: must not be empty"
        );
    }
}
