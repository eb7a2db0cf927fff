"""A cron job's repeat run from Python (issue 14, item 11).

N API-request records (default 979,000, the issue's count) are ingested in batches of 10,000 into
an engine (``memory`` or ``sqlite``, a temporary file) with a monthly spec per portal and status,
then sent again -- every record a duplicate -- as ``UsageRecord`` lists in the same batches and in
batches cut 5,000 records later (every key checked against the store), and through
``ingest_arrow`` (pyarrow tables of 100,000 rows, cut at another offset, then once more in those
same tables). The same data as ``benches/examples/repeat_run.rs`` and
``benches/node/repeat_run.js``. Prints each run's wall and CPU time per record (building the
records and tables is not timed).

    python benches/python/repeat_run.py [N] [memory|sqlite]   (with the meterkit wheel and pyarrow)
"""

import os
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pyarrow as pa

import meterkit

N = int(sys.argv[1]) if len(sys.argv) > 1 else 979_000
STORE = sys.argv[2] if len(sys.argv) > 2 else "sqlite"
BATCH, TABLE = 10_000, 100_000
BASE = datetime(2024, 5, 1, tzinfo=timezone.utc)


def stamp(i):
    return BASE + timedelta(seconds=(i * 2) % (30 * 86_400))


def status(i):
    return "error" if i % 17 == 0 else "ok"


records = [
    meterkit.UsageRecord(
        "api", f"req-{i}", f"portal-{i % 40}", "requests", Decimal(1), stamp(i), dimensions={"status": status(i)}
    )
    for i in range(N)
]


def cuts(offset, size):
    points = [0] + ([offset] if offset else [])
    points += [min(i + size, N) for i in range(offset, N, size)]
    return [(a, b) for a, b in zip(points, points[1:]) if b > a]


def tables(offset):
    out = []
    for a, b in cuts(offset, TABLE):
        rows = range(a, b)
        out.append(
            pa.table(
                {
                    "id": [f"req-{i}" for i in rows],
                    "subject": [f"portal-{i % 40}" for i in rows],
                    "quantity": pa.array([1] * (b - a), pa.int64()),
                    "timestamp": pa.array([stamp(i) for i in rows], pa.timestamp("us", tz="UTC")),
                    "status": [status(i) for i in rows],
                }
            )
        )
    return out


def run(what, calls):
    wall, cpu = time.perf_counter(), time.process_time()
    accepted = duplicates = rejected = 0
    for call in calls:
        report = call()
        accepted, duplicates = accepted + report.accepted, duplicates + report.duplicates
        rejected += len(report.rejected)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(
        f"{what:<34}: {N} records in {wall:.2f} s wall ({wall * 1e6 / N:.3f} µs/record), "
        f"{cpu:.2f} s CPU ({cpu * 1e6 / N:.3f} µs/record): {accepted} accepted, "
        f"{duplicates} duplicates, {rejected} rejected"
    )


def lists(engine, offset):
    slices = [records[a:b] for a, b in cuts(offset, BATCH)]
    return [lambda s=s: engine.ingest(s) for s in slices]


def arrow(engine, tabs):
    kw = dict(tenant="api", metric="requests", dimensions=["status"])
    return [lambda t=t: engine.ingest_arrow(t, **kw) for t in tabs]


with tempfile.TemporaryDirectory() as tmp:
    engine = meterkit.Engine() if STORE == "memory" else meterkit.Engine.open(os.path.join(tmp, "repeat.db"))
    engine.add_spec(meterkit.RollupSpec("requests", "month", "UTC", group_by=["subject", "status"]))
    print(f"store: {STORE}; python {sys.version.split()[0]}; load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    run("first run, ingest", lists(engine, 0))
    run("repeat, ingest, same batches", lists(engine, 0))
    run("repeat, ingest, shifted batches", lists(engine, 5_000))
    tabs = tables(2_500)
    run("repeat, ingest_arrow, shifted", arrow(engine, tabs))
    run("repeat, ingest_arrow, same tables", arrow(engine, tabs))
