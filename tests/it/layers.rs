//! The crate's modules form layers: no import circle between top-level
//! modules. A reference `crate::<top>` from a file under another top-level
//! module is an edge; the edges must have no strongly connected component
//! of more than one module. Test code is left out: `#[cfg(test)] mod tests`
//! blocks (to the end of their file), `tests.rs` files and `tests`
//! directories (as `shared/tools/module-cycles.py` counts, which CI cannot
//! rely on). And the crates are layers: what each depends on, from `cargo
//! tree`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::helpers::{repo, rust_files, without_test_module};

/// The import edges between the top-level modules of the crate whose
/// sources are in `src`: every top-level module, with the modules it names.
fn module_edges(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in rust_files(src) {
        let rel: Vec<String> = file
            .strip_prefix(src)
            .unwrap()
            .iter()
            .map(|c| c.to_string_lossy().into_owned())
            .collect();
        if rel.len() == 1 && (rel[0] == "lib.rs" || rel[0] == "main.rs") {
            continue;
        }
        let top = rel[0].strip_suffix(".rs").unwrap_or(&rel[0]).to_string();
        let refs = edges.entry(top.clone()).or_default();
        let dirs = rel.get(1..rel.len() - 1).unwrap_or_default();
        let in_tests = dirs.iter().any(|d| d == "tests");
        if in_tests || rel.last().is_some_and(|f| f == "tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for name in crate_references(without_test_module(&text)) {
            if name != top {
                refs.insert(name);
            }
        }
    }
    // Only modules of this crate count (not `crate::` in a doc example
    // naming something else).
    let known: BTreeSet<String> = edges.keys().cloned().collect();
    for refs in edges.values_mut() {
        refs.retain(|r| known.contains(r));
    }
    edges
}

/// The top-level modules a text names as `crate::name` or in
/// `crate::{name, other::…}`, comment lines left out.
fn crate_references(text: &str) -> BTreeSet<String> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
            .collect()
    };
    let mut out = BTreeSet::new();
    for line in text.lines() {
        if line.trim_start().starts_with("//") {
            continue;
        }
        for (i, _) in line.match_indices("crate::") {
            let before = line[..i].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue; // `hotline_crate::`, ...
            }
            let rest = &line[i + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                // Top-level names of the group (one line: rustfmt's short
                // groups; a group over lines names its modules line by line).
                let mut depth = 0;
                let mut item = String::new();
                for c in group.chars() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            out.insert(ident(item.trim()));
                            item.clear();
                            continue;
                        }
                        _ => {}
                    }
                    if depth == 0 {
                        item.push(c);
                    }
                }
                out.insert(ident(item.trim()));
            } else {
                out.insert(ident(rest));
            }
        }
    }
    out.remove("");
    out
}

/// The strongly connected components of more than one module (Tarjan).
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        let edges = s.edges;
        for w in edges.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            loop {
                let w = s.stack.pop().unwrap();
                s.on_stack.remove(w);
                component.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.out.push(component);
            }
        }
    }
    let mut s = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in edges.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.out
}

/// Every crate's sources: `src`, and `crates/*/src` where there are any.
fn crate_sources() -> Vec<PathBuf> {
    let mut out = vec![repo().join("src")];
    if let Ok(dir) = std::fs::read_dir(repo().join("crates")) {
        let mut more: Vec<PathBuf> = dir
            .map(|e| e.unwrap().path().join("src"))
            .filter(|p| p.is_dir())
            .collect();
        more.sort();
        out.extend(more);
    }
    out
}

#[test]
fn no_import_circle_between_the_modules_of_any_crate() {
    let mut found = Vec::new();
    for src in crate_sources() {
        let edges = module_edges(&src);
        for c in cycles(&edges) {
            // Each module of the circle, with the ones of it that it names.
            let within: Vec<String> = c
                .iter()
                .map(|m| {
                    let to: Vec<&str> = edges[m]
                        .iter()
                        .filter(|r| c.contains(r))
                        .map(String::as_str)
                        .collect();
                    format!("  {m} -> {}", to.join(", "))
                })
                .collect();
            found.push(format!(
                "{}: {}\n{}",
                src.display(),
                c.join(", "),
                within.join("\n")
            ));
        }
    }
    assert!(
        found.is_empty(),
        "import circles between modules (each module reaches the others through `crate::`):\n{}",
        found.join("\n")
    );
}

/// The check itself, on made-up edges and texts.
#[test]
fn the_circle_check_finds_circles_and_only_circles() {
    let edges = |pairs: &[(&str, &str)]| {
        let mut e: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (a, b) in pairs {
            e.entry(a.to_string()).or_default().insert(b.to_string());
            e.entry(b.to_string()).or_default();
        }
        e
    };
    assert!(cycles(&edges(&[("a", "b"), ("b", "c"), ("a", "c")])).is_empty());
    assert_eq!(
        cycles(&edges(&[("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")])),
        vec![vec!["a".to_string(), "b".into(), "c".into()]]
    );
    let text = "use crate::tickets::Store;\n// crate::api in a comment\n\
        let x = crate::{paging::x, media};\nmy_crate::sip\n\
        #[cfg(test)]\nmod tests {\n use crate::cli;\n}\n";
    assert_eq!(
        crate_references(without_test_module(text)),
        ["media", "paging", "tickets"]
            .into_iter()
            .map(String::from)
            .collect()
    );
}

/// Every package the named package depends on for its normal build on
/// this machine (transitively), as `cargo tree -e normal` lists them.
fn normal_dependencies(of: &str) -> BTreeSet<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args(["tree", "-p", of, "-e", "normal", "--prefix", "none"])
        .args(["--format", "{p}", "--offline", "--locked"])
        .current_dir(repo())
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// The layers as crates (issue 31): the SIP stack depends on no crate of
/// ours, media on the SIP stack alone, and the domain on no runtime, Redis
/// or socket crate.
#[test]
fn the_crates_depend_only_downwards() {
    let ours = |deps: &BTreeSet<String>| -> Vec<String> {
        deps.iter()
            .filter(|d| d.starts_with("hotline"))
            .cloned()
            .collect()
    };
    assert_eq!(
        ours(&normal_dependencies("hotline-sip")),
        Vec::<String>::new()
    );
    assert_eq!(ours(&normal_dependencies("hotline-media")), ["hotline-sip"]);
    let domain = normal_dependencies("hotline-domain");
    assert_eq!(ours(&domain), Vec::<String>::new());
    for io in ["tokio", "mio", "redis", "socket2", "reqwest", "hyper"] {
        assert!(
            !domain.contains(io),
            "the domain depends on {io}: {domain:?}"
        );
    }
}
