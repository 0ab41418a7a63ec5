"""Reading back JSON that syncd wrote itself: typed getters that raise ValueError naming the field."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TypeVar

_V = TypeVar("_V")
_T = TypeVar("_T")


def frozen(d: Mapping[str, _V] | None = None) -> Mapping[str, _V]:
    """A read-only copy (frozen dataclasses hold mappings this way)."""
    return MappingProxyType(dict(d or {}))


def want(value: object, typ: type[_T], what: str) -> _T:
    if not isinstance(value, typ) or (isinstance(value, bool) and typ is int):
        raise ValueError(f"{what} has the wrong type")
    return value


def opt_str(value: object, what: str) -> str | None:
    return None if value is None else want(value, str, what)


def str_list(value: object, what: str) -> list[str]:
    return [want(v, str, what) for v in want(value, list, what)]
