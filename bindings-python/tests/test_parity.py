"""docs/bindings.md lists every capability and its name in each host: every name in the Python
column resolves on the ``meterkit`` module (a function, a class, or a class member)."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest

import meterkit as mk

from conftest import REPO, utc

# Gaps the Python column may still declare (`gap: ...`); this number may only go down.
MAX_GAPS = 0


def column(markdown: str, name: str) -> list[tuple[str, str, list[str]]]:
    """(capability, kind, names) of every row of the capability table's column `name`."""
    lines = [line for line in markdown.splitlines() if line.startswith("| ")]
    header = next(i for i, line in enumerate(lines) if line.startswith("| capability |"))
    at = [c.strip() for c in lines[header].split("|")].index(name)
    rows = []
    for line in lines[header + 1 :]:
        if line.startswith("|---"):
            continue
        cells = [c.strip() for c in line.split("|")]
        cell = cells[at]
        kind = "na" if cell.startswith("—") else "gap" if cell.startswith("gap") else "pending" if cell.startswith("pending:") else "names"
        rows.append((cells[1], kind, re.findall(r"`([^`]+)`", cell)))
    return rows


def exported(name: str) -> bool:
    """Whether `name` (`fn`, `Class`, `Class.member`, `Class.prefix*`) resolves on the module."""
    owner, _, member = name.partition(".")
    if not hasattr(mk, owner):
        return False
    if not member:
        return True
    cls = getattr(mk, owner)
    if member.endswith("*"):
        return any(m.startswith(member[:-1]) for m in dir(cls))
    return hasattr(cls, member)


def test_every_capability_has_its_python_export() -> None:
    rows = column((REPO / "docs" / "bindings.md").read_text(), "Python")
    assert len(rows) >= 35
    missing = [f"{cap}: {n}" for cap, kind, names in rows if kind == "names" for n in names if not exported(n)]
    assert missing == []
    assert all(names for _, kind, names in rows if kind == "names")
    gaps = [cap for cap, kind, _ in rows if kind == "gap"]
    assert len(gaps) <= MAX_GAPS, gaps


def test_the_parity_check_finds_a_missing_name() -> None:
    assert exported("Engine.ingest") and exported("Tariff.from_toml") and exported("parse_decimal")
    assert not exported("Engine.no_such_method") and not exported("no_such_function")


def test_window_span_is_the_core_window() -> None:
    # 2024-03-31 is the day London springs forward: 23 hours.
    assert mk.window_span("day", utc(2024, 3, 31, 12), "Europe/London") == (utc(2024, 3, 31), utc(2024, 3, 31, 23))
    assert mk.window_span("minutes:15", utc(2024, 1, 1, 10, 7), "UTC") == (utc(2024, 1, 1, 10), utc(2024, 1, 1, 10, 15))
    with pytest.raises(mk.InvalidWindow):
        mk.window_span("fortnight", utc(2024, 1, 1), "UTC")
    with pytest.raises(mk.InvalidTimeZone):
        mk.window_span("day", utc(2024, 1, 1), "Mars/Olympus")


def test_quantity_total_prices_a_quantity_alone() -> None:
    tariff = mk.Tariff.from_toml(
        'currency = "GBP"\n[[charges]]\nid = "energy"\ntype = "graduated"\nunit = "kWh"\n'
        'tiers = [{ up_to = "100", rate = "0.20" }, { rate = "0.30" }]\n'
    )
    # 150 kWh: 100 x 0.20 + 50 x 0.30 = 35.
    assert tariff.quantity_total("150") == Decimal("35")
    assert tariff.quantity_total(Decimal("50")) == Decimal("10")
    with pytest.raises(mk.ParseError):
        tariff.quantity_total("lots")
