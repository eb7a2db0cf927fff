"""A household energy dashboard built only on meterkit's public Python API.

One UK household's hourly kWh (examples/data/uk-smart-meter-hourly.csv) is validated and ingested
through the columnar path, then shown as a consumption chart with 24 h / daily / weekly / monthly
views (Europe/London windows), KPI cards, the validation findings, and monthly bills under the
flat-rate tariff in examples/tariffs/flat.toml.

    streamlit run examples/python/dashboard.py          # the page
    python examples/python/dashboard.py --png chart.png  # headless: the chart as a PNG and the
                                                         # KPI/monthly figures on stdout (JSON)
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import meterkit as mk

DATA = Path(__file__).resolve().parents[1] / "data" / "uk-smart-meter-hourly.csv"
TARIFF = Path(__file__).resolve().parents[1] / "tariffs" / "flat.toml"
TENANT, SUBJECT, METRIC, ZONE = "household", "house-1", "kwh", "Europe/London"

# View name -> (window, how far back from the last reading).
VIEWS: dict[str, tuple[str, timedelta]] = {
    "24 h": ("hour", timedelta(hours=24)),
    "daily": ("day", timedelta(days=30)),
    "weekly": ("week", timedelta(weeks=26)),
    "monthly": ("month", timedelta(days=3 * 366)),
}


@dataclass
class Dashboard:
    engine: mk.Engine
    first: datetime
    last: datetime
    report: mk.IngestReport
    extra: dict[str, Any] = field(default_factory=dict)

    def series(self, view: str) -> list[mk.Bucket]:
        window, back = VIEWS[view]
        end = self.last + timedelta(hours=1)  # the last reading covers the hour it starts
        q = mk.Query(TENANT, METRIC, window, ZONE, from_=end - back, to=end)
        return self.engine.query(q)

    def monthly(self) -> list[mk.Bucket]:
        return self.engine.query(mk.Query(TENANT, METRIC, "month", ZONE))

    def findings(self) -> list[mk.Finding]:
        return self.report.findings

    def bills(self) -> list[tuple[str, mk.Bill]]:
        tariff = mk.Tariff.from_toml(TARIFF.read_text())
        out = []
        for b in self.monthly():
            month = month_label(b)
            request = mk.BillRequest.for_month(TENANT, SUBJECT, METRIC, month, ZONE)
            out.append((month, self.engine.bill(tariff, request)))
        return out

    def kpis(self) -> dict[str, Any]:
        totals = self.engine.totals(TENANT, METRIC, "month", ZONE, self.last)
        days = self.engine.query(mk.Query(TENANT, METRIC, "day", ZONE))
        total = sum((b.sum for b in days), Decimal(0))
        return {
            "this_month_kwh": totals.current.sum,
            "previous_month_kwh": totals.previous.sum,
            "change_percent": totals.change_percent,
            "total_kwh": total,
            "average_daily_kwh": (total / len(days)).quantize(Decimal("0.001")) if days else Decimal(0),
            "readings": self.report.accepted,
        }


def load(path: Path = DATA) -> Dashboard:
    import pandas as pd

    df = pd.read_csv(path, dtype={"value": str})  # keep the decimals exactly as written
    df["timestamp"] = pd.to_datetime(df["start"], utc=True)
    df["id"] = SUBJECT + "-" + df["start"]
    engine = mk.Engine()
    # VEE on the way in: spikes, stuck values, zero streaks, gaps (flagged records still count).
    engine.set_validation(METRIC, mk.ValidationConfig(time_zone=ZONE))
    for window in ("hour", "day", "week", "month"):
        engine.add_spec(mk.RollupSpec(METRIC, window, ZONE))
    report = engine.ingest_arrow(
        df[["id", "timestamp", "value"]],
        tenant=TENANT,
        subject=SUBJECT,
        metric=METRIC,
        quantity_column="value",
    )
    first = df["timestamp"].min().to_pydatetime()
    last = df["timestamp"].max().to_pydatetime()
    return Dashboard(engine, first, last, report)


def show(d: Decimal) -> str:
    """A kWh figure for display (the data keeps every digit; people read three)."""
    return str(d.quantize(Decimal("0.001")))


def month_label(b: mk.Bucket) -> str:
    from zoneinfo import ZoneInfo

    return b.window_start.astimezone(ZoneInfo(ZONE)).strftime("%Y-%m")


def plot(board: Dashboard, view: str, ax: Any) -> None:
    rows = board.series(view)
    ax.plot([b.window_start for b in rows], [float(b.sum) for b in rows], marker="." if view == "24 h" else None)
    ax.set_title(f"kWh per {VIEWS[view][0]} ({view}, {ZONE})")
    ax.set_ylabel("kWh")
    ax.grid(True, alpha=0.3)
    ax.tick_params(axis="x", labelrotation=30, labelsize=8)


def figures(board: Dashboard) -> dict[str, Any]:
    return {
        "kpis": {k: (str(v) if isinstance(v, Decimal) else v) for k, v in board.kpis().items()},
        "monthly": {month_label(b): str(b.sum) for b in board.monthly()},
        "views": {v: len(board.series(v)) for v in VIEWS},
        "validation": mk.ValidationSummary.of(board.findings()).to_dict(),
        "bills": {month: str(bill.total) for month, bill in board.bills()},
        **board.extra,
    }


def write_png(board: Dashboard, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(12, 7), constrained_layout=True)
    for ax, view in zip(axes.flat, VIEWS):
        plot(board, view, ax)
    k = board.kpis()
    fig.suptitle(
        f"This month {show(k['this_month_kwh'])} kWh (previous {show(k['previous_month_kwh'])}, "
        f"change {k['change_percent']} %) · average {k['average_daily_kwh']} kWh/day · "
        f"{len(board.findings())} validation findings"
    )
    fig.savefig(out, dpi=80)
    plt.close(fig)


def streamlit_page() -> None:
    import streamlit as st

    st.set_page_config(page_title="meterkit · household energy", layout="wide")
    board = st.cache_resource(load)()
    st.title("Household electricity")
    k = board.kpis()
    c1, c2, c3, c4 = st.columns(4)
    change = f"{k['change_percent']} %" if k["change_percent"] is not None else None
    c1.metric("This month (kWh)", show(k["this_month_kwh"]), change)
    c2.metric("Previous month (kWh)", show(k["previous_month_kwh"]))
    c3.metric("Average per day (kWh)", str(k["average_daily_kwh"]))
    c4.metric("Readings", f"{k['readings']:,}")
    view = st.radio("View", list(VIEWS), index=1, horizontal=True)
    rows = board.series(view)
    st.line_chart({"kWh": [float(b.sum) for b in rows]}, x_label=view)
    st.subheader("Monthly totals")
    st.dataframe([{"month": month_label(b), "kWh": show(b.sum), "readings": b.count} for b in board.monthly()])
    st.subheader("Validation findings")
    summary = mk.ValidationSummary.of(board.findings())
    st.write(f"{summary.total} findings: {summary.warning} warnings, {summary.error} errors, {summary.flagged} flagged")
    st.dataframe([{"time": f.timestamp, "rule": f.rule, "severity": f.severity, "message": f.message} for f in board.findings()])
    st.subheader("Monthly bills (flat tariff)")
    bills = board.bills()
    st.dataframe([{"month": m, "total": f"{b.currency} {b.total}", "lines": len(b.lines)} for m, b in bills])
    month = st.selectbox("Bill", [m for m, _ in bills], index=len(bills) - 1)
    st.table([line.to_dict() for line in dict(bills)[month].lines])


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--png", type=Path, help="write the chart to this PNG and print the figures as JSON")
    ap.add_argument("--data", type=Path, default=DATA)
    args = ap.parse_args(argv)
    board = load(args.data)
    if args.png:
        write_png(board, args.png)
    print(json.dumps(figures(board), indent=2))


def running_in_streamlit() -> bool:
    """True under `streamlit run` (or Streamlit's AppTest): a script run context exists."""
    if "streamlit" not in sys.modules:
        return False
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    return get_script_run_ctx(suppress_warning=True) is not None


if __name__ == "__main__":
    if running_in_streamlit():
        streamlit_page()
    else:
        main(sys.argv[1:])
