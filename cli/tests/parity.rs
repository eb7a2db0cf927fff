//! `docs/bindings.md`'s CLI column: every `meterkit SUBCOMMAND [--option]` it names is in the
//! binary's own help (`meterkit --help`, `meterkit SUBCOMMAND --help`).

#[path = "../../core/tests/support/bindings_table.rs"]
mod bindings_table;

use std::path::Path;
use std::process::Command;

/// Gaps the CLI column may declare (`gap: …`): none — every capability has its command.
const MAX_GAPS: usize = 0;

fn help(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_meterkit")).args(args).arg("--help").output().unwrap();
    assert!(out.status.success(), "meterkit {args:?} --help failed");
    String::from_utf8(out.stdout).unwrap()
}

/// Whether `meterkit [sub] [--option]` is in the help.
fn exists(name: &str) -> bool {
    let words: Vec<&str> = name.split_whitespace().collect();
    if words.first() != Some(&"meterkit") || words.len() > 3 {
        return false;
    }
    let (sub, option) = match &words[1..] {
        [opt] if opt.starts_with("--") => (None, Some(*opt)),
        [sub] => (Some(*sub), None),
        [sub, opt] if opt.starts_with("--") => (Some(*sub), Some(*opt)),
        _ => return false,
    };
    let top = help(&[]);
    if let Some(sub) = sub {
        let listed = top.lines().any(|l| l.split_whitespace().next() == Some(sub));
        if !listed {
            return false;
        }
    }
    match option {
        None => true,
        Some(opt) => {
            let text = help(&sub.into_iter().collect::<Vec<_>>());
            text.split(|c: char| c.is_whitespace() || c == ',' || c == '=' || c == '<').any(|w| w == opt)
        }
    }
}

#[test]
fn every_capability_has_its_cli_command() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let rows = bindings_table::column(&repo, "CLI");
    assert!(rows.len() >= 35, "the table has every capability ({} rows)", rows.len());
    let (names, gaps) = bindings_table::required(&rows);
    let missing: Vec<String> = names.iter().filter(|(_, n)| !exists(n)).map(|(c, n)| format!("{c}: {n}")).collect();
    assert!(missing.is_empty(), "not in `meterkit --help`: {missing:#?}");
    assert_eq!(gaps, MAX_GAPS, "{gaps} CLI gaps (the CLI column has none)");
}

#[test]
fn the_parity_check_finds_a_missing_command() {
    assert!(exists("meterkit ingest"));
    assert!(exists("meterkit ingest --source"));
    assert!(exists("meterkit --db"));
    assert!(!exists("meterkit ingest --no-such-option"));
    assert!(!exists("meterkit no-such-command"));
}
