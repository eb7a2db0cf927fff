"""Issue 14 through the Python API: unknown keys refused by name, quotas on any window kept at
ingest, repeated batches answered as duplicates, per-source watermarks."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

import meterkit as mk

from conftest import utc

RECORD = {
    "id": "1",
    "tenant": "t",
    "subject": "s",
    "metric": "bytes",
    "quantity": "5",
    "timestamp": "2024-05-01T00:00:00Z",
}


def test_misspelt_keys_are_refused_naming_them() -> None:
    with pytest.raises(mk.ParseError, match="dimension"):
        mk.UsageRecord.from_dict({**RECORD, "dimension": {"carrier": "a"}})
    assert mk.UsageRecord.from_dict({**RECORD, "dimensions": {"carrier": "a"}}).dimensions == {"carrier": "a"}
    quota = {"id": "q", "tenant": "t", "metric": "bytes", "period": "day", "time_zone": "UTC", "limit": "1", "levels": ["100"]}
    with pytest.raises(mk.ParseError, match="subjet"):
        mk.Quota.from_dict({**quota, "subjet": "s"})
    with pytest.raises(mk.ParseError, match="groupBy"):
        mk.Query.from_dict({"tenant": "t", "metric": "m", "window": "day", "time_zone": "UTC", "groupBy": ["c"]})
    with pytest.raises(mk.ParseError, match="grup_by"):
        mk.RollupSpec.from_dict({"metric": "m", "window": "day", "time_zone": "UTC", "grup_by": ["c"]})


def test_daily_cap_fires_per_subject_per_day() -> None:
    events: list[mk.Event] = []
    engine = mk.Engine(notifier=events.append)
    engine.add_quota(mk.Quota("cap", "t", "bytes", "day", "UTC", 100, [80, 100]))
    rec = lambda i, day, q: mk.UsageRecord("t", str(i), "s", "bytes", q, utc(2024, 5, day, 12))  # noqa: E731
    engine.ingest([rec(1, 1, 50), rec(2, 2, 90)])
    engine.ingest([rec(3, 1, 30)])
    crossed = [(str(e.period_start), str(e.level), str(e.used)) for e in events if e.type == "threshold_crossed"]
    assert crossed == [("2024-05-02T00:00:00Z", "80", "90"), ("2024-05-01T00:00:00Z", "80", "80")]


def test_repeated_batch_and_source_watermark() -> None:
    engine = mk.Engine()
    batch = [
        mk.UsageRecord("api", f"r{i}", "portal", "requests", 1, utc(2024, 6, 1, 9, i % 60)) for i in range(100)
    ]
    assert engine.last_ingested_at("api", "hourly") is None
    assert engine.ingest_from("hourly", batch).accepted == 100
    again = engine.ingest_from("hourly", batch)
    assert (again.accepted, again.duplicates) == (0, 100)
    assert engine.last_ingested_at("api", "hourly") == utc(2024, 6, 1, 9, 59)
    engine.retract("api", "r7")
    assert engine.ingest(batch).accepted == 1
    with pytest.raises(mk.InvalidQuery) as e:
        engine.ingest_from("", batch)
    assert e.value.field == "source"


def test_replace_keeps_the_old_version_in_history() -> None:
    engine = mk.Engine()
    day = lambda q: mk.UsageRecord("org", "d1", "org-1", "msgs", q, utc(2024, 7, 1, 10))  # noqa: E731
    engine.ingest([day(10)])
    report = engine.replace([day(12), mk.UsageRecord("org", "d2", "org-1", "msgs", 1, utc(2024, 7, 1, 11))])
    assert (report.accepted, report.replaced, report.duplicates) == (1, 1, 0)
    assert [r.quantity for r in engine.history("org", "d1")] == [Decimal(10)]
    rows = engine.query(mk.Query("org", "msgs", "day", "UTC"))
    assert rows[0].sum == Decimal(13) and rows[0].count == 2
    with pytest.raises(mk.InvalidRecord):
        engine.replace([day(1), day(2)])


def test_tariff_from_dict_and_from_json_check_at_parse_time() -> None:
    doc = {"currency": "GBP", "charges": [{"id": "e", "type": "per_unit", "rate": "0.25"}]}
    t = mk.Tariff.from_dict(doc)
    t.check()  # a tariff given with top-level charges is valid
    assert t == mk.Tariff.from_json(json.dumps(doc))
    with pytest.raises(mk.TariffError) as e:
        mk.Tariff.from_dict({**doc, "currency": "pounds"})
    assert e.value.field == "currency"
    with pytest.raises(mk.TariffError):
        mk.Tariff.from_json(json.dumps({"currency": "GBP", "charges": []}))


def test_bucket_times_local_start_subject_group_and_an_account_bill() -> None:
    engine = mk.Engine()

    def req(i: str, subject: str, acct: str, q: str, at: str) -> mk.UsageRecord:
        return mk.UsageRecord.from_dict(
            {"id": i, "tenant": "t", "subject": subject, "metric": "bytes", "quantity": q, "timestamp": at,
             "dimensions": {"account": acct}}
        )  # fmt: skip

    engine.ingest(
        [
            req("1", "s1", "A", "40", "2024-12-31T18:30:00Z"),
            req("2", "s1", "A", "20", "2025-01-10T09:00:00.250Z"),
            req("3", "s2", "A", "50", "2025-01-04T00:00:00Z"),
            req("4", "s3", "B", "30", "2025-01-05T00:00:00Z"),
        ]
    )
    [s1, s2, s3] = engine.query(mk.Query("t", "bytes", "month", "Asia/Kolkata", group_by=["subject"]))
    assert s1.local_start.isoformat() == "2025-01-01T00:00:00+05:30"
    assert (s1.group["subject"], s1.subject, s2.group["subject"]) == ("s1", "s1", "s2")
    assert (s1.first_at, s1.last_at) == (utc(2024, 12, 31, 18, 30), utc(2025, 1, 10, 9, 0, 0, 250000))
    assert s3.first_at == s3.last_at == utc(2025, 1, 5)
    assert s1.to_dict()["last_at"] == "2025-01-10T09:00:00.250Z"
    # top_n: the argument order of every host, keywords allowed.
    q = mk.Query("t", "bytes", "month", "UTC", group_by=["subject"])
    assert [(b.group["subject"], b.sum) for b in engine.top_n(q, "sum", 1)] == [("s1", Decimal(60))]
    assert engine.top_n(q, by="count", n=1)[0].group["subject"] == "s1"
    # An account bill: 110 units rated together under 100 at 0.10, then 0.05.
    tariff = mk.Tariff.from_dict(
        {"currency": "USD", "charges": [{"id": "e", "type": "graduated",
                                         "tiers": [{"up_to": "100", "rate": "0.10"}, {"rate": "0.05"}]}]}
    )  # fmt: skip
    period = (utc(2024, 12, 1), utc(2025, 2, 1), "UTC")
    account = mk.BillRequest("t", None, "bytes", *period, filter={"account": "A"}, per_subject=True)
    bill = engine.bill(tariff, account)
    assert bill.total == Decimal("10.50")
    assert bill.per_subject == [
        {"subject": "s1", "quantity": Decimal(60), "records": 2},
        {"subject": "s2", "quantity": Decimal(50), "records": 1},
    ]
    pair = mk.BillRequest("t", None, "bytes", *period, subjects=["s1", "s2"])
    assert (pair.subjects, pair.subject, account.subjects) == (["s1", "s2"], None, [])
    assert engine.bill(tariff, pair).total == Decimal("10.50")
    assert engine.bill(tariff, mk.BillRequest("t", None, "bytes", *period)).total == Decimal("12.00")
    with pytest.raises(mk.InvalidQuery) as e:
        mk.BillRequest("t", "s1", "bytes", *period, subjects=["s2"])
    assert e.value.field == "subjects"


def test_to_pandas_names_the_missing_package(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    engine = mk.Engine()
    engine.ingest([mk.UsageRecord.from_dict(RECORD)])
    table = engine.query_arrow(mk.Query("t", "bytes", "day", "UTC"))
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(ModuleNotFoundError, match=r"to_pandas\(\) needs the 'pyarrow' package.*pip install pyarrow"):
        table.to_pandas()
    monkeypatch.setitem(sys.modules, "polars", None)
    with pytest.raises(ModuleNotFoundError, match="'polars'"):
        table.to_polars()


def test_local_instant() -> None:
    assert mk.local_instant("2025-01-01", "Asia/Kolkata") == utc(2024, 12, 31, 18, 30)
    assert mk.local_instant("2024-09-08", "America/Santiago") == utc(2024, 9, 8, 4)  # midnight skipped
    assert mk.local_instant("2024-03-10T12:30", "America/New_York") == utc(2024, 3, 10, 16, 30)
    with pytest.raises(mk.ParseError) as e:
        mk.local_instant("2024-11-03T01:30", "America/New_York")  # occurs twice
    assert e.value.field == "local"


def test_tenant_spec_remove_spec_unplanned_query_and_pooled_quota() -> None:
    events: list[mk.Event] = []
    engine = mk.Engine(notifier=events.append)
    rec = lambda i, s, q: mk.UsageRecord("t", str(i), s, "bytes", q, utc(2024, 5, 1, 10))  # noqa: E731
    engine.ingest([rec(1, "s1", 5), rec(2, "s2", 7)])
    query = mk.Query("t", "bytes", "cycle:15", "Asia/Kolkata", group_by=["subject"])
    unplanned = [(b.subject, str(b.sum)) for b in engine.query(query)]
    assert unplanned == [("s1", "5"), ("s2", "7")]
    assert engine.specs() == [], "an unplanned query adds no spec"
    spec = mk.RollupSpec("bytes", "cycle:15", "Asia/Kolkata", group_by=["subject"], tenant="t")
    assert spec.tenant == "t" and mk.Engine.spec_for_query(query).tenant is None
    assert engine.add_spec(spec) == 0
    assert [(b.subject, str(b.sum)) for b in engine.query(query)] == unplanned
    assert engine.remove_spec(spec) == 0
    with pytest.raises(mk.MeterkitError) as e:
        engine.remove_spec(spec)
    assert e.value.code == "E_NOT_FOUND"
    quota = mk.Quota("acct", "t", "bytes", "month", "UTC", 20, [50], subjects=["s1", "s2"], pooled=True)
    assert (quota.subjects, quota.pooled, quota.filter) == (["s1", "s2"], True, {})
    engine.add_quota(quota)
    engine.ingest([rec(3, "s3", 100)])
    engine.ingest([rec(4, "s1", 1)])
    crossed = [(e.quota, e.subject, str(e.used)) for e in events if e.type == "threshold_crossed"]
    assert crossed == [("acct", "", "13")]
