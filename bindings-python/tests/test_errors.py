"""The exception tree: one class per error kind, stable codes, structured attributes, no panic."""

from __future__ import annotations

import pytest

import meterkit as mk
from meterkit import _meterkit

CLASSES = {
    "E_INVALID_RECORD": mk.InvalidRecord,
    "E_CONFLICT": mk.ConflictError,
    "E_PARSE": mk.ParseError,
    "E_INVALID_WINDOW": mk.InvalidWindow,
    "E_INVALID_TIME_ZONE": mk.InvalidTimeZone,
    "E_INVALID_QUERY": mk.InvalidQuery,
    "E_OVERFLOW": mk.DecimalOverflowError,
    "E_TARIFF": mk.TariffError,
    "E_VALIDATION": mk.ValidationError,
    "E_INVALID_TRANSITION": mk.InvalidTransition,
    "E_NOT_FOUND": mk.NotFoundError,
    "E_STORE": mk.StoreError,
}


def test_every_core_code_has_its_own_class() -> None:
    assert sorted(mk.error_codes()) == sorted(CLASSES)
    assert len(set(CLASSES.values())) == len(CLASSES)


@pytest.mark.parametrize("code,cls", sorted(CLASSES.items()))
def test_class_hierarchy_and_code(code: str, cls: type[mk.MeterkitError]) -> None:
    assert issubclass(cls, mk.MeterkitError)
    assert issubclass(cls, Exception)
    assert cls.code == code
    assert cls.__module__ == "meterkit"


def test_base_and_internal_classes() -> None:
    assert issubclass(mk.MeterkitError, Exception)
    assert issubclass(mk.InternalError, mk.MeterkitError)
    assert mk.InternalError.code == "E_INTERNAL"


def test_structured_attributes() -> None:
    engine = mk.Engine()
    with pytest.raises(mk.NotFoundError) as e:
        engine.retract("acme", "missing-1")
    err = e.value
    assert err.code == "E_NOT_FOUND" and err.kind == "not_found"
    assert err.record_id == "missing-1"
    assert err.field is None and err.line is None
    assert "missing-1" in err.message and str(err) == err.message


def test_a_rust_panic_becomes_an_exception() -> None:
    with pytest.raises(mk.InternalError) as e:
        _meterkit._panic_for_tests()
    assert e.value.code == "E_INTERNAL"
    assert "deliberate panic" in str(e.value)
    # The module still works afterwards.
    assert mk.Engine().specs() == []


def test_store_error_from_sqlite(tmp_path: object) -> None:
    with pytest.raises(mk.StoreError) as e:
        mk.Engine.open("/nonexistent-dir/for/sure/usage.db")
    assert e.value.code == "E_STORE"


def test_overflow_is_its_own_error() -> None:
    from decimal import Decimal

    from conftest import utc

    engine = mk.Engine()
    engine.add_spec(mk.RollupSpec("n", "day", "UTC"))
    big = Decimal("79228162514264337593543950335")
    engine.ingest([mk.UsageRecord("t", "a", "s", "n", big, utc(2024, 1, 1))])
    # A record that would overflow its bucket is rejected alone; the rest of its batch is stored.
    report = engine.ingest(
        [mk.UsageRecord("t", "b", "s", "n", big, utc(2024, 1, 1, 1)), mk.UsageRecord("t", "c", "s", "n", big, utc(2024, 1, 2))]
    )
    assert report.accepted == 1
    assert [(r.id, r.kind, r.code) for r in report.rejected] == [("b", "overflow", "E_OVERFLOW")]
    assert [b.count for b in engine.query(mk.Query("t", "n", "day", "UTC"))] == [1, 1]
    # A month of both days overflows: that tenant's query raises, naming the record.
    with pytest.raises(mk.DecimalOverflowError) as e:
        engine.query(mk.Query("t", "n", "month", "UTC"))
    assert e.value.code == "E_OVERFLOW"
    assert e.value.record_id == "c"
