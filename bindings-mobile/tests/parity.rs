//! `docs/bindings.md`'s Kotlin/Swift column: every Kotlin name it gives (`Engine.ingestFrom`,
//! `validateReading`, `Engine.open`) is a `uniffi` export of this crate — the type declared and the
//! function (its snake_case Rust name, which uniffi turns into the Kotlin camelCase one) `pub` in
//! an exported item of `bindings-mobile/src`.

#[path = "../../core/tests/support/bindings_table.rs"]
mod bindings_table;

use std::fs;
use std::path::{Path, PathBuf};

/// Gaps the Kotlin/Swift column may still declare (`gap: …`); this number may only go down.
const MAX_GAPS: usize = 0;

fn sources() -> String {
    fn walk(p: &Path, out: &mut Vec<PathBuf>) {
        if p.is_dir() {
            for e in fs::read_dir(p).unwrap() {
                walk(&e.unwrap().path(), out);
            }
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p.to_path_buf());
        }
    }
    let mut files = Vec::new();
    walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut files);
    files.sort();
    files.iter().map(|f| fs::read_to_string(f).unwrap()).collect::<Vec<_>>().join("\n")
}

/// `pendingUploads` → `pending_uploads`.
fn snake(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn declares(text: &str, keywords: &[&str], name: &str) -> bool {
    keywords.iter().any(|k| {
        let decl = format!("pub {k} {name}");
        text.match_indices(&decl)
            .any(|(i, _)| text[i + decl.len()..].starts_with(|c: char| !c.is_alphanumeric() && c != '_'))
    })
}

/// Whether the Kotlin name (`fn`, `Type`, `Type.member`, `Type.prefix*`) is exported.
fn exists(text: &str, name: &str) -> bool {
    match name.split_once('.') {
        None if name.starts_with(|c: char| c.is_ascii_uppercase()) => {
            declares(text, &["struct", "enum", "trait"], name)
        }
        None => declares(text, &["fn"], &snake(name)),
        Some((ty, member)) => {
            let member_ok = match member.strip_suffix('*') {
                Some(prefix) => text.contains(&format!("pub fn {}", snake(prefix))),
                None => declares(text, &["fn"], &snake(member)),
            };
            declares(text, &["struct", "enum"], ty) && member_ok
        }
    }
}

#[test]
fn every_capability_has_its_kotlin_export() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let text = sources();
    let rows = bindings_table::column(&repo, "Kotlin/Swift");
    assert!(rows.len() >= 35, "the table has every capability ({} rows)", rows.len());
    let (names, gaps) = bindings_table::required(&rows);
    let missing: Vec<String> =
        names.iter().filter(|(_, n)| !exists(&text, n)).map(|(c, n)| format!("{c}: {n}")).collect();
    assert!(missing.is_empty(), "not exported by bindings-mobile: {missing:#?}");
    assert_eq!(gaps, MAX_GAPS, "{gaps} Kotlin/Swift gaps (the column has none)");
}

#[test]
fn the_parity_check_finds_a_missing_export() {
    let text = sources();
    assert!(exists(&text, "Engine.ingestFrom"));
    assert!(exists(&text, "Engine.open"));
    assert!(exists(&text, "parseDecimal"));
    assert!(!exists(&text, "Engine.noSuchMethod"));
    assert!(!exists(&text, "noSuchFunction"));
    assert!(!exists(&text, "NoSuchType.ingest"));
}
