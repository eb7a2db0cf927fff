//! The core's module graph: every top-level module (a folder or a file under `src/`) imports only
//! the modules `ARCHITECTURE.md` allows it, and the graph has no cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

/// Top-level module → the top-level modules its non-test code names as `crate::…`. Comments and
/// test code (`*tests.rs`, `tests/`, and everything from a file's first `#[cfg(test)]` module on)
/// may name anything. A `crate::Name` that is not a module (a root re-export) is returned under
/// the pseudo-module `"crate root"`: the core imports through module paths.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let modules: BTreeSet<String> = fs::read_dir(&src)
        .unwrap()
        .map(|e| e.unwrap().path().file_stem().unwrap().to_string_lossy().into_owned())
        .filter(|m| m != "lib" && m != "tests")
        .collect();
    let mut graph = BTreeMap::new();
    for name in &modules {
        let mut used = BTreeSet::new();
        for file in rust_files(&src.join(name)).into_iter().chain(rust_files(&src.join(format!("{name}.rs")))) {
            for path in crate_paths(&fs::read_to_string(&file).unwrap()) {
                if modules.contains(&path) {
                    used.insert(path);
                } else if path != "guide" {
                    used.insert(format!("crate root ({path})"));
                }
            }
        }
        used.remove(name);
        graph.insert(name.clone(), used);
    }
    graph
}

/// The first segment of every `crate::` path in the code of a file (not in comments or tests).
fn crate_paths(text: &str) -> Vec<String> {
    let code = text.split("#[cfg(test)]\nmod").next().unwrap_or("");
    let mut paths = Vec::new();
    for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
        for (i, _) in line.match_indices("crate::") {
            let rest = &line[i + "crate::".len()..];
            let first: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            paths.push(if first.is_empty() { rest.chars().take(40).collect() } else { first });
        }
    }
    paths
}

fn rust_files(path: &Path) -> Vec<std::path::PathBuf> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if name.ends_with("tests.rs") || name == "tests" || !path.exists() {
        return Vec::new();
    }
    if path.is_file() {
        return vec![path.to_path_buf()];
    }
    let mut files = Vec::new();
    for entry in fs::read_dir(path).unwrap() {
        files.extend(rust_files(&entry.unwrap().path()));
    }
    files
}

/// The "may import" column of `ARCHITECTURE.md`'s core table: `| `a`, `b` | … | c, d |`.
fn allowed() -> BTreeMap<String, BTreeSet<String>> {
    let doc = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../ARCHITECTURE.md")).unwrap();
    let table = doc.split("## Core modules").nth(1).expect("ARCHITECTURE.md has a core modules table");
    let mut allowed = BTreeMap::new();
    for line in table.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let may: BTreeSet<String> =
            cells[3].split(',').map(|m| m.trim().to_string()).filter(|m| !m.is_empty() && m != "–").collect();
        for module in cells[1].split(',') {
            allowed.insert(module.trim().trim_matches('`').to_string(), may.clone());
        }
    }
    allowed
}

#[test]
fn every_import_is_drawn_in_architecture_md() {
    let allowed = allowed();
    let mut undrawn = Vec::new();
    for (module, used) in imports() {
        let Some(may) = allowed.get(&module) else {
            undrawn.push(format!("{module} has no row in ARCHITECTURE.md"));
            continue;
        };
        for u in used.difference(may) {
            undrawn.push(format!("{module} → {u}"));
        }
    }
    assert!(undrawn.is_empty(), "imports not allowed by ARCHITECTURE.md: {undrawn:?}");
}

#[test]
fn the_module_graph_has_no_cycle() {
    let graph = imports();
    // Kahn's algorithm: repeatedly remove modules that import nothing left.
    let mut left = graph.clone();
    loop {
        let leaves: Vec<String> = left
            .iter()
            .filter(|(_, used)| used.iter().all(|u| !left.contains_key(u)))
            .map(|(m, _)| m.clone())
            .collect();
        if leaves.is_empty() {
            break;
        }
        for leaf in leaves {
            left.remove(&leaf);
        }
    }
    assert!(left.is_empty(), "modules on a cycle: {:?}", left.keys().collect::<Vec<_>>());
}
