//! The capability table of `docs/bindings.md`, as the Rust parity tests read it (core: the Rust
//! column, cli: the CLI column, bindings-mobile: the Kotlin/Swift column). Included with
//! `#[path]` by each of them.

use std::path::Path;

/// What a cell of one host's column says.
#[derive(Debug, PartialEq, Eq)]
pub enum Cell {
    /// The host's names for the capability.
    Names(Vec<String>),
    /// `— reason`: the capability makes no sense in that host.
    NotApplicable,
    /// `gap: reason`: the host lacks it today.
    Gap,
    /// `pending: name`: another change adds it; not enforced until the mark goes.
    Pending(Vec<String>),
}

/// `(capability, cell)` for every row of column `name` of the table in `docs/bindings.md`
/// (`repo` is the workspace root).
pub fn column(repo: &Path, name: &str) -> Vec<(String, Cell)> {
    let text = std::fs::read_to_string(repo.join("docs/bindings.md")).expect("docs/bindings.md");
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("| ")).collect();
    let header = lines.iter().position(|l| l.starts_with("| capability |")).expect("the capability table");
    let cells = |l: &str| l.split('|').map(str::trim).map(str::to_string).collect::<Vec<_>>();
    let at = cells(lines[header]).iter().position(|c| c == name).expect("the host's column");
    lines[header + 1..]
        .iter()
        .filter(|l| !l.starts_with("|---"))
        .map(|l| {
            let row = cells(l);
            let cell = row[at].as_str();
            let names: Vec<String> = cell.split('`').skip(1).step_by(2).map(str::to_string).collect();
            let kind = if cell.starts_with('—') {
                Cell::NotApplicable
            } else if cell.starts_with("gap") {
                Cell::Gap
            } else if cell.starts_with("pending:") {
                Cell::Pending(names)
            } else {
                assert!(!names.is_empty(), "{}: the cell names no export", row[1]);
                Cell::Names(names)
            };
            (row[1].clone(), kind)
        })
        .collect()
}

/// The names a column requires to exist, as `(capability, name)`, and its number of gaps.
pub fn required(rows: &[(String, Cell)]) -> (Vec<(String, String)>, usize) {
    let mut names = Vec::new();
    let mut gaps = 0;
    for (capability, cell) in rows {
        match cell {
            Cell::Names(n) => names.extend(n.iter().map(|n| (capability.clone(), n.clone()))),
            Cell::Gap => gaps += 1,
            Cell::NotApplicable | Cell::Pending(_) => {}
        }
    }
    (names, gaps)
}
