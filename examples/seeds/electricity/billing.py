"""Electricity billing on meterkit: field engineers' register readings (VEE: roll-over, typos,
implausible jumps, duplicates), consumption by local day, a shared pump meter split across the
flats (and revised with ``replace``), and one bill per flat and month under the society's tariff
(a slab tariff with the pump's share as its own line, or a flat rate with a standing charge).

    python examples/seeds/electricity/billing.py      prints the bills as JSON
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from zoneinfo import ZoneInfo

import meterkit
from meterkit import BillRequest, Engine, MeterReading, RollupSpec, SharedMeter, Tariff

from data import MONTHS, generate, local_midnight

TARIFFS = Path(__file__).resolve().parents[2] / "tariffs"


def pump_records(society, month: str, total):
    meter = SharedMeter("pump", "motor_kwh", [(f, 1) for f in society.flats], 1)
    return meter.split(society.tenant, total, local_midnight(month + "-01", society.time_zone))


def run(data: dict, engine: Engine | None = None) -> dict:
    engine = engine or Engine()
    by_tenant = {s.tenant: s for s in data["societies"]}
    for s in data["societies"]:
        engine.add_spec(RollupSpec("kwh", "month", s.time_zone, group_by=["subject"]))
    status: Counter[str] = Counter()
    for batch in (data["readings"], data["resent"]):
        for x in batch:
            opts = {"time_zone": by_tenant[x.tenant].time_zone}
            reading = MeterReading(x.meter, x.at, x.register, register_digits=x.digits)
            outcome = engine.record_reading(x.tenant, "kwh", reading, None, opts)
            duplicate = any(f["rule"] == "duplicate_reading" for f in outcome["findings"])
            status["duplicate" if duplicate else outcome["status"]] += 1
    replaced = 0
    for s in (s for s in data["societies"] if s.pump):
        engine.ingest([r for m, total in data["pump"].items() for r in pump_records(s, m, total)])
        replaced += engine.replace([r for m, total in data["pump_revised"].items() for r in pump_records(s, m, total)]).replaced
    usage = []
    for s in data["societies"]:
        rows = engine.query(meterkit.Query(s.tenant, "kwh", "month", s.time_zone, group_by=["subject"]))
        usage += [{"tenant": s.tenant, "flat": b.subject or b.group["subject"], "month": b.window_start.astimezone(ZoneInfo(s.time_zone)).strftime("%Y-%m"),
                   "kwh": b.sum} for b in rows]
    bills = []
    for s in data["societies"]:
        tariff = Tariff.from_toml((TARIFFS / s.tariff).read_text())
        for flat in s.flats:
            for month in MONTHS[:-1]:
                bill = engine.bill(tariff, BillRequest.for_month(s.tenant, flat, "kwh", month, s.time_zone)).to_dict()
                bills.append({"tenant": s.tenant, "flat": flat, "month": month, "currency": bill["currency"],
                              "lines": [(l["charge"], l["quantity"], l["rate"], l["amount"]) for l in bill["lines"]],
                              "subtotal": bill["subtotal"], "taxes": bill["taxes"], "total": bill["total"]})
    return {"readings": dict(status), "pump_replaced": replaced, "usage": usage, "bills": bills}


def page_data(result: dict) -> list[dict]:
    """The Streamlit page's table: per flat and month, the kWh and the bill's total."""
    totals = {(b["tenant"], b["flat"], b["month"]): (b["total"], b["currency"]) for b in result["bills"]}
    return [{**u, "bill": totals[(u["tenant"], u["flat"], u["month"])][0], "currency": totals[(u["tenant"], u["flat"], u["month"])][1]}
            for u in result["usage"] if (u["tenant"], u["flat"], u["month"]) in totals]


if __name__ == "__main__":
    print(json.dumps(run(generate()), indent=1, default=str))
