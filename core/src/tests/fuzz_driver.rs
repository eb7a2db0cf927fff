//! A fuzz driver on the stable toolchain (no nightly, no libFuzzer): proptest strategies generate
//! structure-aware and raw-bytes inputs, and every input runs a target's check, which must
//! neither panic nor fail. Shared by the fuzz targets of the core (`fuzz_tests.rs`) and of the
//! CLI's readers (`cli/src/input.rs`), included by `#[path]`.
//!
//! Budget, from the environment:
//! * `METERKIT_FUZZ_SECONDS=N` — run each target for N seconds (`scripts/fuzz`), with a fresh
//!   random seed per round;
//! * otherwise `METERKIT_FUZZ_CASES` inputs per target (default 200: what `cargo test` runs),
//!   from a fixed seed, so CI is repeatable.
//!
//! A failing input is shrunk by proptest and the test fails with it. A panic counts as a
//! failure (proptest catches it); an abort (stack overflow, allocation failure) ends the test
//! process, which `cargo test` reports. After the run, the process's peak resident memory must
//! stay under [`PEAK_RSS_LIMIT`] — `scripts/fuzz` also runs under `ulimit -v`, so an unbounded
//! allocation aborts instead of swapping. Each target prints `fuzz <name>: <inputs> inputs`.

#![allow(dead_code)]

use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};

/// The most resident memory (bytes) the test process may have used at its peak.
pub const PEAK_RSS_LIMIT: u64 = 1536 * 1024 * 1024;

/// Run `check` on inputs from `strategy` for the budget; panics (failing the test) with the
/// shrunk input when a check fails or panics. Returns the number of inputs run.
pub fn fuzz<S>(name: &str, strategy: S, check: impl Fn(&S::Value) -> Result<(), String>) -> u64
where
    S: Strategy,
    S::Value: Debug,
{
    let seconds = std::env::var("METERKIT_FUZZ_SECONDS").ok().and_then(|s| s.parse::<u64>().ok());
    let cases = std::env::var("METERKIT_FUZZ_CASES").ok().and_then(|s| s.parse::<u32>().ok()).unwrap_or(200);
    let deadline = seconds.map(|s| Instant::now() + Duration::from_secs(s));
    let count = AtomicU64::new(0);
    let mut round = 0u64;
    loop {
        let seed = match deadline {
            // Fixed per target: the same inputs on every CI run.
            None => {
                name.bytes().fold(0x9e37_79b9_7f4a_7c15u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
            }
            Some(_) => {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(round, |d| d.as_nanos() as u64)
                    ^ round
            }
        };
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&seed.to_le_bytes());
        let config = Config {
            cases: if deadline.is_some() { 250 } else { cases },
            failure_persistence: None,
            max_shrink_iters: 2000,
            ..Config::default()
        };
        let mut runner = TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &key));
        let result = runner.run(&strategy, |v| {
            count.fetch_add(1, Ordering::Relaxed);
            check(&v).map_err(TestCaseError::fail)
        });
        match result {
            Ok(()) => {}
            Err(TestError::Fail(why, input)) => {
                panic!("fuzz {name}: seed {seed:#x}: {why}\nminimal input: {input:?}")
            }
            Err(TestError::Abort(why)) => panic!("fuzz {name}: aborted: {why}"),
        }
        round += 1;
        if deadline.is_none_or(|d| Instant::now() >= d) {
            break;
        }
    }
    let n = count.load(Ordering::Relaxed);
    let peak = peak_rss();
    eprintln!("fuzz {name}: {n} inputs, 0 failures, peak RSS {} MiB", peak / (1024 * 1024));
    assert!(peak < PEAK_RSS_LIMIT, "fuzz {name}: peak RSS {peak} bytes is over the limit");
    n
}

/// The process's peak resident set size in bytes (`VmHWM` of /proc/self/status; 0 elsewhere).
pub fn peak_rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(0, |kib| kib * 1024)
}

/// Raw bytes mixed with fragments of the format (`pieces`): what a truncated, corrupted or
/// concatenated file looks like.
pub fn mangled(pieces: &'static [&'static str]) -> impl Strategy<Value = Vec<u8>> {
    use proptest::prelude::*;
    let piece = prop_oneof![
        4 => proptest::sample::select(pieces).prop_map(|p| p.as_bytes().to_vec()),
        1 => proptest::collection::vec(any::<u8>(), 0..8),
        1 => proptest::sample::select(&["\n", "\r\n", "\u{feff}", "\"", ",", "\\", "\u{fffd}", "é", "\0"][..])
            .prop_map(|p| p.as_bytes().to_vec()),
        1 => Just(vec![0xff, 0xfe]),
        1 => Just(b"M\xfcller".to_vec()),
    ];
    proptest::collection::vec(piece, 0..40).prop_map(|v| v.concat())
}

/// Decimal-looking text: digits, signs, points, exponents, underscores, long runs.
pub fn number_text() -> impl Strategy<Value = String> {
    use proptest::prelude::*;
    prop_oneof![
        "[+-]?[0-9]{0,32}(\\.[0-9]{0,32})?([eE][+-]?[0-9]{1,9})?",
        "[+-]?[0-9_.eE]{0,12}",
        Just("79228162514264337593543950335".to_string()),
        Just("79228162514264337593543950336".to_string()),
        Just("5e-324".to_string()),
        Just("0.0000000000000000000000000001".to_string()),
        Just("1e28".to_string()),
        Just("-0.0".to_string()),
        any::<i64>().prop_map(|i| i.to_string()),
        any::<f64>().prop_map(|f| format!("{f:e}")),
    ]
}
