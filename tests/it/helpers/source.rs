//! The crate's own source files, read by tests that check its shape: the
//! modules it has and what they import.

use std::path::{Path, PathBuf};

/// The `.rs` files under `dir`, sorted, at any depth.
pub fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            out.extend(rust_files(&p));
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
    out
}

/// The text before a `#[cfg(test)] mod tests {` (a file's unit tests, at
/// its end), or all of it.
pub fn without_test_module(text: &str) -> &str {
    let mut from = 0;
    while let Some(i) = text[from..].find("#[cfg(test)]") {
        let at = from + i;
        let rest = text[at + "#[cfg(test)]".len()..].trim_start();
        if let Some(rest) = rest.strip_prefix("mod") {
            if rest.starts_with(char::is_whitespace) {
                if let Some(rest) = rest.trim_start().strip_prefix("tests") {
                    if rest.trim_start().starts_with('{') {
                        return &text[..at];
                    }
                }
            }
        }
        from = at + 1;
    }
    text
}
