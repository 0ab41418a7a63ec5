"""Pure helpers that turn provider payloads into safe RemoteModels: value coercion, ID checks, kind rules."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from syncd.model import ModelKind, RemoteModel, Skipped
from syncd.text import MAX_ID_LEN, escape, id_problem

__all__ = ["MAX_ID_LEN", "unsafe_reason", "printable"]
# Substrings of an ID that name a non-chat model (DESIGN §4.2), in the order they are checked.
_NON_CHAT: tuple[tuple[str, ModelKind], ...] = (
    ("embed", ModelKind.EMBEDDING),
    ("rerank", ModelKind.OTHER),
    ("whisper", ModelKind.OTHER),
    ("tts", ModelKind.OTHER),
    ("dall-e", ModelKind.OTHER),
    ("moderation", ModelKind.OTHER),
)
_MODALITIES = ("text", "audio", "image", "video", "pdf")


def unsafe_reason(value: str) -> str | None:
    """Why an ID or name must not reach a config file (DESIGN §4.6), or None when it is safe."""
    return id_problem(value)


def printable(value: str, limit: int = 80) -> str:
    """A short, escaped form of a refused ID, fit for a one-line report."""
    return escape(value, limit)


def kind_from_id(model_id: str) -> ModelKind | None:
    """The kind an ID names (`nomic-embed-text` → embedding, `whisper-1` → other), else None."""
    lowered = model_id.lower()
    for word, kind in _NON_CHAT:
        if word in lowered:
            return kind
    return None


def as_int(value: object) -> int | None:
    """A positive int from an int, integral float or digit string; anything else is unknown."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    if isinstance(value, float) and value.is_integer():
        return int(value) if value > 0 else None
    if isinstance(value, str) and value.strip().isdigit():
        try:
            number = int(value.strip())
        except ValueError:  # a digit int() cannot read ("²"), or past Python's digit limit
            return None
        return number if number > 0 else None
    return None


def as_bool(value: object) -> bool | None:
    return value if isinstance(value, bool) else None


def as_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def per_million(value: object) -> float | None:
    """USD per token (number or string, as OpenRouter and LiteLLM send it) → USD per million tokens."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value) if isinstance(value, (int, float, str)) else None
    except ValueError:
        return None
    if number is None or number < 0 or number != number or number == float("inf"):
        return None
    return round(number * 1_000_000, 6)


def in_list(items: object, *wanted: str) -> bool | None:
    """Whether a capability list names any of `wanted`; unknown when there is no list."""
    if not isinstance(items, list):
        return None
    return any(item in wanted for item in items)


def modalities(items: object) -> tuple[str, ...] | None:
    """The modalities OpenCode accepts (`text, audio, image, video, pdf`) out of a remote list."""
    if not isinstance(items, list):
        return None
    found = tuple(m for m in _MODALITIES if m in items or (m == "pdf" and "file" in items))
    return found or None


def dig(data: object, *path: str) -> Any:
    """`data[a][b]…`, or None when any step is missing or not an object."""
    for key in path:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def merge(first: RemoteModel, second: RemoteModel) -> RemoteModel:
    """`first` with its unknown fields taken from `second` (first wins)."""
    updates = {
        f.name: getattr(second, f.name)
        for f in dataclasses.fields(first)
        if getattr(first, f.name) is None and getattr(second, f.name) is not None
    }
    return dataclasses.replace(first, **updates) if updates else first


def screen(models: Iterable[RemoteModel]) -> tuple[list[RemoteModel], list[Skipped]]:
    """Drop unsafe IDs and names (with a reason), fold duplicate IDs, name kinds from IDs."""
    safe: dict[str, RemoteModel] = {}
    refused: list[Skipped] = []
    for model in models:
        reason = unsafe_reason(model.id)
        if reason is None and model.name is not None:
            name_reason = unsafe_reason(model.name)
            reason = f"name {name_reason}" if name_reason else None
        if reason is not None:
            refused.append(Skipped(id=printable(model.id), reason=f"suspicious ID: {reason}"))
            continue
        if model.id in safe:
            safe[model.id] = merge(safe[model.id], model)
        else:
            safe[model.id] = model
    return list(safe.values()), refused


def settle_kind(model: RemoteModel) -> RemoteModel:
    """Apply the ID rules to a model whose kind nothing stated (run after catalog enrichment)."""
    if model.kind is not None:
        return model
    kind = kind_from_id(model.id)
    return dataclasses.replace(model, kind=kind) if kind else model
