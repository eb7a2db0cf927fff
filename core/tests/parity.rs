//! `docs/bindings.md`'s Rust column: every path it names (`meterkit::engine::Engine::ingest`,
//! `meterkit::decimal::parse_decimal`) is a public item of the core — the type (or free function)
//! in its module's sources, the method or constant in an `impl` of the crate.

#[path = "support/bindings_table.rs"]
mod bindings_table;

use std::fs;
use std::path::{Path, PathBuf};

/// Gaps the Rust column declares (`gap: …`): none.
const MAX_GAPS: usize = 0;

fn rust_files(path: &Path) -> Vec<PathBuf> {
    if path.is_dir() {
        let mut files: Vec<PathBuf> =
            fs::read_dir(path).unwrap().flat_map(|e| rust_files(&e.unwrap().path())).collect();
        files.sort();
        files
    } else if path.is_file() && path.extension().is_some_and(|e| e == "rs") {
        vec![path.to_path_buf()]
    } else {
        Vec::new()
    }
}

/// The text of a module (`["rollup", "columnar"]`): its file or folder.
fn module_text(src: &Path, modules: &[&str]) -> String {
    let base = modules.iter().fold(src.to_path_buf(), |p, m| p.join(m));
    let mut files = rust_files(&base);
    if !modules.is_empty() && base.with_extension("rs").is_file() {
        files.push(base.with_extension("rs"));
    }
    files.iter().map(|f| fs::read_to_string(f).unwrap()).collect::<Vec<_>>().join("\n")
}

fn declares(text: &str, keywords: &[&str], name: &str) -> bool {
    keywords.iter().any(|k| {
        let decl = format!("pub {k} {name}");
        text.match_indices(&decl)
            .any(|(i, _)| text[i + decl.len()..].starts_with(|c: char| !c.is_alphanumeric() && c != '_'))
    })
}

/// Whether the path names a public item of the core.
fn exists(src: &Path, path: &str) -> bool {
    let segments: Vec<&str> = path.split("::").collect();
    if segments.first() != Some(&"meterkit") {
        return false;
    }
    let rest = &segments[1..];
    let all = module_text(src, &[]);
    match rest.iter().position(|s| s.starts_with(|c: char| c.is_ascii_uppercase())) {
        Some(t) => {
            let module = module_text(src, &rest[..t]);
            let ty = declares(&module, &["struct", "enum", "trait"], rest[t]);
            ty && rest[t + 1..].iter().all(|m| declares(&all, &["fn", "const fn", "const"], m))
        }
        None => {
            let (name, modules) = rest.split_last().unwrap();
            declares(&module_text(src, modules), &["fn"], name)
        }
    }
}

#[test]
fn every_capability_has_its_rust_path() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let src = repo.join("core/src");
    let rows = bindings_table::column(&repo, "Rust");
    assert!(rows.len() >= 35, "the table has every capability ({} rows)", rows.len());
    let (names, gaps) = bindings_table::required(&rows);
    let missing: Vec<String> =
        names.iter().filter(|(_, n)| !exists(&src, n)).map(|(c, n)| format!("{c}: {n}")).collect();
    assert!(missing.is_empty(), "not in the core: {missing:#?}");
    assert_eq!(gaps, MAX_GAPS, "{gaps} Rust gaps (the Rust column has none)");
}

#[test]
fn the_parity_check_finds_a_missing_path() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    assert!(exists(&src, "meterkit::engine::Engine::ingest"));
    assert!(exists(&src, "meterkit::decimal::parse_decimal"));
    assert!(exists(&src, "meterkit::rollup::columnar::ColumnarRollup"));
    assert!(exists(&src, "meterkit::error::ErrorKind::ALL"));
    assert!(!exists(&src, "meterkit::engine::Engine::no_such_method"));
    assert!(!exists(&src, "meterkit::decimal::no_such_fn"));
    assert!(!exists(&src, "meterkit::billing::Engine"));
    assert!(!exists(&src, "meterkit::engine::Engine::ingest_from_nowhere"));
}
