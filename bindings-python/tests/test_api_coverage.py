"""Every public name, and every method and property the stubs declare, is used by some test: the
suite cannot silently miss a part of the API as it grows."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import meterkit as mk

HERE = Path(__file__).parent
STUB = Path(mk.__file__).parent / "_meterkit.pyi"


def sources() -> str:
    return "\n".join(p.read_text() for p in HERE.glob("test_*.py") if p.name != Path(__file__).name)


def test_every_public_name_is_tested() -> None:
    text = sources()
    missing = [n for n in mk.__all__ if not n.startswith("_") and n != "__version__" and f"mk.{n}" not in text]
    assert missing == []
    assert re.fullmatch(r"\d+\.\d+\.\d+", mk.__version__)


def test_every_stub_member_is_tested() -> None:
    text = sources()
    tree = ast.parse(STUB.read_text())
    missing = []
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
        for item in cls.body:
            if isinstance(item, ast.FunctionDef) and not item.name.startswith("__"):
                if not re.search(rf"\.{item.name}\b", text):
                    missing.append(f"{cls.name}.{item.name}")
    assert missing == []
