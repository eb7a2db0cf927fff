//! Helpers for `scripts/bench-mobile`: the boundary cost alone (lift a batch, convert it to core
//! records, return the count — no ingest) and the Rust-side cost of the same calls, measured in
//! the same process, so the host's figures can be given as ratios.

use std::time::{Duration, Instant, UNIX_EPOCH};

use meterkit::Decimal;

use crate::engine::{PackedColumns, RecordColumns};
use crate::error::{unsigned, MeterkitError};
use crate::types::{records_to_core, MeterReading, UsageRecord};

/// The boundary alone: `records` are lowered by the host and lifted here (every string, decimal
/// and instant read into Rust values), then counted — no core records are built and nothing is
/// ingested (`rust_bench_convert` measures that next step). Errors: none in practice (a decimal
/// out of range fails the lift with `Parse`).
#[uniffi::export]
pub fn count_records(records: Vec<UsageRecord>) -> Result<i64, MeterkitError> {
    Ok(records.len() as i64)
}

/// The boundary alone for columns: lifted, the lengths checked, counted; no core records are
/// built (`rust_bench_convert_columns` measures that). Errors: `InvalidRecord` for columns of
/// different lengths.
#[uniffi::export]
pub fn count_columns(columns: RecordColumns) -> Result<i64, MeterkitError> {
    let n = columns.mantissas.len();
    let rows = if columns.ids.is_empty() { 0 } else { columns.ids.bytes().filter(|b| *b == b'\n').count() + 1 };
    if columns.subject_codes.len() != n || columns.timestamps.len() != n || rows != n {
        return Err(meterkit::Error::new(
            meterkit::ErrorKind::InvalidRecord,
            "Every column must have one value per row.",
        )
        .into());
    }
    Ok(n as i64)
}

/// The boundary alone for packed columns: lifted (one copy per byte column), unpacked into
/// typed columns, the lengths checked, counted; no core records are built. Errors:
/// `InvalidRecord` for ragged or mismatched columns.
#[uniffi::export]
pub fn count_packed(columns: PackedColumns) -> Result<i64, MeterkitError> {
    count_columns(columns.unpack()?)
}

fn synthetic(n: u32) -> Vec<meterkit::UsageRecord> {
    let base = chrono::DateTime::from_timestamp(1_717_200_000, 0).unwrap_or_default();
    (0..n)
        .map(|i| {
            meterkit::UsageRecord::new(
                "t",
                format!("r{i}"),
                format!("m{}", i % 100),
                "kwh",
                Decimal::new(i64::from(i % 1000) + 1, 3),
                base + chrono::Duration::seconds(i64::from(i) * 60),
            )
        })
        .collect()
}

/// Rust-side cost, in nanoseconds, of ingesting `n` synthetic records (100 meters, one per
/// minute) into a fresh in-memory engine in one batch — the same work as the host's batch
/// ingest without the boundary. Errors: none in practice.
#[uniffi::export]
pub fn rust_bench_ingest(n: i32) -> Result<i64, MeterkitError> {
    let batch = synthetic(unsigned(n, "n")?);
    let engine = meterkit::Engine::in_memory();
    let start = Instant::now();
    engine.ingest(&batch)?;
    Ok(nanos(start.elapsed()))
}

/// Rust-side cost, in nanoseconds, of `iterations` calls of `validate_reading` with `history`
/// and `reading` (the same function the host calls, without the boundary). Errors: those of
/// `validate_reading`.
#[uniffi::export]
pub fn rust_bench_validate_reading(
    history: Vec<MeterReading>,
    reading: MeterReading,
    iterations: i32,
) -> Result<i64, MeterkitError> {
    let now = Some(UNIX_EPOCH + Duration::from_secs(1_900_000_000));
    let start = Instant::now();
    for _ in 0..iterations.max(0) {
        crate::field::validate_reading("t".into(), "kwh".into(), history.clone(), reading.clone(), None, now)?;
    }
    Ok(nanos(start.elapsed()))
}

/// Rust-side cost, in nanoseconds, of converting `n` mirror records (as the host's list lifts
/// them) into core records — the Rust half of the boundary. Errors: none in practice.
#[uniffi::export]
pub fn rust_bench_convert(n: i32) -> Result<i64, MeterkitError> {
    let records: Vec<UsageRecord> = synthetic(unsigned(n, "n")?);
    let start = Instant::now();
    let core = records_to_core(records)?;
    let elapsed = start.elapsed();
    std::hint::black_box(core);
    Ok(nanos(elapsed))
}

/// Rust-side cost, in nanoseconds, of converting `n` rows of columns (as `count_columns` gets
/// them: 100 subjects, ids joined by line breaks) into core records. Errors: none in practice.
#[uniffi::export]
pub fn rust_bench_convert_columns(n: i32) -> Result<i64, MeterkitError> {
    let n: u32 = unsigned(n, "n")?;
    let columns = RecordColumns {
        tenant: "t".into(),
        metric: "kwh".into(),
        ids: (0..n).map(|i| format!("r{i}")).collect::<Vec<_>>().join("\n"),
        subject_values: (0..100).map(|i| format!("m{i}")).collect(),
        subject_codes: (0..n).map(|i| (i % 100) as i32).collect(),
        mantissas: (0..n).map(|i| i64::from(i % 1000) + 1).collect(),
        scale: 3,
        timestamps: (0..n).map(|i| 1_717_200_000 + i64::from(i) * 60).collect(),
    };
    let start = Instant::now();
    let core = columns.into_core()?;
    let elapsed = start.elapsed();
    std::hint::black_box(core);
    Ok(nanos(elapsed))
}

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}
