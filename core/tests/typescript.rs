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

use meterkit::json::case;
use meterkit::ErrorKind;
use ts_rs::{Config, TS};

/// One exported declaration as ts-rs writes it: `export type Name = …`, with the type's doc
/// comment (its first paragraph only: `Tariff`'s doc is the whole tariff guide) and the core's
/// snake_case field names.
fn document<T: TS + ?Sized>(cfg: &Config) -> String {
    let mut out = String::new();
    if let Some(docs) = T::docs() {
        out.push_str(&first_paragraph(&docs));
    }
    let _ = writeln!(out, "export {}", T::decl(cfg));
    out
}

/// A field of a generated declaration: ts-rs puts each documented field at the start of a line,
/// `name: type, ` or `name?: type, `.
fn field_of(line: &str) -> Option<(&str, &str)> {
    let colon = line.find(':')?;
    let name = line[..colon].trim_end_matches('?');
    let ok = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    ok.then(|| (name, line[colon + 1..].trim()))
}

/// `decl` with every field name in camelCase, and the field names quoted in its doc comments
/// (`` `group_by` ``) too.
fn camel_fields(decl: &str) -> String {
    let names: Vec<&str> = decl.lines().filter_map(field_of).map(|(n, _)| n).filter(|n| n.contains('_')).collect();
    let mut out = String::new();
    for line in decl.lines() {
        let mut line = match field_of(line) {
            Some((name, _)) => format!("{}{}", case::camel(name), &line[name.len()..]),
            None => line.to_string(),
        };
        if line.trim_start().starts_with('*') {
            for n in &names {
                line = line.replace(&format!("`{n}`"), &format!("`{}`", case::camel(n)));
            }
        }
        out.push_str(&line);
        out.push('\n');
    }
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

/// A declaration whose field names the Node package spells in camelCase.
const CAMEL: bool = true;
/// A declaration kept with the core's snake_case names: the tariff document (a file format, the
/// same in every host) and the declarations without fields.
const DOCUMENT: bool = false;

/// Every declaration generated from the core types, as ts-rs writes it, and whether its field
/// names are converted to camelCase.
fn declarations() -> Vec<(String, bool)> {
    let cfg = Config::new().with_large_int("number");
    vec![
        (document::<meterkit::time::Window>(&cfg), CAMEL),
        (document::<meterkit::ErrorKind>(&cfg), CAMEL),
        (error_code_type(), DOCUMENT),
        (document::<meterkit::record::Quality>(&cfg), CAMEL),
        (document::<meterkit::UsageRecord>(&cfg), CAMEL),
        (document::<meterkit::engine::Rejection>(&cfg), CAMEL),
        (document::<meterkit::engine::IngestReport>(&cfg), CAMEL),
        (document::<meterkit::Aggregation>(&cfg), CAMEL),
        (document::<meterkit::RollupSpec>(&cfg), CAMEL),
        (document::<meterkit::engine::Fill>(&cfg), CAMEL),
        (document::<meterkit::Query>(&cfg), CAMEL),
        (document::<meterkit::Bucket>(&cfg), CAMEL),
        (document::<meterkit::engine::Totals>(&cfg), CAMEL),
        (document::<meterkit::Event>(&cfg), CAMEL),
        (document::<meterkit::tariff::Rounding>(&cfg), DOCUMENT),
        (document::<meterkit::tariff::ChargeKind>(&cfg), DOCUMENT),
        (document::<meterkit::tariff::QuantityRounding>(&cfg), DOCUMENT),
        (document::<meterkit::tariff::Per>(&cfg), DOCUMENT),
        (document::<meterkit::tariff::Basis>(&cfg), DOCUMENT),
        (document::<meterkit::tariff::SharedLadder>(&cfg), DOCUMENT),
        (document::<meterkit::tariff::Tier>(&cfg), DOCUMENT),
        (document::<meterkit::tariff::PeriodPrice>(&cfg), DOCUMENT),
        (document::<meterkit::tariff::Schedule>(&cfg), DOCUMENT),
        (document::<meterkit::tariff::FixedCharge>(&cfg), DOCUMENT),
        (document::<meterkit::tariff::PerUnitCharge>(&cfg), DOCUMENT),
        (document::<meterkit::tariff::TieredCharge>(&cfg), DOCUMENT),
        (document::<meterkit::tariff::PackageCharge>(&cfg), DOCUMENT),
        (document::<meterkit::tariff::AllowanceCharge>(&cfg), DOCUMENT),
        (document::<meterkit::tariff::TimeOfUseCharge>(&cfg), DOCUMENT),
        (document::<meterkit::tariff::TouPrices>(&cfg), DOCUMENT),
        (document::<meterkit::tariff::DemandRate>(&cfg), DOCUMENT),
        (document::<meterkit::tariff::DemandTiers>(&cfg), DOCUMENT),
        (document::<meterkit::tariff::DemandCharge>(&cfg), DOCUMENT),
        (document::<meterkit::tariff::MinimumCharge>(&cfg), DOCUMENT),
        (document::<meterkit::tariff::PercentageCharge>(&cfg), DOCUMENT),
        (document::<meterkit::tariff::Charge>(&cfg), DOCUMENT),
        (document::<meterkit::tariff::TariffVersion>(&cfg), DOCUMENT),
        (document::<meterkit::tariff::metering::MeteringRule>(&cfg), DOCUMENT),
        (document::<meterkit::tariff::metering::Metering>(&cfg), DOCUMENT),
        (document::<meterkit::tariff::ratchet::Ratchet>(&cfg), DOCUMENT),
        (document::<meterkit::Tariff>(&cfg), DOCUMENT),
        (document::<meterkit::BillRequest>(&cfg), CAMEL),
        (document::<meterkit::billing::BillLine>(&cfg), CAMEL),
        (document::<meterkit::billing::SubjectUsage>(&cfg), CAMEL),
        (document::<meterkit::Bill>(&cfg), CAMEL),
        (document::<meterkit::billing::compare::PeriodTotal>(&cfg), CAMEL),
        (document::<meterkit::billing::compare::Comparison>(&cfg), CAMEL),
        (document::<meterkit::invoice::InvoiceStatus>(&cfg), CAMEL),
        (document::<meterkit::invoice::Invoice>(&cfg), CAMEL),
        (document::<meterkit::quota::Quota>(&cfg), CAMEL),
        (document::<meterkit::allocate::SharedMeter>(&cfg), CAMEL),
        (document::<meterkit::vee::Severity>(&cfg), CAMEL),
        (document::<meterkit::vee::Action>(&cfg), CAMEL),
        (document::<meterkit::vee::Rule>(&cfg), CAMEL),
        (document::<meterkit::Finding>(&cfg), CAMEL),
        (document::<meterkit::vee::ValidationConfig>(&cfg), CAMEL),
        (document::<meterkit::vee::alert::AlertConfig>(&cfg), CAMEL),
        (document::<meterkit::vee::alert::Alert>(&cfg), CAMEL),
        (document::<meterkit::vee::SeverityCounts>(&cfg), CAMEL),
        (document::<meterkit::vee::ValidationSummary>(&cfg), CAMEL),
        (document::<meterkit::reading::ReadingKind>(&cfg), CAMEL),
        (document::<meterkit::MeterReading>(&cfg), CAMEL),
        (document::<meterkit::vee::estimate::EstimateConfig>(&cfg), CAMEL),
        (document::<meterkit::reading::check::ReadingOptions>(&cfg), CAMEL),
        (document::<meterkit::reading::check::ReadingStatus>(&cfg), CAMEL),
        (document::<meterkit::reading::check::ReadingOutcome>(&cfg), CAMEL),
        (document::<meterkit::reading::dating::Dating>(&cfg), CAMEL),
        (document::<meterkit::reading::counter::CounterOptions>(&cfg), CAMEL),
        (document::<meterkit::engine::CounterOutcome>(&cfg), CAMEL),
    ]
}

/// The whole generated file.
fn generate(prelude: &str) -> String {
    let decls: Vec<String> =
        declarations().into_iter().map(|(d, camel)| if camel { camel_fields(&d) } else { d }).collect();
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

/// `meterkit::json::case` converts the Node package's objects following these types: every
/// field typed as a string-keyed map (user data: dimensions, groups, filters) or as a tariff
/// document or aggregation list is listed in `case::DATA_MAPS` / `case::VERBATIM`; a listed
/// name is never a field holding an object with named fields (which would keep snake_case
/// keys); and every field name survives `snake → camel → snake`.
#[test]
fn the_camel_case_conversion_follows_the_types() {
    let documents = ["TariffDocument", "Aggregation"];
    let mut seen_maps = Vec::new();
    for (decl, camel) in declarations() {
        if !camel {
            continue;
        }
        for (name, ty) in decl.lines().filter_map(field_of) {
            assert_eq!(case::snake(&case::camel(name)), name, "field {name} does not survive snake → camel → snake");
            let listed = case::DATA_MAPS.contains(&name) || case::VERBATIM.contains(&name);
            let is_map = ty.starts_with("{ [key in string]");
            let is_document = documents.iter().any(|d| ty.contains(d));
            if is_map || is_document {
                assert!(listed, "field {name}: {ty} must be listed in case::DATA_MAPS or case::VERBATIM");
                seen_maps.push(name.to_string());
            } else if listed {
                let scalar = ["string", "Array<string>", "string | null"]
                    .iter()
                    .any(|t| ty.trim_end_matches([',', ' ', '}', ';']).trim_end_matches(',').trim() == *t);
                assert!(scalar, "field {name}: {ty} is listed as user data but holds other values");
            }
        }
    }
    // The Node package reads usage records without the conversion (its bulk-ingest path): that
    // holds while every key of a record is one word, the same in both conventions.
    let record = document::<meterkit::UsageRecord>(&Config::new());
    for (name, _) in record.lines().filter_map(field_of) {
        assert!(!name.contains('_'), "UsageRecord.{name}: bindings-node/src/convert.rs reads records unconverted");
    }
    for name in case::DATA_MAPS.iter().chain(case::VERBATIM) {
        assert!(seen_maps.iter().any(|n| n == name), "case list names {name}, which no core type has as a map");
    }
}
