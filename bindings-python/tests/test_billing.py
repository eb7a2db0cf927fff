"""Tariffs, bills, invoices, quotas, shared meters: the core's billing through the Python API."""

from __future__ import annotations

import gc
import json
import os
import subprocess
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

import meterkit as mk

from conftest import REPO, utc

FLAT = (REPO / "examples" / "tariffs" / "flat.toml").read_text()

URDB = {
    "label": "example-flat",
    "name": "Example flat rate",
    "utility": "Example Utility",
    "sector": "Residential",
    "energyratestructure": [[{"rate": 0.12, "unit": "kWh"}]],
    "energyweekdayschedule": [[0] * 24] * 12,
    "energyweekendschedule": [[0] * 24] * 12,
    "fixedchargefirstmeter": 10,
    "fixedchargeunits": "$/month",
}


def usage(engine: mk.Engine, n: int = 30, q: str = "10") -> None:
    engine.ingest(
        [mk.UsageRecord("acme", f"d{d}", "home", "kwh", Decimal(q), utc(2024, 2, 1 + d % 29, 12)) for d in range(n)]
    )


def feb() -> mk.BillRequest:
    return mk.BillRequest("acme", "home", "kwh", utc(2024, 2, 1), utc(2024, 3, 1), "Europe/London")


def test_tariff_constructors_and_properties() -> None:
    t = mk.Tariff.from_toml(FLAT)
    assert t.currency == "GBP" and t.name is not None and "Flat rate" in t.name
    assert t.minor_units() == 2
    assert t.metrics("kwh") == ["kwh"]
    t.check()
    assert mk.Tariff.from_json(json.dumps(t.to_dict())) == t
    assert mk.Tariff.from_dict(t.to_dict()) == t
    assert mk.Tariff.from_any(FLAT) == t and mk.Tariff.from_any(t.to_json()) == t
    assert "Tariff(" in repr(t) and "GBP" in repr(t)
    urdb = mk.Tariff.from_urdb_json(json.dumps(URDB))
    assert urdb.currency == "USD"
    assert mk.Tariff.from_any(json.dumps(URDB)) == urdb


def test_urdb_options_notes_and_compare() -> None:
    daily = {**URDB, "fixedchargefirstmeter": 0.5, "fixedchargeunits": "$/day"}
    actual = mk.Tariff.from_urdb_json(json.dumps(daily))
    pysam = mk.Tariff.from_urdb_json(json.dumps(daily), day_count="pysam", line_decimals=6)
    assert actual.notes == ["sector: Residential"]
    records = [mk.UsageRecord("acme", f"h{d}", "home", "kwh", Decimal("10"), utc(2024, 2, 1 + d, 12)) for d in range(29)]
    request = mk.BillRequest("acme", "home", "kwh", utc(2024, 1, 1), utc(2024, 3, 1), "UTC")
    ranked = mk.Tariff.compare([("actual", actual), ("pysam", pysam)], request, records)
    # January: no usage; 31 x 0.50 = 15.50 vs 0.5 x 365 / 12 = 15.21. February: 290 kWh x 0.12 =
    # 34.80 + 29 x 0.50 = 14.50 → 49.30, vs 34.80 + 15.21 = 50.01.
    assert [c["tariff"] for c in ranked] == ["actual", "pysam"]  # cheapest first
    assert ranked[0] == {
        "tariff": "actual",
        "total": Decimal("64.80"),
        "periods": [{"period": "2024-01", "total": Decimal("15.50")}, {"period": "2024-02", "total": Decimal("49.30")}],
        "error": None,
    }
    assert ranked[1]["total"] == Decimal("65.22")
    with pytest.raises(mk.InvalidQuery) as e:
        mk.Tariff.from_urdb_json(json.dumps(daily), day_count="weekly")
    assert e.value.field == "day_count"
    bad = mk.Tariff.from_toml(FLAT)  # GBP flat tariff, no version issue: priced too
    assert mk.Tariff.compare([("flat", bad)], request, records)[0]["error"] is None


