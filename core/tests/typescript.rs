//! The TypeScript types of the Node package (`bindings-node/types.d.ts`) are generated from the
//! core types (`ts_rs::TS`, derived behind the core feature `ts`), not restated by hand.
//!
//! `cargo test -p meterkit --features ts --test typescript` fails when the committed file differs
//! from what generation produces; with `METERKIT_WRITE_TYPES=1` it writes the file instead.
//! The file is the hand-written prelude (`bindings-node/types.prelude.d.ts`: the binding's own
//! input conventions — `Date`s and JS numbers accepted, the error object) followed by one
//! declaration per core type. `napi build` puts it at the top of `index.d.ts` (`dtsHeaderFile`).
#![cfg(feature = "ts")]

use std::fmt::Write as _;
use std::path::Path;

use meterkit::ErrorKind;
use ts_rs::{Config, TS};

/// One exported declaration: `export type Name = …`, with the type's doc comment (its first
/// paragraph only: `Tariff`'s doc is the whole tariff guide).
fn declaration<T: TS + ?Sized>(cfg: &Config) -> String {
    let mut out = String::new();
    if let Some(docs) = T::docs() {
        out.push_str(&first_paragraph(&docs));
    }
    let _ = writeln!(out, "export {}", T::decl(cfg));
    out
}

/// A JSDoc block cut to its first paragraph (` *` blank line), closed again.
fn first_paragraph(docs: &str) -> String {
    let lines: Vec<&str> = docs.lines().collect();
    match lines.iter().position(|l| l.trim() == "*") {
        Some(i) if i > 1 => format!("{}\n */\n", lines[..i].join("\n")),
        _ => format!("{}\n", docs.trim_end()),
    }
}

/// The error codes, from the core's list of kinds.
fn error_code_type() -> String {
    let codes: Vec<String> = ErrorKind::ALL.iter().map(|k| format!("'{}'", k.code())).collect();
    format!(
        "/** Stable error codes (`err.code`): the core's `ErrorKind::code()`, and `E_INTERNAL` for a bug \
         caught before it reached Node. */\nexport type ErrorCode = {} | 'E_INTERNAL'\n",
        codes.join(" | ")
    )
}

/// The whole generated file.
fn generate(prelude: &str) -> String {
    let cfg = Config::new().with_large_int("number");
    let decls = [
        declaration::<meterkit::time::Window>(&cfg),
        declaration::<meterkit::ErrorKind>(&cfg),
        error_code_type(),
        declaration::<meterkit::record::Quality>(&cfg),
        declaration::<meterkit::UsageRecord>(&cfg),
        declaration::<meterkit::engine::Rejection>(&cfg),
        declaration::<meterkit::engine::IngestReport>(&cfg),
        declaration::<meterkit::Aggregation>(&cfg),
        declaration::<meterkit::RollupSpec>(&cfg),
        declaration::<meterkit::engine::Fill>(&cfg),
        declaration::<meterkit::Query>(&cfg),
        declaration::<meterkit::Bucket>(&cfg),
        declaration::<meterkit::engine::Totals>(&cfg),
        declaration::<meterkit::Event>(&cfg),
        declaration::<meterkit::tariff::Rounding>(&cfg),
        declaration::<meterkit::tariff::ChargeKind>(&cfg),
        declaration::<meterkit::tariff::Charge>(&cfg),
        declaration::<meterkit::tariff::TariffVersion>(&cfg),
        declaration::<meterkit::tariff::metering::MeteringRule>(&cfg),
        declaration::<meterkit::tariff::metering::Metering>(&cfg),
        declaration::<meterkit::tariff::ratchet::Ratchet>(&cfg),
        declaration::<meterkit::Tariff>(&cfg),
        declaration::<meterkit::BillRequest>(&cfg),
        declaration::<meterkit::billing::BillLine>(&cfg),
        declaration::<meterkit::billing::SubjectUsage>(&cfg),
        declaration::<meterkit::Bill>(&cfg),
        declaration::<meterkit::billing::compare::PeriodTotal>(&cfg),
        declaration::<meterkit::billing::compare::Comparison>(&cfg),
        declaration::<meterkit::invoice::InvoiceStatus>(&cfg),
        declaration::<meterkit::invoice::Invoice>(&cfg),
        declaration::<meterkit::quota::Quota>(&cfg),
        declaration::<meterkit::allocate::SharedMeter>(&cfg),
        declaration::<meterkit::vee::Severity>(&cfg),
        declaration::<meterkit::vee::Action>(&cfg),
        declaration::<meterkit::vee::Rule>(&cfg),
        declaration::<meterkit::Finding>(&cfg),
        declaration::<meterkit::vee::ValidationConfig>(&cfg),
        declaration::<meterkit::vee::alert::AlertConfig>(&cfg),
        declaration::<meterkit::vee::alert::Alert>(&cfg),
        declaration::<meterkit::vee::SeverityCounts>(&cfg),
        declaration::<meterkit::vee::ValidationSummary>(&cfg),
        declaration::<meterkit::reading::ReadingKind>(&cfg),
        declaration::<meterkit::MeterReading>(&cfg),
        declaration::<meterkit::vee::estimate::EstimateConfig>(&cfg),
        declaration::<meterkit::reading::check::ReadingOptions>(&cfg),
        declaration::<meterkit::reading::check::ReadingStatus>(&cfg),
        declaration::<meterkit::reading::check::ReadingOutcome>(&cfg),
        declaration::<meterkit::reading::dating::Dating>(&cfg),
        declaration::<meterkit::reading::counter::CounterOptions>(&cfg),
        declaration::<meterkit::engine::CounterOutcome>(&cfg),
    ];
    let mut out = String::from(
        "/* auto-generated by NAPI-RS */\n/* eslint-disable */\n// GENERATED by `METERKIT_WRITE_TYPES=1 cargo test -p meterkit --features ts --test typescript`\n\
         // from the core types (ts-rs) and bindings-node/types.prelude.d.ts: do not edit by hand.\n\n",
    );
    out.push_str(prelude.trim_end());
    out.push_str("\n\n// ---- generated from the core types ----\n\n");
    out.push_str(&decls.join("\n"));
    out
}

#[test]
fn node_types_are_generated_from_the_core_types() {
    let node = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bindings-node");
    let prelude = std::fs::read_to_string(node.join("types.prelude.d.ts")).unwrap();
    let generated = generate(&prelude);
    let path = node.join("types.d.ts");
    if std::env::var_os("METERKIT_WRITE_TYPES").is_some() {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "bindings-node/types.d.ts differs from what the core types generate; run \
         `METERKIT_WRITE_TYPES=1 cargo test -p meterkit --features ts --test typescript` and commit it"
    );
}
