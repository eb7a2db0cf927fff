"""Every number the electricity example prints (and its Streamlit page's table), against an
exact computation made here with ``decimal`` from the generated readings: monthly kWh from the
register at the month's first midnight (mod 10^5 for the roll-over), the pump's share, and each
bill line by the tariff's published rules (docs/tariffs.md: each line rounded half-up to the cent,
taxes on the subtotal)."""

from __future__ import annotations

import calendar
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

import pytest

from billing import page_data, run
from data import MONTHS, generate

CENT = Decimal("0.01")


def money(x: Decimal) -> str:
    return str(x.quantize(CENT, rounding=ROUND_HALF_UP))


@pytest.fixture(scope="module")
def case():
    data = generate()
    return data, run(data)


def expected_kwh(data) -> dict:
    out = {}
    for s in data["societies"]:
        for flat in s.flats:
            regs = [x for x in data["readings"] if x.meter == flat and x.at.astimezone(ZoneInfo(s.time_zone)).day == 1]
            for a, b in zip(regs, regs[1:]):
                out[(s.tenant, flat, MONTHS[regs.index(a)])] = Decimal(int(b.register - a.register) % 100_000)  # int %: the roll-over wraps to positive
    return out


def expected_lines(society, kwh: Decimal, pump_share: Decimal, month: str) -> tuple[list[str], str, str, str]:
    if society.tariff == "slab.toml":
        lines = [Decimal(60)]
        for lo, hi, rate in ((0, 100, "3.50"), (100, 200, "4.75"), (200, 400, "6.50"), (400, None, "8.00")):
            q = min(kwh, Decimal(hi)) - lo if hi is not None else kwh - lo
            if q > 0:
                lines.append(q * Decimal(rate))
        lines.append(pump_share * Decimal("6.50"))
        percent = Decimal(6)
    else:
        y, m = (int(v) for v in month.split("-"))
        lines = [calendar.monthrange(y, m)[1] * Decimal("0.5335"), kwh * Decimal("0.2862")]
        percent = Decimal(5)
    rounded = [Decimal(money(x)) for x in lines]
    subtotal = sum(rounded, Decimal(0))
    tax = Decimal(money(subtotal * percent / 100))
    return [money(x) for x in rounded] + [money(tax)], money(subtotal), money(tax), money(subtotal + tax)


def test_readings_and_revisions(case):
    data, out = case
    typos = 0
    for s in data["societies"]:
        for flat in s.flats:
            regs = [x.register for x in data["readings"] if x.meter == flat]
            # lower than the last good reading, and not a roll-over of a register near 99,999
            good = regs[0]
            for r in regs[1:]:
                if r < good and good < 90_000:
                    typos += 1
                else:
                    good = r
    assert typos == 1
    assert out["readings"] == {"accepted": len(data["readings"]) - typos, "rejected": typos, "duplicate": len(data["resent"])}
    assert out["pump_replaced"] == len([f for s in data["societies"] if s.pump for f in s.flats])


def test_monthly_kwh(case):
    data, out = case
    want = expected_kwh(data)
    got = {(u["tenant"], u["flat"], u["month"]): Decimal(u["kwh"]) for u in out["usage"]}
    assert got == want
    assert any(v for (t, f, m), v in want.items() if f == "gp-202")  # the roll-over month is in


def test_bills(case):
    data, out = case
    kwh = expected_kwh(data)
    pump = {**data["pump"], **data["pump_revised"]}
    assert len(out["bills"]) == sum(len(s.flats) for s in data["societies"]) * (len(MONTHS) - 1)
    for b in out["bills"]:
        s = next(x for x in data["societies"] if x.tenant == b["tenant"])
        share = pump[b["month"]] / len(s.flats) if s.pump else Decimal(0)
        lines, subtotal, taxes, total = expected_lines(s, kwh[(b["tenant"], b["flat"], b["month"])], share, b["month"])
        got = [amount for (_, quantity, _, amount) in b["lines"] if Decimal(quantity) != 0 or Decimal(amount) != 0]
        assert (got, b["subtotal"], b["taxes"], b["total"]) == (lines, subtotal, taxes, total), (b["flat"], b["month"])


def test_page_data(case):
    data, out = case
    kwh = expected_kwh(data)
    rows = page_data(out)
    assert {(r["tenant"], r["flat"], r["month"]): Decimal(r["kwh"]) for r in rows} == kwh
    totals = {(b["tenant"], b["flat"], b["month"]): b["total"] for b in out["bills"]}
    pump = {**data["pump"], **data["pump_revised"]}
    for r in rows:
        s = next(x for x in data["societies"] if x.tenant == r["tenant"])
        share = pump[r["month"]] / len(s.flats) if s.pump else Decimal(0)
        assert r["bill"] == expected_lines(s, kwh[(r["tenant"], r["flat"], r["month"])], share, r["month"])[3] == totals[(r["tenant"], r["flat"], r["month"])]
