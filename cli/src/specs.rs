//! `meterkit spec`: the rollup specs the store maintains — list, add (of every tenant, or
//! `--own`: the tenant's own, in its zone and billing-cycle day), remove. Queries never add a spec
//! (an unplanned query is answered from the records); `spec add` is how a grouping is planned.
//! Every subcommand prints JSON.

use meterkit::{rollup::Aggregation, Engine, Error, ErrorKind, Result, RollupSpec, Window};

/// `meterkit spec` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum SpecCommand {
    /// Print the maintained specs, one JSON object per line (id order).
    List,
    /// Maintain a spec from now on (backfilled from the stored records); prints `{"id":N}`.
    Add(SpecArgs),
    /// Stop maintaining a spec and delete its buckets; prints `{"removed":N}` (its id).
    Remove(SpecArgs),
}

/// The spec named on the command line.
#[derive(Debug, clap::Args)]
pub struct SpecArgs {
    /// The metric.
    #[arg(long)]
    metric: String,
    /// minutes:N, hour, day, week, month, quarter, year or cycle:DAY.
    #[arg(long)]
    window: String,
    /// The IANA zone the windows are computed in.
    #[arg(long)]
    tz: String,
    /// Group by these dimensions (comma-separated; `subject` allowed).
    #[arg(long, value_delimiter = ',')]
    group_by: Vec<String>,
    /// Count the distinct values of these dimensions (comma-separated).
    #[arg(long, value_delimiter = ',')]
    unique: Vec<String>,
    /// The spec is --tenant's own: maintained for that tenant's records only.
    #[arg(long)]
    own: bool,
}

impl SpecArgs {
    fn spec(&self, tenant: &str) -> Result<RollupSpec> {
        let window: Window = self.window.parse().map_err(|e: Error| e.with_field("window"))?;
        let mut spec = RollupSpec::new(&self.metric, window, &self.tz)?.group_by(self.group_by.clone());
        for d in &self.unique {
            spec = spec.with(Aggregation::UniqueCount(d.clone()));
        }
        Ok(if self.own { spec.for_tenant(tenant) } else { spec })
    }
}

/// Run one `meterkit spec` subcommand (`tenant` is the owner of an `--own` spec).
pub fn run(engine: &Engine, tenant: &str, cmd: &SpecCommand) -> Result<()> {
    let json = |v: &serde_json::Value| println!("{v}");
    match cmd {
        SpecCommand::List => {
            for spec in engine.specs() {
                println!("{}", serde_json::to_string(&spec).map_err(|e| Error::new(ErrorKind::Parse, e.to_string()))?);
            }
        }
        SpecCommand::Add(args) => json(&serde_json::json!({ "id": engine.add_spec(args.spec(tenant)?)? })),
        SpecCommand::Remove(args) => json(&serde_json::json!({ "removed": engine.remove_spec(&args.spec(tenant)?)? })),
    }
    Ok(())
}
