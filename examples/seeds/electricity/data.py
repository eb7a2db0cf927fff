"""Generated electricity data for the example: two housing societies (tenants, each in its
zone), their flats' register readings taken by field engineers at local midnight on the 1st of
each month, January to June 2024 (London's DST change on 31 March), plus a mid-month visit on
the 15th in some months; one 5-digit register rolls over; one reading has a dropped digit. Green Park's water pump is a shared
meter whose monthly total is split across its flats; March's total is revised later. The March
readings are sent twice (a field app's retry)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

MONTHS = ["2024-01", "2024-02", "2024-03", "2024-04", "2024-05", "2024-06"]


@dataclass(frozen=True)
class Society:
    tenant: str
    time_zone: str
    tariff: str  # a file in examples/tariffs
    flats: tuple[str, ...]
    pump: bool


SOCIETIES = (
    Society("green-park", "Asia/Kolkata", "slab.toml", ("gp-101", "gp-102", "gp-201", "gp-202"), True),
    Society("thames-court", "Europe/London", "flat.toml", ("tc-1", "tc-2", "tc-3"), False),
)


def local_midnight(day: str, tz: str) -> datetime:
    y, m, d = (int(x) for x in day.split("-"))
    return datetime(y, m, d, tzinfo=ZoneInfo(tz)).astimezone(timezone.utc)


@dataclass(frozen=True)
class Reading:
    tenant: str
    meter: str
    at: datetime
    register: Decimal
    digits: int


def generate(seed: int = 5) -> dict:
    r = random.Random(seed)
    readings: list[Reading] = []
    for s in SOCIETIES:
        for flat in s.flats:
            register = 99_700 if flat == "gp-202" else r.randint(1_000, 40_000)  # gp-202 rolls over
            for i, month in enumerate(MONTHS):
                readings.append(Reading(s.tenant, flat, local_midnight(month + "-01", s.time_zone), Decimal(register % 100_000), 5))
                if i == len(MONTHS) - 1:
                    break
                use = r.randint(180, 420)
                if r.random() < 0.5:  # a mid-month visit on the 15th, about half the month's use so far
                    mid = register + use * 14 // 30
                    readings.append(Reading(s.tenant, flat, local_midnight(month + "-15", s.time_zone), Decimal(mid % 100_000), 5))
                register += use
    # A field engineer drops a digit on 20 April (VEE rejects it; the month's consumption is unchanged).
    last = max((x for x in readings if x.meter == "tc-2" and x.at < local_midnight("2024-04-20", "Europe/London")), key=lambda x: x.at)
    typo = Decimal(int(last.register) // 10 + 3)
    readings.append(Reading("thames-court", "tc-2", local_midnight("2024-04-20", "Europe/London"), typo, 5))
    readings.sort(key=lambda x: (x.at, x.tenant, x.meter))
    pump = {m: Decimal(r.randint(150, 300)) * Decimal("0.4") for m in MONTHS[:-1]}  # kWh, divisible by 4 flats at 0.1
    return {
        "societies": SOCIETIES,
        "readings": readings,
        "resent": [x for x in readings if x.at.strftime("%Y-%m") == "2024-03"],
        "pump": pump,
        "pump_revised": {"2024-03": pump["2024-03"] + Decimal("12.4")},
    }