def test_tariff_errors_name_the_field_or_line() -> None:
    with pytest.raises(mk.TariffError) as e:
        mk.Tariff.from_toml('currency = "GBP"\n[[charges]]\nid = "x"\ntype = "graduated"\nunit = "kWh"\ntiers = []\n')
    assert e.value.code == "E_TARIFF" and e.value.field == "versions[0].charges[0].tiers"
    with pytest.raises(mk.TariffError) as cur:
        mk.Tariff.from_toml('currency = "XXX"\n[[charges]]\nid = "a"\ntype = "per_unit"\nrate = "1"\nunit = "kWh"\n')
    assert cur.value.field == "currency"
    with pytest.raises(mk.ParseError) as p:
        mk.Tariff.from_toml('currency = "GBP"\nnot toml at all =\n')
    assert p.value.line == 2
    with pytest.raises(mk.TariffError):
        mk.Tariff.from_urdb_json(json.dumps({**URDB, "sellrate": 1}))


def test_engine_bill_equals_standalone_bill() -> None:
    engine = mk.Engine()
    usage(engine)
    tariff = mk.Tariff.from_toml(FLAT)
    bill = engine.bill(tariff, feb())
    records = engine.records("acme", "kwh", utc(2024, 2, 1), utc(2024, 3, 1))
    assert tariff.bill(feb(), records) == bill
    # 29 days x 0.5335 = 15.4715 -> 15.47; 300 kWh x 0.2862 = 85.86; VAT 5 % of 101.33 = 5.0665 -> 5.07
    assert [(line.charge, line.amount) for line in bill.lines] == [
        ("standing", Decimal("15.47")),
        ("energy", Decimal("85.86")),
        ("vat", Decimal("5.07")),
    ]
    assert (bill.subtotal, bill.taxes, bill.total) == (Decimal("101.33"), Decimal("5.07"), Decimal("106.40"))
    assert str(bill.total) == "106.40"  # the minor-unit digits are kept
    energy = bill.lines[1]
    assert (energy.quantity, energy.unit, energy.rate, energy.tier, energy.tou_period) == (
        Decimal(300),
        "kWh",
        Decimal("0.2862"),
        None,
        None,
    )
    assert energy.description == "Electricity" and "BillLine(" in repr(energy)
    assert mk.BillLine.from_dict(energy.to_dict()) == energy
    assert json.loads(energy.to_json()) == energy.to_dict()
    assert (bill.tenant, bill.subject, bill.currency, bill.time_zone) == ("acme", "home", "GBP", "Europe/London")
    assert bill.period_start == utc(2024, 2, 1) and bill.period_end == utc(2024, 3, 1)
    assert bill.to_dict()["total"] == "106.40"
    assert mk.Bill.from_dict(bill.to_dict()) == bill and mk.Bill.from_json(bill.to_json()) == bill
    assert json.loads(bill.to_json(indent=False)) == bill.to_dict() and "\n" not in bill.to_json(indent=False)
    rows = bill.table_rows()
    assert rows[0][0] == "standing" and rows[-1][1:2] == ["total"] and rows[-1][5] == "106.40"
    assert "Bill(" in repr(bill) and "106.40" in repr(bill)


def test_bill_request() -> None:
    r = feb()
    assert (r.tenant, r.subject, r.metric, r.time_zone) == ("acme", "home", "kwh", "Europe/London")
    assert r.period_start == utc(2024, 2, 1) and r.period_end == utc(2024, 3, 1)
    assert mk.BillRequest.from_dict(r.to_dict()) == r and json.loads(r.to_json()) == r.to_dict()
    july = mk.BillRequest.for_month("acme", "home", "kwh", "2024-07", "Europe/London")
    assert (july.period_start, july.period_end) == (utc(2024, 6, 30, 23), utc(2024, 7, 31, 23))
    assert mk.month_period("2024-07", "Europe/London") == (utc(2024, 6, 30, 23), utc(2024, 7, 31, 23))
    assert "BillRequest(" in repr(r)
    with pytest.raises(mk.MeterkitError):
        mk.month_period("2024-13", "UTC")


