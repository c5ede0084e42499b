//! The layering rules of `docs/ARCHITECTURE.md`, checked on the source text: services and the
//! ledger never name the storage adapters, no hand-written file under `src/` is over 600 lines,
//! and the top-level modules of `src/` depend on each other without a cycle.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
};

/// The top-level modules of `src/` whose dependencies are checked.
const MODULES: &[&str] = &[
    "account",
    "cashier",
    "yields",
    "eod",
    "credit",
    "clearing",
    "ledger",
    "storage",
    "grpc",
    "server",
    "cli",
    "config",
    "money",
    "clock",
    "secrets",
    "tls",
    "telemetry",
    "admin",
    "notices",
];

/// The folders that must not name the storage adapters (they reach it through the ledger).
const STORAGE_FREE: &[&str] = &[
    "account", "cashier", "credit", "eod", "grpc", "ledger", "yields",
];

/// Most lines in one hand-written source file.
const FILE_LINES_MAX: usize = 600;

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    if !dir.is_dir() {
        return files;
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).expect("read a source folder") {
            let path = entry.expect("a folder entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The files of top-level module `name`: `src/<name>.rs` and everything under `src/<name>/`.
fn module_files(name: &str) -> Vec<PathBuf> {
    let src = src_dir();
    let mut files = rust_files(&src.join(name));
    let file = src.join(format!("{name}.rs"));
    if file.is_file() {
        files.push(file);
    }
    files
}

fn relative(path: &Path) -> String {
    path.strip_prefix(Path::new(env!("CARGO_MANIFEST_DIR")))
        .unwrap_or(path)
        .display()
        .to_string()
}

/// `text` without its `//` comments (line and doc comments), so a doc link is not a dependency.
fn without_line_comments(text: &str) -> String {
    text.lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether the byte before `at` ends an identifier (so `xcrate::` is not `crate::`).
fn starts_path(text: &str, at: usize) -> bool {
    text[..at]
        .chars()
        .next_back()
        .is_none_or(|c| !(c.is_alphanumeric() || c == '_'))
}

/// The first segments of the top-level entries of the `{ … }` group that starts at `text[0]`:
/// `{a, b::{c, d}, e::f}` gives `a`, `b`, `e`. Nested groups are skipped; the group may span
/// lines.
fn group_heads(text: &str) -> Vec<String> {
    let mut heads = Vec::new();
    let mut depth = 0usize;
    let mut entry = String::new();
    for c in text.chars() {
        match c {
            '{' => {
                depth += 1;
                if depth == 1 {
                    continue;
                }
            }
            '}' => {
                depth -= 1;
                if depth == 0 {
                    heads.push(std::mem::take(&mut entry));
                    break;
                }
            }
            ',' if depth == 1 => {
                heads.push(std::mem::take(&mut entry));
                continue;
            }
            _ => {}
        }
        if depth == 1 {
            entry.push(c);
        }
    }
    heads
        .iter()
        .filter_map(|e| {
            let head: String = e
                .trim()
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            (!head.is_empty()).then_some(head)
        })
        .collect()
}

/// The top-level modules that `text` names through `crate::<module>` or `crate::{<module>, …}`.
fn crate_references(text: &str) -> BTreeSet<String> {
    let code = without_line_comments(text);
    let mut found = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        if !starts_path(&code, at) && !code[..at].ends_with('$') {
            continue;
        }
        let rest = code[at + "crate::".len()..].trim_start();
        if rest.starts_with('{') {
            found.extend(group_heads(rest));
        } else {
            let head: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            found.insert(head);
        }
    }
    found.retain(|m| MODULES.contains(&m.as_str()));
    found
}

/// Edges `from → to` between distinct top-level modules, each with the first file that makes it.
fn dependency_graph() -> BTreeMap<&'static str, BTreeMap<String, String>> {
    let mut graph = BTreeMap::new();
    for &module in MODULES {
        let mut edges: BTreeMap<String, String> = BTreeMap::new();
        for file in module_files(module) {
            let text = fs::read_to_string(&file).expect("read a source file");
            for to in crate_references(&text) {
                if to != module {
                    edges.entry(to).or_insert_with(|| relative(&file));
                }
            }
        }
        graph.insert(module, edges);
    }
    graph
}

/// A cycle of `graph` as the modules along it (first repeated last), if there is one.
fn find_cycle(graph: &BTreeMap<&'static str, BTreeMap<String, String>>) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    fn visit(
        node: &str,
        graph: &BTreeMap<&'static str, BTreeMap<String, String>>,
        marks: &mut BTreeMap<String, Mark>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        marks.insert(node.to_owned(), Mark::OnPath);
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flat_map(|edges| edges.keys()) {
            match marks.get(next).copied().unwrap_or(Mark::New) {
                Mark::OnPath => {
                    let start = path.iter().position(|n| n == next).unwrap();
                    let mut cycle = path[start..].to_vec();
                    cycle.push(next.clone());
                    return Some(cycle);
                }
                Mark::New => {
                    if let Some(cycle) = visit(next, graph, marks, path) {
                        return Some(cycle);
                    }
                }
                Mark::Done => {}
            }
        }
        path.pop();
        marks.insert(node.to_owned(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for &node in graph.keys() {
        if marks.get(node).copied().unwrap_or(Mark::New) == Mark::New
            && let Some(cycle) = visit(node, graph, &mut marks, &mut Vec::new())
        {
            return Some(cycle);
        }
    }
    None
}

#[test]
fn services_and_the_ledger_never_name_the_storage_adapters() {
    let mut offenders = Vec::new();
    for &module in STORAGE_FREE {
        for file in rust_files(&src_dir().join(module)) {
            let text = fs::read_to_string(&file).expect("read a source file");
            for (n, line) in text.lines().enumerate() {
                if line.contains("crate::storage") || line.contains("paygate::storage") {
                    offenders.push(format!("{}:{}: {}", relative(&file), n + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "src/{{{}}} must reach the database through the ledger, not name the storage adapters:\n{}",
        STORAGE_FREE.join(","),
        offenders.join("\n")
    );
}

#[test]
fn no_source_file_is_over_600_lines() {
    let mut offenders = Vec::new();
    for file in rust_files(&src_dir()) {
        let text = fs::read_to_string(&file).expect("read a source file");
        let lines = text.lines().count();
        if lines > FILE_LINES_MAX {
            offenders.push(format!("{}: {lines} lines", relative(&file)));
        }
    }
    assert!(
        offenders.is_empty(),
        "files over {FILE_LINES_MAX} lines (split them by concern):\n{}",
        offenders.join("\n")
    );
}

#[test]
fn top_level_modules_depend_on_each_other_without_a_cycle() {
    let graph = dependency_graph();
    if let Some(cycle) = find_cycle(&graph) {
        let edges: Vec<String> = cycle
            .windows(2)
            .map(|pair| {
                let file = &graph[pair[0].as_str()][&pair[1]];
                format!("  {} → {} (e.g. {file})", pair[0], pair[1])
            })
            .collect();
        panic!(
            "module dependency cycle {}:\n{}",
            cycle.join(" → "),
            edges.join("\n")
        );
    }
}

#[test]
fn use_groups_are_parsed_to_their_top_level_modules() {
    let text = "use crate::{\n    account::{A, B},\n    money::Money, // a comment\n    \
                ledger::{self, x::{Y, Z}},\n};\nfn f() { crate::clock::now(); }";
    let found: Vec<String> = crate_references(text).into_iter().collect();
    assert_eq!(found, ["account", "clock", "ledger", "money"]);
    let mut graph = BTreeMap::new();
    graph.insert("a", BTreeMap::from([("b".to_owned(), "x.rs".to_owned())]));
    graph.insert("b", BTreeMap::from([("a".to_owned(), "y.rs".to_owned())]));
    assert_eq!(find_cycle(&graph).unwrap(), ["a", "b", "a"]);
}
