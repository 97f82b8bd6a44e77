//! The shape the code must keep (issue 14): no import circle between the pipeline library's
//! files, files readable in one sitting, functions that fit a screen, and dependencies that
//! point one way (the library never uses `isolake-train`; only the binary's demo does).
//!
//! An import is a `use` declaration or a `crate::`/`super::` path, resolved to the file of the
//! longest module prefix it names; a `mod x;` declaration is containment, not an import. Test
//! code (`#[cfg(test)]` onwards, `tests.rs`) is not counted.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Longest file and function allowed (lines, test code excluded).
const MAX_FILE_LINES: usize = 600;
const MAX_FN_LINES: usize = 100;

fn workspace() -> PathBuf {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    Path::new(&manifest).parent().unwrap().to_path_buf()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The file's text before its tests, without line comments.
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let text = match text.find("#[cfg(test)]") {
        Some(at) => &text[..at],
        None => &text,
    };
    text.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `a::b` module path of a file under `src` (`mod.rs` and `lib.rs` name their directory).
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

/// `a::{b, c::{d}}` → `a::b`, `a::c::d`.
fn expand(path: &str) -> Vec<String> {
    let path = path.trim();
    let Some(open) = path.find('{') else {
        return vec![path.to_string()];
    };
    let (prefix, body) = (&path[..open], &path[open + 1..path.len() - 1]);
    let (mut parts, mut depth, mut current) = (Vec::new(), 0, String::new());
    for c in body.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            _ => {}
        }
        if c == ',' && depth == 0 {
            parts.push(std::mem::take(&mut current));
        } else {
            current.push(c);
        }
    }
    parts.push(current);
    parts
        .iter()
        .filter(|p| !p.trim().is_empty())
        .flat_map(|p| expand(p))
        .map(|p| format!("{prefix}{p}"))
        .collect()
}

/// The module file an import path leads to, relative to module `from`.
fn resolve(from: &[String], path: &str, modules: &BTreeSet<Vec<String>>) -> Option<Vec<String>> {
    let segments: Vec<&str> = path
        .split("::")
        .map(|s| s.split(" as ").next().unwrap_or("").trim())
        .collect();
    let (mut base, rest): (Vec<String>, &[&str]) = match segments[0] {
        "crate" => (Vec::new(), &segments[1..]),
        "super" | "self" => {
            let mut base = from.to_vec();
            let mut i = 0;
            while i < segments.len() && matches!(segments[i], "super" | "self") {
                if segments[i] == "super" {
                    base.pop();
                }
                i += 1;
            }
            (base, &segments[i..])
        }
        child => {
            let mut candidate = from.to_vec();
            candidate.push(child.to_string());
            if !modules.contains(&candidate) {
                return None;
            }
            (from.to_vec(), &segments[..])
        }
    };
    let mut best = base.clone();
    for segment in rest {
        base.push(segment.to_string());
        if !modules.contains(&base) {
            break;
        }
        best = base.clone();
    }
    Some(best)
}

/// Every import path of a file's code.
fn imports(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("use ") {
        let before = rest[..at].chars().last();
        rest = &rest[at + 4..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(end) = rest.find(';') {
            out.extend(expand(&rest[..end].replace('\n', " ")));
        }
    }
    for word in code.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')) {
        let word = word.trim_end_matches(':');
        // `crate::{a, b}` of a use declaration was expanded above.
        if word.contains("::") && (word.starts_with("crate::") || word.starts_with("super::")) {
            out.push(word.to_string());
        }
    }
    out
}