def find_cli() -> Path:
    env = os.environ.get("METERKIT_CLI")
    if env:
        return Path(env)
    for profile in ("debug", "release"):
        p = REPO / "target" / profile / "meterkit"
        if p.exists():
            return p
    pytest.fail("the meterkit CLI is not built: run `cargo build -p meterkit-cli` or set METERKIT_CLI")


def test_bill_to_json_is_byte_identical_to_the_cli(tmp_path: Path) -> None:
    db = tmp_path / "usage.db"
    engine = mk.Engine.open(db)
    usage(engine, q="7.125")
    tariff_path = REPO / "examples" / "tariffs" / "tou.toml"
    tariff = mk.Tariff.from_toml(tariff_path.read_text())
    bill = engine.bill(tariff, feb())
    del engine
    gc.collect()
    out = subprocess.run(
        [
            str(find_cli()), "--db", str(db), "--tenant", "acme", "bill", "--tariff", str(tariff_path),
            "--subject", "home", "--metric", "kwh", "--period", "2024-02", "--tz", "Europe/London", "--output", "json",
        ],
        capture_output=True, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr.decode()
    assert out.stdout == (bill.to_json() + "\n").encode()


def test_invoice_lifecycle() -> None:
    events: list[mk.Event] = []
    engine = mk.Engine(notifier=events.append)
    usage(engine)
    bill = engine.bill(mk.Tariff.from_toml(FLAT), feb())
    draft = mk.Invoice("inv-1", bill, 14)
    assert (draft.id, draft.status, draft.payment_terms_days, draft.issued_at, draft.due_at) == (
        "inv-1",
        "draft",
        14,
        None,
        None,
    )
    assert draft.bill == bill
    issued = engine.issue_invoice(draft, utc(2024, 3, 1, 9))
    assert issued.status == "issued" and issued.due_at == utc(2024, 3, 15, 9)
    assert draft.status == "draft"  # immutable
    assert events[-1].type == "bill_issued" and events[-1].invoice == "inv-1" and events[-1].total == "106.40"
    assert engine.invoices("acme") == [issued]
    with pytest.raises(mk.ConflictError):
        engine.issue_invoice(draft, utc(2024, 3, 1, 9))
    assert [i.id for i in engine.reminders_due("acme", utc(2024, 3, 12, 12), 3)] == ["inv-1"]
    assert engine.reminders_due("acme", utc(2024, 3, 5), 3) == []
    assert [i.id for i in mk.reminders_due([issued], utc(2024, 3, 13), 3)] == ["inv-1"]
    assert issued.reminder_due(utc(2024, 3, 13), 3) and not issued.reminder_due(utc(2024, 3, 1), 3)
    overdue = engine.mark_overdue("acme", utc(2024, 3, 16))
    assert [i.status for i in overdue] == ["overdue"] and events[-1].type == "invoice_overdue"
    paid = engine.pay_invoice("acme", "inv-1", utc(2024, 3, 20))
    assert paid.status == "paid" and paid.paid_at == utc(2024, 3, 20)
    with pytest.raises(mk.InvalidTransition) as e:
        engine.void_invoice("acme", "inv-1", utc(2024, 3, 21))
    assert e.value.code == "E_INVALID_TRANSITION"
    with pytest.raises(mk.NotFoundError):
        engine.pay_invoice("acme", "nope", utc(2024, 3, 21))
    # Standalone transitions.
    v = draft.void(utc(2024, 3, 2))
    assert v.status == "void" and v.voided_at == utc(2024, 3, 2)
    with pytest.raises(mk.InvalidTransition):
        v.pay(utc(2024, 3, 3))
    i2 = draft.issue(utc(2024, 3, 1))
    assert i2.mark_overdue(utc(2024, 3, 2)).status == "issued"
    assert i2.mark_overdue(utc(2024, 3, 30)).status == "overdue"
    assert i2.pay(utc(2024, 3, 5)).status == "paid"
    second = mk.Invoice("inv-2", bill, 30)
    engine.issue_invoice(second, utc(2024, 4, 1))
    voided = engine.void_invoice("acme", "inv-2", utc(2024, 4, 2))
    assert voided.status == "void"
    assert mk.Invoice.from_dict(paid.to_dict()) == paid and json.loads(paid.to_json()) == paid.to_dict()
    assert "Invoice(" in repr(paid) and "paid" in repr(paid)


def test_quota_threshold_events() -> None:
    events: list[mk.Event] = []
    engine = mk.Engine(notifier=events.append)
    quota = mk.Quota("plan", "acme", "kwh", "month", "UTC", 100, [50, Decimal(100)])
    assert (quota.id, quota.tenant, quota.metric, quota.period, quota.time_zone) == ("plan", "acme", "kwh", "month", "UTC")
    assert quota.limit == Decimal(100) and quota.levels == [Decimal(50), Decimal(100)]
    assert quota.subject is None and quota.tariff is None
    assert quota.levels_reached(Decimal(60)) == [Decimal(50)]
    assert quota.period_of(utc(2024, 2, 10)) == (utc(2024, 2, 1), utc(2024, 3, 1))
    assert mk.Quota.from_dict(quota.to_dict()) == quota and json.loads(quota.to_json()) == quota.to_dict()
    assert "Quota(" in repr(quota)
    engine.add_quota(quota)
    usage(engine, n=6)  # 60 kWh: crosses 50 %
    crossed = [e for e in events if e.type == "threshold_crossed"]
    assert len(crossed) == 1 and crossed[0].quota == "plan" and crossed[0].subject == "home"
    usage(engine, n=6)  # replay: nothing new
    assert len([e for e in events if e.type == "threshold_crossed"]) == 1
    budget = mk.Quota("budget", "acme", "kwh", "month", "UTC", 50, [100], subject="home", tariff=mk.Tariff.from_toml(FLAT))
    assert budget.subject == "home" and budget.tariff is not None and budget.tariff.currency == "GBP"
    assert mk.Quota("daily", "acme", "kwh", "day", "UTC", 10, [80]).period == "day"  # any window
    with pytest.raises(mk.InvalidWindow) as e:
        mk.Quota("q", "acme", "kwh", "minutes:7", "UTC", 10, [80])
    assert e.value.field == "period"


def test_shared_meter_and_allocate() -> None:
    assert mk.allocate(100, [1, 1, 1], 2) == [Decimal("33.34"), Decimal("33.33"), Decimal("33.33")]
    assert sum(mk.allocate(Decimal("90.5"), [Decimal("1.5"), 2, 0.5], 1)) == Decimal("90.5")
    with pytest.raises(mk.InvalidQuery):
        mk.allocate(1, [0, 0], 2)
    meter = mk.SharedMeter("pump", "motor_kwh", [("flat-1", 1), ("flat-2", 1), ("flat-3", 2)], 2)
    assert (meter.meter, meter.metric, meter.scale) == ("pump", "motor_kwh", 2)
    assert meter.shares == [("flat-1", Decimal(1)), ("flat-2", Decimal(1)), ("flat-3", Decimal(2))]
    recs = meter.split("acme", Decimal("90.5"), utc(2024, 2, 1))
    assert [r.quantity for r in recs] == [Decimal("22.63"), Decimal("22.62"), Decimal("45.25")]
    assert recs[0].dimensions == {"allocated_from": "pump"} and recs[0].metric == "motor_kwh"
    assert mk.SharedMeter.from_dict(meter.to_dict()) == meter and json.loads(meter.to_json()) == meter.to_dict()
    assert "SharedMeter(" in repr(meter)


def test_billing_releases_the_gil_and_threads_agree() -> None:
    import threading

    engine = mk.Engine()
    usage(engine)
    tariff = mk.Tariff.from_toml(FLAT)
    bills: list[mk.Bill] = []
    threads = [threading.Thread(target=lambda: bills.append(engine.bill(tariff, feb()))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(bills) == 4 and all(b == bills[0] for b in bills)
    assert bills[0].period_end - bills[0].period_start == timedelta(days=29)


def _year_2021() -> list[mk.UsageRecord]:
    """The real household's 8760 hourly kWh of 2021 (examples/data, the PySAM oracle's load)."""
    import csv
    from datetime import datetime

    with open(REPO / "examples" / "data" / "uk-smart-meter-hourly.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["start"].startswith("2021")]
    assert len(rows) == 8760
    return [
        mk.UsageRecord("acme", f"h{i}", "home", "kwh", Decimal(r["value"]), datetime.fromisoformat(r["start"]))
        for i, r in enumerate(rows)
    ]


def test_prepared_load_prices_as_compare_and_bill() -> None:
    real = (REPO / "tests" / "data" / "urdb" / "urdb-539f6a23ec4f024411ec8beb-south-central-ppd-lp1.json").read_text()
    urdb = mk.Tariff.from_urdb_json(real)
    flat = mk.Tariff.from_toml(FLAT)
    records = _year_2021()
    request = mk.BillRequest("acme", "home", "kwh", utc(2021, 1, 1), utc(2022, 1, 1), "America/Chicago")
    load = mk.PreparedLoad(request, iter(records))  # any iterable, as Tariff.compare
    # The UTC year in Chicago's local months: 2020-12 (6 hours), 2021-01 … 2021-12 (cut).
    assert len(load) == 13 and "months=13" in repr(load)
    assert load.month_request(0).period_start == utc(2021, 1, 1)
    assert load.month_request(0).period_end == mk.local_instant("2021-01-01", "America/Chicago")
    assert load.month_request(12).period_end == utc(2022, 1, 1)
    with pytest.raises(IndexError):
        load.month_request(13)
    tariffs = [("urdb", urdb), ("flat", flat)]
    ranked = load.compare(tariffs)
    assert ranked == mk.Tariff.compare(tariffs, request, records)
    assert {c["tariff"] for c in ranked} == {"urdb", "flat"} and all(c["error"] is None for c in ranked)
    for name, tariff in tariffs:
        bills = load.bills(tariff)
        assert all(isinstance(b, mk.Bill) for b in bills) and len(bills) == 13
        # Month by month, the bills of Tariff.bill on the month's request.
        assert bills == [tariff.bill(load.month_request(i), records) for i in range(13)], name
        row = next(c for c in ranked if c["tariff"] == name)
        assert [p["total"] for p in row["periods"]] == [b.total for b in bills]
        assert row["total"] == sum((b.total for b in bills), Decimal(0)) and row["total"] > 0
    # The load keeps its records: the caller's list may change afterwards.
    records.clear()
    assert load.compare(tariffs) == ranked


def test_prepared_load_errors() -> None:
    records = [mk.UsageRecord("acme", "r", "home", "kwh", Decimal("1"), utc(2024, 1, 5))]
    with pytest.raises(mk.InvalidQuery):
        mk.PreparedLoad(mk.BillRequest("acme", "home", "kwh", utc(1900, 1, 1), utc(2024, 1, 1), "UTC"), records)
    with pytest.raises(TypeError):
        mk.PreparedLoad(feb(), [1, 2])  # type: ignore[list-item]
    load = mk.PreparedLoad(feb(), records)
    assert load.compare([("flat", mk.Tariff.from_toml(FLAT))])[0]["error"] is None
