//! `meterkit partial`, `merge-partials`, `finalize-partials`, `import-partials`: partial rollup
//! states in files (the JSON form of `meterkit::rollup::partial::columns_to_json`), so that a
//! shell can roll up shards where they live, merge the states anywhere and load them into any
//! store. Type conversion only: the core's `meterkit::rollup::partial` does the work.

use std::io::Write;
use std::path::PathBuf;

use meterkit::rollup::partial::{self, Partial};
use meterkit::{Engine, Error, ErrorKind, Result, RollupSpec};

use crate::input::{located, InputArgs};

/// Flags of `meterkit partial`.
#[derive(Debug, clap::Args)]
pub struct PartialArgs {
    #[command(flatten)]
    input: InputArgs,
    /// The rollup spec (JSON text, or a file holding it).
    #[arg(long)]
    spec: String,
    /// JSONL: keep each record's own `tenant` (a shard holds many tenants); otherwise a record of
    /// another tenant than --tenant is refused.
    #[arg(long)]
    all_tenants: bool,
}

/// Flags of `merge-partials`, `finalize-partials` and `import-partials`.
#[derive(Debug, clap::Args)]
pub struct StatesArgs {
    /// Partial-state files (the JSON `meterkit partial` writes).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// The rollup spec the states were made with (JSON text, or a file holding it).
    #[arg(long)]
    spec: String,
}

/// The spec of `--spec`: JSON text, or the path of a file holding it.
fn read_spec(arg: &str) -> Result<RollupSpec> {
    let text = if arg.trim_start().starts_with('{') {
        arg.to_string()
    } else {
        std::fs::read_to_string(arg)
            .map_err(|e| Error::new(ErrorKind::Parse, format!("Cannot read the spec {arg}: {e}.")).with_field("spec"))?
    };
    let spec: RollupSpec = serde_json::from_str(&text)
        .map_err(|e| Error::new(ErrorKind::Parse, format!("--spec: {e}.")).with_field("spec"))?;
    spec.check()?;
    Ok(spec)
}

fn print_json(value: &serde_json::Value) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, value)
        .map_err(|e| Error::new(ErrorKind::Store, format!("Cannot write JSON: {e}.")))?;
    writeln!(out).map_err(|e| Error::new(ErrorKind::Store, format!("Cannot write: {e}.")))
}

/// The states of every file, each error naming its file.
fn read_states(files: &[PathBuf], spec: &RollupSpec) -> Result<Vec<Partial>> {
    let mut all = Vec::new();
    for f in files {
        let at = |e: Error| Error::new(e.kind(), format!("{}: {}", f.display(), e.message())).with_field("file");
        let text = std::fs::read_to_string(f)
            .map_err(|e| Error::new(ErrorKind::Parse, format!("Cannot read {}: {e}.", f.display())))?;
        let value: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Error::new(ErrorKind::Parse, format!("{}: not JSON: {e}.", f.display())))?;
        all.extend(partial::from_json(&value, spec).map_err(at)?);
    }
    Ok(all)
}

/// `meterkit partial`: the partial states of a file's records (a shard), as JSON on stdout.
pub fn partial(tenant: &str, args: &PartialArgs) -> Result<()> {
    let spec = read_spec(&args.spec)?;
    let input = InputArgs { all_tenants: args.all_tenants, ..args.input.clone() };
    let mut rollup = partial::PartialRollup::new(&spec)?;
    input.read(tenant, &mut |line, parsed| {
        let at = |e: Error| Error::new(e.kind(), located(&input.file, line, e.message())).with_line(line);
        for r in parsed.map_err(at)? {
            rollup.add(&r).map_err(at)?;
        }
        Ok(())
    })?;
    print_json(&partial::to_json(&rollup.finish(), &spec)?)
}

/// `meterkit merge-partials`: the files' states merged (one row per key), as JSON on stdout.
pub fn merge(args: &StatesArgs) -> Result<()> {
    let spec = read_spec(&args.spec)?;
    let merged = partial::merge(read_states(&args.files, &spec)?)?;
    print_json(&partial::to_json(&merged, &spec)?)
}

/// `meterkit finalize-partials`: the buckets of --tenant from the files' states (merged first),
/// a JSON array of buckets as `meterkit rollup --output json` prints them.
pub fn finalize(tenant: &str, args: &StatesArgs) -> Result<()> {
    let spec = read_spec(&args.spec)?;
    let rows = partial::finalize(&read_states(&args.files, &spec)?, &spec)?;
    let buckets = partial::buckets_of_tenant(rows, Some(tenant))?;
    print_json(&serde_json::to_value(&buckets).map_err(|e| Error::new(ErrorKind::Store, e.to_string()))?)
}

/// `meterkit import-partials`: the files' states into --db (`Engine::import_buckets`: each key's
/// merged state is set, so importing the same files twice changes nothing); prints
/// `{"spec": id, "buckets": n}`.
pub fn import(engine: &Engine, args: &StatesArgs) -> Result<()> {
    let spec = read_spec(&args.spec)?;
    let merged = partial::merge(read_states(&args.files, &spec)?)?;
    let n = merged.len();
    let buckets: Vec<_> = merged.into_iter().map(|p| (p.key, p.end, p.state)).collect();
    let id = engine.import_buckets(&spec, &buckets)?;
    print_json(&serde_json::json!({ "spec": id, "buckets": n }))
}
