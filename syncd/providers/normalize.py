"""Pure helpers that turn provider payloads into safe RemoteModels: value coercion, ID checks, kind rules."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from typing import Any

from syncd.model import ModelKind, RemoteModel, Skipped
from syncd.text import MAX_ID_LEN, escape, id_problem

__all__ = ["MAX_ID_LEN", "unsafe_reason", "printable"]
# Words of an ID that name a non-chat model (DESIGN §4.2): the ID is split at - _ : / . and each
# word is compared whole, so `whisper-large-v3` and `gpt-4o-mini-tts` match but `image` inside
# `imagery` does not. Substrings that span words are listed separately.
_NON_CHAT_WORDS: dict[str, ModelKind] = {
    "embed": ModelKind.EMBEDDING, "embedding": ModelKind.EMBEDDING,
    "rerank": ModelKind.OTHER, "reranker": ModelKind.OTHER,
    "whisper": ModelKind.OTHER, "transcribe": ModelKind.OTHER, "tts": ModelKind.OTHER,
    "image": ModelKind.OTHER, "imagen": ModelKind.OTHER, "veo": ModelKind.OTHER,
    "sora": ModelKind.OTHER, "moderation": ModelKind.OTHER, "realtime": ModelKind.OTHER,
}
_NON_CHAT_PARTS: tuple[tuple[str, ModelKind], ...] = (
    ("embed", ModelKind.EMBEDDING),  # nomic-embed-text, text-embedding-3-small, bge-m3-embed
    ("dall-e", ModelKind.OTHER),
    ("davinci-002", ModelKind.OTHER), ("babbage-002", ModelKind.OTHER),  # completion-only
    ("gpt-3.5-turbo-instruct", ModelKind.OTHER),
)
_WORD_SPLIT = re.compile(r"[-_:/.\s]+")
# Kind vocabularies upstreams use (LiteLLM `mode`, Together `type`, LM Studio `type`). A word not
# listed here is unknown (None), never "other": a new vocabulary must not hide a model.
_VOCABULARY: dict[str, ModelKind] = {
    "chat": ModelKind.CHAT, "responses": ModelKind.CHAT, "llm": ModelKind.CHAT, "vlm": ModelKind.CHAT,
    "embedding": ModelKind.EMBEDDING, "embeddings": ModelKind.EMBEDDING,
    # LiteLLM `mode: completion` and Together `language`/`code` are completion-only models
    "completion": ModelKind.OTHER, "language": ModelKind.OTHER, "code": ModelKind.OTHER,
    "image": ModelKind.OTHER, "image_generation": ModelKind.OTHER, "image_edit": ModelKind.OTHER,
    "audio": ModelKind.OTHER, "audio_speech": ModelKind.OTHER, "tts": ModelKind.OTHER,
    "audio_transcription": ModelKind.OTHER, "transcribe": ModelKind.OTHER, "stt": ModelKind.OTHER,
    "video": ModelKind.OTHER, "video_generation": ModelKind.OTHER, "moderation": ModelKind.OTHER,
    "moderations": ModelKind.OTHER, "rerank": ModelKind.OTHER, "realtime": ModelKind.OTHER,
    "ocr": ModelKind.OTHER, "search": ModelKind.OTHER,
}
_MODALITIES = ("text", "audio", "image", "video", "pdf")


def unsafe_reason(value: str) -> str | None:
    """Why an ID or name must not reach a config file (DESIGN §4.6), or None when it is safe."""
    return id_problem(value)


def printable(value: str, limit: int = 80) -> str:
    """A short, escaped form of a refused ID, fit for a one-line report."""
    return escape(value, limit)


def kind_from_id(model_id: str) -> ModelKind | None:
    """The kind an ID names (`nomic-embed-text` → embedding, `gpt-image-1` → other), else None."""
    lowered = model_id.lower()
    for part, kind in _NON_CHAT_PARTS:
        if part in lowered:
            return kind
    for word in _WORD_SPLIT.split(lowered):
        if word in _NON_CHAT_WORDS:
            return _NON_CHAT_WORDS[word]
    return None


def kind_of(value: object) -> ModelKind | None:
    """An upstream kind word (`mode`, `type`) → a kind; a word syncd does not know is unknown."""
    if not isinstance(value, str) or not value:
        return None
    return _VOCABULARY.get(value.strip().lower())


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


def supported(node: object) -> bool | None:
    """Anthropic's `{"supported": true}` leaves (and a plain boolean) → a bool; else unknown."""
    if isinstance(node, Mapping):
        node = node.get("supported")
    return as_bool(node)


def hint(value: bool | None) -> bool | None:
    """A tool flag of a server that accepts tools for every model: true stays, false is unknown."""
    return True if value else None


def price(value: object) -> float | None:
    """A non-negative, finite price (number or numeric string); anything else is unknown."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value) if isinstance(value, (int, float, str)) else None
    except ValueError:
        return None
    if number is None or number < 0 or number != number or number == float("inf"):
        return None
    return number


def per_million(value: object) -> float | None:
    """USD per token (number or string, as OpenRouter and LiteLLM send it) → USD per million tokens."""
    number = price(value)
    return None if number is None else round(number * 1_000_000, 6)


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


def inputs_from(*, image: bool | None = None, pdf: bool | None = None, audio: bool | None = None,
                video: bool | None = None) -> tuple[str, ...] | None:
    """Input modalities from capability flags; None when no flag is known at all."""
    flags = {"image": image, "pdf": pdf, "audio": audio, "video": video}
    if all(v is None for v in flags.values()):
        return None
    return ("text", *(m for m in _MODALITIES if flags.get(m)))


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


def unpriced(model: RemoteModel) -> RemoteModel:
    """`model` without any price: what this machine serves costs nothing per token."""
    return dataclasses.replace(model, cost_in=None, cost_out=None, cache_read=None, cache_write=None)


def settle_context(model: RemoteModel, remembered: int | None) -> tuple[RemoteModel, int | None]:
    """One stable `context` out of what a local server said (DESIGN §4.2), and the value to remember.

    A stable served value (Modelfile num_ctx, llama.cpp's `-c`) wins; else what a loaded instance
    serves now, else what one served when last seen loaded, so that unloading a model never
    rewrites the config; else the model's maximum, flagged as possibly more than is served.
    """
    live = model.live_context
    chosen: int | None
    if model.context is not None:
        chosen, served = model.context, model.context_served
    elif live is not None or remembered is not None:
        chosen, served = live or remembered, True
    elif model.max_context is not None:
        chosen, served = model.max_context, False
    else:
        chosen, served = None, model.context_served
    settled = dataclasses.replace(model, context=chosen, context_served=served, live_context=None)
    return settled, live


def settle_kind(model: RemoteModel) -> RemoteModel:
    """Apply the ID rules to a model whose kind nothing stated (run after catalog enrichment)."""
    if model.kind is not None:
        return model
    kind = kind_from_id(model.id)
    return dataclasses.replace(model, kind=kind) if kind else model
