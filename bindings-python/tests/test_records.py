"""UsageRecord, RollupSpec, Query: native types in, canonical JSON out."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

import meterkit as mk

from conftest import utc


def rec(**kw: object) -> mk.UsageRecord:
    args: dict[str, object] = dict(
        tenant="acme", id="r1", subject="sim-1", metric="bytes", quantity=Decimal("1.50"), timestamp=utc(2024, 3, 1, 9)
    )
    args.update(kw)
    return mk.UsageRecord(**args)  # type: ignore[arg-type]


def test_fields_are_native_types() -> None:
    r = rec(end=utc(2024, 3, 1, 10), dimensions={"carrier": "vodafone"})
    assert r.tenant == "acme" and r.id == "r1" and r.subject == "sim-1" and r.metric == "bytes"
    assert r.quantity == Decimal("1.5") and isinstance(r.quantity, Decimal)
    assert r.timestamp == utc(2024, 3, 1, 9) and r.timestamp.tzinfo is not None
    assert r.end == utc(2024, 3, 1, 10)
    assert r.dimensions == {"carrier": "vodafone"}


def test_float_goes_through_shortest_repr() -> None:
    assert rec(quantity=0.1).quantity == Decimal("0.1")
    assert rec(quantity=0.1).quantity.as_tuple() == Decimal("0.1").as_tuple()
    assert rec(quantity=1e-7).quantity == Decimal("1E-7")
    assert mk.decimal_from_float(0.1) == Decimal("0.1")


def test_int_and_decimal_and_string_are_exact() -> None:
    assert rec(quantity=10**15).quantity == Decimal(10**15)
    assert rec(quantity=Decimal("-0.000001")).quantity == Decimal("-0.000001")
    assert rec(quantity="2.5E3").quantity == Decimal("2500")
    assert mk.parse_decimal("1e-3") == Decimal("0.001")


@pytest.mark.parametrize("bad", [True, float("nan"), float("inf"), "abc", [1], None])
def test_bad_quantities_are_refused(bad: object) -> None:
    with pytest.raises(mk.MeterkitError) as e:
        rec(quantity=bad)
    assert e.value.field == "quantity"


def test_naive_datetime_is_refused_clearly() -> None:
    with pytest.raises(mk.InvalidRecord) as e:
        rec(timestamp=datetime(2024, 3, 1, 9))
    assert e.value.code == "E_INVALID_RECORD"
    assert e.value.field == "timestamp"
    assert "naive" in str(e.value)
    with pytest.raises(mk.InvalidRecord):
        rec(end=datetime(2024, 3, 1, 9))
    with pytest.raises(mk.InvalidRecord):
        rec(timestamp="2024-03-01T09:00:00Z")


def test_any_tzinfo_is_converted_to_the_utc_instant() -> None:
    london = datetime(2024, 7, 1, 10, 30, tzinfo=ZoneInfo("Europe/London"))
    assert rec(timestamp=london).timestamp == utc(2024, 7, 1, 9, 30)
    plus2 = datetime(2024, 1, 1, 2, tzinfo=timezone(timedelta(hours=2)))
    assert rec(timestamp=plus2).to_dict()["timestamp"] == "2024-01-01T00:00:00Z"
    micro = utc(2024, 1, 1).replace(microsecond=500000)
    assert rec(timestamp=micro).to_dict()["timestamp"] == "2024-01-01T00:00:00.500Z"


def test_to_dict_is_the_canonical_json_shape() -> None:
    r = rec(dimensions={"carrier": "o2"})
    assert r.to_dict() == {
        "id": "r1",
        "tenant": "acme",
        "subject": "sim-1",
        "metric": "bytes",
        "quantity": "1.5",
        "timestamp": "2024-03-01T09:00:00Z",
        "dimensions": {"carrier": "o2"},
    }
    assert json.loads(r.to_json()) == r.to_dict()


def test_round_trips_and_equality() -> None:
    r = rec(dimensions={"a": "b"}, end=utc(2024, 3, 1, 9, 30))
    assert mk.UsageRecord.from_dict(r.to_dict()) == r
    assert mk.UsageRecord.from_json(r.to_json()) == r
    assert rec(quantity=Decimal("1.5")) == rec(quantity=Decimal("1.50"))
    assert rec() != rec(id="r2")
    assert len({rec(), rec(), rec(id="r2")}) == 2
    assert rec() != "not a record"


def test_from_dict_errors_are_parse_errors() -> None:
    with pytest.raises(mk.ParseError):
        mk.UsageRecord.from_dict({"id": "x"})
    with pytest.raises(mk.ParseError) as e:
        mk.UsageRecord.from_json('{"id": "x",\n "tenant": 1}')
    assert e.value.line == 2


def test_records_are_immutable() -> None:
    r = rec()
    with pytest.raises(AttributeError):
        r.quantity = Decimal(1)  # type: ignore[misc]


def test_repr_is_useful() -> None:
    text = repr(rec(dimensions={"carrier": "ee"}))
    assert "UsageRecord(" in text and "Decimal('1.5')" in text and "2024-03-01T09:00:00Z" in text and "carrier" in text


def test_rollup_spec() -> None:
    s = mk.RollupSpec("bytes", "day", "Europe/London", group_by=["carrier"], unique=["subject"])
    assert (s.metric, s.window, s.time_zone, s.group_by, s.unique) == (
        "bytes",
        "day",
        "Europe/London",
        ["carrier"],
        ["subject"],
    )
    assert s.to_dict() == {
        "metric": "bytes",
        "window": "day",
        "time_zone": "Europe/London",
        "group_by": ["carrier"],
        "aggregations": [{"unique_count": "subject"}],
    }
    assert mk.RollupSpec.from_dict(s.to_dict()) == s
    assert json.loads(s.to_json()) == s.to_dict()
    assert "RollupSpec(" in repr(s)
    assert hash(s) == hash(mk.RollupSpec.from_dict(s.to_dict()))
    assert mk.RollupSpec("kwh", "minutes:15", "UTC").window == "minutes:15"
    assert mk.RollupSpec("kwh", "cycle:15", "UTC").window == "cycle:15"


def test_rollup_spec_errors() -> None:
    with pytest.raises(mk.InvalidWindow) as e:
        mk.RollupSpec("kwh", "fortnight", "UTC")
    assert e.value.field == "window"
    with pytest.raises(mk.InvalidWindow):
        mk.RollupSpec("kwh", "minutes:7", "UTC")
    with pytest.raises(mk.InvalidTimeZone) as tz:
        mk.RollupSpec("kwh", "day", "Mars/Olympus")
    assert tz.value.field == "time_zone"
    with pytest.raises(mk.InvalidQuery):
        mk.RollupSpec("kwh", "day", "UTC", group_by="carrier")


def test_query() -> None:
    q = mk.Query(
        "acme",
        "kwh",
        "hour",
        "America/New_York",
        subject="m1",
        filters={"phase": "a"},
        group_by=["carrier"],
        unique=["subject"],
        from_=utc(2024, 1, 1),
        to=utc(2024, 1, 2),
        fill="zero",
    )
    assert (q.tenant, q.metric, q.window, q.time_zone, q.subject) == ("acme", "kwh", "hour", "America/New_York", "m1")
    assert q.filters == {"phase": "a"} and q.group_by == ["carrier"] and q.unique == ["subject"]
    assert q.from_ == utc(2024, 1, 1) and q.to == utc(2024, 1, 2) and q.fill == "zero"
    d = q.to_dict()
    assert d["from"] == "2024-01-01T00:00:00Z" and d["to"] == "2024-01-02T00:00:00Z" and d["fill"] == "zero"
    assert mk.Query.from_dict(d) == q
    assert json.loads(q.to_json()) == d
    assert hash(q) == hash(mk.Query.from_dict(d))
    assert "Query(" in repr(q)
    plain = mk.Query("acme", "kwh", "day", "UTC")
    assert plain.from_ is None and plain.to is None and plain.fill == "none" and plain.subject is None


def test_query_errors() -> None:
    with pytest.raises(mk.InvalidQuery) as e:
        mk.Query("a", "kwh", "day", "UTC", fill="some")
    assert e.value.field == "fill"
    with pytest.raises(mk.InvalidQuery) as naive:
        mk.Query("a", "kwh", "day", "UTC", from_=datetime(2024, 1, 1))
    assert naive.value.field == "from"
