"""Shared fixtures for the meterkit Python tests (run on the installed wheel)."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
VECTORS = Path(os.environ.get("METERKIT_VECTORS", REPO / "tests" / "vectors"))


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)  # type: ignore[arg-type,misc]


@pytest.fixture
def repo() -> Path:
    return REPO