#[test]
fn no_import_circle_in_the_pipeline_library() {
    let src = workspace().join("pipeline/src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.retain(|f| !f.starts_with(src.join("bin")));
    let modules: BTreeMap<Vec<String>, PathBuf> = files
        .iter()
        .map(|f| (module_of(&src, f), f.clone()))
        .collect();
    let names: BTreeSet<Vec<String>> = modules.keys().cloned().collect();
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (module, file) in &modules {
        let targets = imports(&code(file))
            .iter()
            .filter_map(|p| resolve(module, p, &names))
            .filter(|t| t != module)
            .collect();
        edges.insert(module.clone(), targets);
    }
    assert!(edges.len() > 40, "the walk found the library's files");
    let circles = strongly_connected(&edges);
    let shown: Vec<String> = circles
        .iter()
        .map(|c| {
            c.iter()
                .map(|m| m.join("::"))
                .collect::<Vec<_>>()
                .join(" ↔ ")
        })
        .collect();
    assert!(shown.is_empty(), "import circles: {shown:#?}");
}

/// The components of more than one module (Tarjan's algorithm).
fn strongly_connected(
    edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
) -> Vec<Vec<Vec<String>>> {
    struct Walk<'a> {
        edges: &'a BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        index: BTreeMap<&'a Vec<String>, usize>,
        low: BTreeMap<&'a Vec<String>, usize>,
        stack: Vec<&'a Vec<String>>,
        out: Vec<Vec<Vec<String>>>,
    }
    fn visit<'a>(w: &mut Walk<'a>, v: &'a Vec<String>) {
        let n = w.index.len();
        w.index.insert(v, n);
        w.low.insert(v, n);
        w.stack.push(v);
        for t in &w.edges[v] {
            if !w.index.contains_key(t) {
                visit(w, t);
                let low = w.low[v].min(w.low[t]);
                w.low.insert(v, low);
            } else if w.stack.contains(&t) {
                let low = w.low[v].min(w.index[t]);
                w.low.insert(v, low);
            }
        }
        if w.low[v] == w.index[v] {
            let mut component = Vec::new();
            while let Some(top) = w.stack.pop() {
                component.push(top.clone());
                if top == v {
                    break;
                }
            }
            if component.len() > 1 {
                w.out.push(component);
            }
        }
    }
    let mut walk = Walk {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        out: Vec::new(),
    };
    for v in edges.keys() {
        if !walk.index.contains_key(v) {
            visit(&mut walk, v);
        }
    }
    walk.out
}

/// Every crate's non-test source files.
fn sources() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for krate in ["data", "models", "score", "train", "pipeline"] {
        rust_files(&workspace().join(krate).join("src"), &mut files);
    }
    files.retain(|f| f.file_name().is_some_and(|n| n != "tests.rs"));
    files
}

#[test]
fn files_and_functions_fit_in_one_sitting() {
    let mut long = Vec::new();
    for file in sources() {
        let code = code(&file);
        let lines: Vec<&str> = code.lines().collect();
        if lines.len() > MAX_FILE_LINES {
            long.push(format!("{}: {} lines", file.display(), lines.len()));
        }
        for (start, line) in lines.iter().enumerate() {
            let trimmed = line.trim_start();
            let is_fn = [
                "fn ",
                "pub fn ",
                "pub(crate) fn ",
                "pub(super) fn ",
                "async fn ",
            ]
            .iter()
            .chain(&[
                "pub async fn ",
                "pub(crate) async fn ",
                "pub(super) async fn ",
            ])
            .any(|p| trimmed.starts_with(p));
            if !is_fn || trimmed.ends_with(';') {
                continue;
            }
            let indent = &line[..line.len() - trimmed.len()];
            let close = format!("{indent}}}");
            let end = lines[start..].iter().position(|l| *l == close).unwrap_or(0);
            if end + 1 > MAX_FN_LINES {
                long.push(format!(
                    "{}:{}: {} lines",
                    file.display(),
                    start + 1,
                    end + 1
                ));
            }
        }
    }
    assert!(long.is_empty(), "too long: {long:#?}");
}

#[test]
fn the_pipeline_library_does_not_use_train() {
    let src = workspace().join("pipeline/src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let users: Vec<String> = files
        .iter()
        .filter(|f| !f.starts_with(src.join("bin")))
        .filter(|f| code(f).contains("isolake_train"))
        .map(|f| f.display().to_string())
        .collect();
    assert!(
        users.is_empty(),
        "the library uses isolake-train: {users:?}"
    );
    let train = std::fs::read_to_string(workspace().join("train/Cargo.toml")).unwrap();
    assert!(
        !train.contains("isolake-score"),
        "train must not depend on score"
    );
}
