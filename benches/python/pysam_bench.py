"""meterkit against NREL PySAM on URDB tariffs, in the same run (issue 15's speed targets).

* one year of hourly load (8,760 hours) under one URDB tariff, 12 monthly bills:
  `Utilityrate5.execute()` (a model whose load and rates are assigned) vs meterkit, alternating
  in rounds (the machine may be shared: each round times PySAM, then meterkit, within a few
  seconds, and the ratio of the round's medians is reported; the load average is printed).
  meterkit is timed three ways: the Rust API on a load prepared once
  (`PreparedLoad::compare`, the analogue of PySAM's assigned load array: target >= 50x), the
  Rust API from the 8,760 `UsageRecord`s (`Tariff::compare`, which prepares the load every
  call), both by the release example `benches/examples/urdb_year.rs` in a child process, and
  the Python binding's `meterkit.Tariff.compare` with one tariff (converts the Python records
  and prepares the load every call);
* 1,000 URDB tariffs against the same load: PySAM (timed on the first 50 and scaled) vs one
  `meterkit.Tariff.compare` call (target: < 0.5 s).

The load is the real household of examples/data (2021's hours laid on 2018, UTC) and the tariff
the real record in tests/data/urdb/; the 1,000 tariffs are it with its rates scaled by 0.5-1.5.
Both sides get their inputs ready before the clock starts (PySAM: a model with the rates and
load assigned; meterkit: parsed tariffs and UsageRecord objects). Run with scripts/bench-pysam.
"""
import copy
import csv
import datetime as dt
import json
import os
import re
import statistics
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

try:
    import meterkit as mk
except ImportError:  # scripts/bench-pysam installs it; without it only the Rust columns run
    mk = None

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests/pysam"))
from pysam_bills import model_for  # noqa: E402

REAL = json.loads((ROOT / "tests/data/urdb/urdb-539f6a23ec4f024411ec8beb-south-central-ppd-lp1.json").read_text())
LOAD = ROOT / "examples/data/uk-smart-meter-hourly.csv"
URDB_YEAR = os.environ.get("METERKIT_URDB_YEAR", str(ROOT / "target/release/examples/urdb_year"))
ROUNDS = int(os.environ.get("METERKIT_BENCH_ROUNDS", "7"))


def scaled(record, f):
    r = copy.deepcopy(record)

    def walk(v):
        if isinstance(v, dict):
            for k, x in v.items():
                if k == "rate":
                    v[k] = round(x * f, 6)
                else:
                    walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    walk(r)
    return r


def timed(f, n):
    runs = []
    for _ in range(n):
        t = time.perf_counter()
        f()
        runs.append(time.perf_counter() - t)
    return statistics.median(runs)


def timed_runs(f, n):
    """(median, fastest, median CPU time of the calling thread) seconds of `n` calls of `f`."""
    runs, cpu = [], []
    for _ in range(n):
        c = time.thread_time()
        t = time.perf_counter()
        f()
        runs.append(time.perf_counter() - t)
        cpu.append(time.thread_time() - c)
    return statistics.median(runs), min(runs), statistics.median(cpu)


def rust_year(way, n):
    """(median, fastest) seconds per tariff-year of the Rust example's `way` (`prepared`: the
    monthly totals on a prepared load; `bills`: the 12 bills with every line's text on it;
    `records`: from the 8,760 records)."""
    only = f"only-{way}"
    out = subprocess.run([URDB_YEAR, str(n), "UTC", only], check=True, capture_output=True, text=True).stdout
    m = re.search(rf"way={way} .*median=([0-9.]+) ms fastest=([0-9.]+) ms", out)
    return float(m.group(1)) / 1000, float(m.group(2)) / 1000


