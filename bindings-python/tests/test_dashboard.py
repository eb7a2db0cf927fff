"""The dashboard example runs headless (--png) and shows the right monthly totals, checked against
an independent sum of the CSV with the standard library."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections import defaultdict
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from conftest import REPO

EXAMPLE = REPO / "examples" / "python" / "dashboard.py"
DATA = REPO / "examples" / "data" / "uk-smart-meter-hourly.csv"


def expected_monthly() -> dict[str, Decimal]:
    london = ZoneInfo("Europe/London")
    out: dict[str, Decimal] = defaultdict(Decimal)
    with DATA.open(newline="") as f:
        for row in csv.DictReader(f):
            local = datetime.fromisoformat(row["start"]).astimezone(london)
            out[local.strftime("%Y-%m")] += Decimal(row["value"])
    return dict(out)


def test_dashboard_headless(tmp_path: Path) -> None:
    png = tmp_path / "chart.png"
    proc = subprocess.run(
        [sys.executable, str(EXAMPLE), "--png", str(png)], capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, proc.stderr
    figures = json.loads(proc.stdout)
    monthly = {m: Decimal(v) for m, v in figures["monthly"].items()}
    expected = expected_monthly()
    assert monthly == expected
    # A month by hand: November 2022 (no DST change), exact to the last digit of the CSV.
    assert monthly["2022-11"] == expected["2022-11"] and monthly["2022-11"] > 0
    kpis = figures["kpis"]
    assert Decimal(kpis["this_month_kwh"]) == expected["2022-12"]
    assert Decimal(kpis["previous_month_kwh"]) == expected["2022-11"]
    assert Decimal(kpis["total_kwh"]) == sum(expected.values())
    assert kpis["readings"] == 23508
    assert figures["views"]["24 h"] == 24
    # Monthly bills under examples/tariffs/flat.toml, worked out here line by line: standing
    # 0.5335/day, energy 0.2862/kWh, VAT 5 % of the two, each line rounded half-up to pence.
    cent = Decimal("0.01")
    for month, days in [("2021-02", 28), ("2022-11", 30), ("2020-10", 31)]:
        standing = (Decimal("0.5335") * days).quantize(cent, ROUND_HALF_UP)
        energy = (Decimal("0.2862") * expected[month]).quantize(cent, ROUND_HALF_UP)
        vat = ((standing + energy) * Decimal("0.05")).quantize(cent, ROUND_HALF_UP)
        assert figures["bills"][month] == str(standing + energy + vat), month
    assert len(figures["bills"]) == len(expected)
    # Validation ran on the way in: the findings are counted and each was flagged, none rejected.
    v = figures["validation"]
    assert v["total"] == sum(sum(c.values()) for c in v["by_rule"].values()) > 0
    assert v["rejected"] == 0 and v["flagged"] == v["total"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_dashboard_streamlit_page() -> None:
    """The Streamlit page itself, through Streamlit's AppTest (runs where streamlit is installed;
    scripts/test-python keeps CI's dependencies small and relies on the --png test above)."""
    pytest = __import__("pytest")
    testing = pytest.importorskip("streamlit.testing.v1")
    at = testing.AppTest.from_file(str(EXAMPLE), default_timeout=120)
    at.run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Household electricity"]
    metrics = {m.label: m.value for m in at.metric}
    expected = expected_monthly()
    assert Decimal(metrics["Previous month (kWh)"]) == expected["2022-11"].quantize(Decimal("0.001"))
    assert metrics["Readings"] == "23,508"
    at.radio[0].set_value("monthly").run()
    assert not at.exception
