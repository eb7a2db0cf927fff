"""The stubs' enumerations are the core's: every ``Literal`` alias in ``_meterkit.pyi`` lists
exactly the values of the core enumeration ``enum_values()`` exports at run time (from the Rust
enums' ``ALL`` lists), and the stubs declare one exception class per core error code."""

from __future__ import annotations

import ast
from pathlib import Path

import meterkit as mk

STUB = Path(mk.__file__).parent / "_meterkit.pyi"

# Stub alias -> name of the core enumeration in enum_values().
ALIASES = {
    "_ErrorCode": "error_code",
    "_Quality": "quality",
    "_Severity": "severity",
    "_Action": "action",
    "_Rule": "rule",
}


def literal_aliases() -> dict[str, list[str]]:
    out = {}
    for node in ast.parse(STUB.read_text()).body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Subscript):
            target = node.targets[0]
            value = node.value
            if isinstance(target, ast.Name) and isinstance(value.value, ast.Name) and value.value.id == "Literal":
                elts = value.slice.elts if isinstance(value.slice, ast.Tuple) else [value.slice]
                out[target.id] = [str(e.value) for e in elts if isinstance(e, ast.Constant)]
    return out


def test_every_literal_alias_is_a_core_enumeration() -> None:
    values = mk.enum_values()
    aliases = literal_aliases()
    assert sorted(aliases) == sorted(ALIASES)
    for alias, name in ALIASES.items():
        assert aliases[alias] == values[name], alias
    # error_codes() is the same list.
    assert values["error_code"] == mk.error_codes()


def test_the_stubs_declare_one_exception_class_per_core_code() -> None:
    tree = ast.parse(STUB.read_text())
    classes = [
        n.name for n in tree.body if isinstance(n, ast.ClassDef) and any(isinstance(b, ast.Name) and b.id == "MeterkitError" for b in n.bases)
    ]
    codes = sorted(getattr(mk, c).code for c in classes if c != "InternalError")
    assert codes == sorted(mk.enum_values()["error_code"])
    kinds = mk.enum_values()["error_kind"]
    assert len(kinds) == len(codes) and all(k and k == k.lower() for k in kinds)


def test_errors_carry_the_whole_envelope() -> None:
    try:
        mk.Engine().retract("t", "missing")
    except mk.NotFoundError as e:
        envelope = (e.code, e.kind, e.message, e.record_id, e.field, e.line, e.retryable)
        assert envelope[:2] == ("E_NOT_FOUND", "not_found") and envelope[3:] == ("missing", None, None, False)
        assert e.kind in mk.enum_values()["error_kind"]
    else:
        raise AssertionError("retract of a missing record must raise")