def alternating(model, python_year):
    """Rounds of PySAM `execute()` then meterkit (Rust prepared, Rust from records, Python);
    the ratio of each round's medians."""
    print(f"load average at start: {os.getloadavg()[0]:.1f}")
    print("Each cell: median / fastest of the round (wall clock); ratio: PySAM's median / meterkit's median")
    print("(fastest / fastest). On a loaded machine PySAM's wall-clock median is inflated far more than")
    print("meterkit's (a 2 ms call is preempted, a 0.04 ms call rarely): the last column divides PySAM's")
    print("median CPU time (its thread's, which excludes waiting) by meterkit's wall-clock median: a")
    print("conservative ratio.")
    print("| round | load avg | PySAM execute() | PySAM CPU | Rust, prepared load | ratio | Rust, prepared, bills with lines | ratio | Rust, from records | ratio | Python compare | ratio | prepared: PySAM CPU / Rust wall |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    ratios = {"prepared": [], "bills": [], "records": [], "python": []}
    fastest = {"prepared": [], "bills": [], "records": [], "python": []}
    by_cpu = []
    cell = lambda v: f"{v[0] * 1000:.4f} / {v[1] * 1000:.4f} ms"
    for r in range(ROUNDS):
        p = timed_runs(lambda: model.execute(0), 40)
        prepared = rust_year("prepared", 2000)
        bills = rust_year("bills", 2000)
        records = rust_year("records", 200)
        py = timed_runs(python_year, 40) if python_year else None
        for k, v in (("prepared", prepared), ("bills", bills), ("records", records), ("python", py)):
            if v:
                ratios[k].append(p[0] / v[0])
                fastest[k].append(p[1] / v[1])
        ratio = lambda v: f"{p[0] / v[0]:.1f}x / {p[1] / v[1]:.1f}x"
        by_cpu.append(p[2] / prepared[0])
        python = f"{cell(py)} | {ratio(py)}" if py else "(not installed) | —"
        print(
            f"| {r + 1} | {os.getloadavg()[0]:.1f} | {cell(p)} | {p[2] * 1000:.4f} ms | {cell(prepared)} | {ratio(prepared)} | {cell(bills)} | {ratio(bills)} "
            f"| {cell(records)} | {ratio(records)} | {python} | {by_cpu[-1]:.1f}x |"
        )
    print(
        "median over the rounds of the ratio of medians (of fastest runs): "
        + ", ".join(
            f"{k} {statistics.median(v):.1f}x ({statistics.median(fastest[k]):.1f}x)" for k, v in ratios.items() if v
        )
        + f"; prepared, PySAM CPU / Rust wall {statistics.median(by_cpu):.1f}x"
    )
    print()


def main():
    vals = [r["value"] for r in csv.DictReader(open(LOAD)) if r["start"].startswith("2021")]
    record = REAL["items"][0]
    load_kw = [float(v) for v in vals]
    zeros = [0.0] * 8760
    model = model_for(record, load_kw, zeros)
    if mk is None:
        print("meterkit (Python) is not installed: the Rust columns only (scripts/bench-pysam installs it)")
        alternating(model, None)
        return
    start = dt.datetime(2018, 1, 1, tzinfo=dt.timezone.utc)
    records = [
        mk.UsageRecord("t", f"h{h}", "house", "kwh", Decimal(v), start + dt.timedelta(hours=h))
        for h, v in enumerate(vals)
    ]
    request = mk.BillRequest("t", "house", "kwh", start, dt.datetime(2019, 1, 1, tzinfo=dt.timezone.utc), "UTC")
    real = mk.Tariff.from_urdb_json(json.dumps(record))
    alternating(model, lambda: mk.Tariff.compare([("real", real)], request, records))
    pysam_one = timed(lambda: model.execute(0), 30)
    ours_one = timed(lambda: mk.Tariff.compare([("real", real)], request, records), 30)

    variants = [scaled(record, 0.5 + i / 1000) for i in range(1000)]
    models = [model_for(v, load_kw, zeros) for v in variants[:50]]
    t = time.perf_counter()
    for m in models:
        m.execute(0)
    pysam_1000 = (time.perf_counter() - t) * 1000 / 50
    tariffs = [(f"t{i}", mk.Tariff.from_urdb_json(json.dumps(v))) for i, v in enumerate(variants)]
    ours_1000 = timed(lambda: mk.Tariff.compare(tariffs, request, records), 3)

    rows = [
        ("one tariff-year (8,760 h, 12 bills)", pysam_one, ours_one),
        ("1,000 tariffs vs one load", pysam_1000, ours_1000),
    ]
    print("| case | PySAM Utilityrate5 | meterkit (Python) | meterkit faster by |")
    print("|---|---|---|---|")
    for name, p, m in rows:
        print(f"| {name} | {p * 1000:.2f} ms | {m * 1000:.3f} ms | {p / m:.0f}x |")


if __name__ == "__main__":
    main()
