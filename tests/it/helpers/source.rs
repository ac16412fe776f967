//! The crate's own source files, read by tests that check its shape: the
//! routes its routers serve, the modules it has and what they import.

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
/// A route an axum router in the source declares: `.route("path", get(…)
/// .post(…))`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SourceRoute {
    /// The file, relative to the repository.
    pub file: String,
    pub path: String,
    /// Lower case: `get`, `post`, ...
    pub methods: Vec<String>,
}

/// Every `.route(…)` in `text` (test modules left out), with the method
/// routers at the top level of its second argument.
pub fn routes_in(file: &str, text: &str) -> Vec<SourceRoute> {
    const METHODS: [&str; 7] = ["get", "post", "put", "delete", "patch", "head", "options"];
    let text = without_test_module(text);
    let mut out = Vec::new();
    for (i, _) in text.match_indices(".route(") {
        let args = &text[i + ".route(".len()..];
        let Some(args) = args.trim_start().strip_prefix('"') else {
            continue;
        };
        let Some(end) = args.find('"') else { continue };
        let path = args[..end].to_string();
        // The rest of the call: identifiers followed by `(` at depth 0 are
        // method routers (`get(h)`, `.post(h)`); closures and handlers'
        // arguments are deeper.
        let mut methods = Vec::new();
        let (mut depth, mut word, mut in_str, mut escaped) = (0usize, String::new(), false, false);
        for c in args[end + 1..].chars() {
            if in_str {
                match c {
                    _ if escaped => escaped = false,
                    '\\' => escaped = true,
                    '"' => in_str = false,
                    _ => {}
                }
                continue;
            }
            match c {
                '"' => in_str = true,
                '(' | '{' | '[' => {
                    if c == '(' && depth == 0 && METHODS.contains(&word.as_str()) {
                        methods.push(word.clone());
                    }
                    depth += 1;
                }
                ')' | '}' | ']' if depth == 0 => break,
                ')' | '}' | ']' => depth -= 1,
                _ => {}
            }
            if c.is_ascii_alphanumeric() || c == '_' {
                word.push(c);
            } else {
                word.clear();
            }
        }
        out.push(SourceRoute {
            file: file.to_string(),
            path,
            methods,
        });
    }
    out
}
