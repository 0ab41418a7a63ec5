"""LiteLLM's `/model/info` as its proxy defines it: one model per `model_name`, over its deployments."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

from syncd.model import RemoteModel
from syncd.providers.normalize import as_bool, as_int, inputs_from, kind_from_id, kind_of, per_million

_MARKS = ("max_input_tokens", "max_output_tokens", "mode")
T = TypeVar("T")


def looks_like(provider_id: str, items: Sequence[Mapping[str, Any]]) -> bool:
    """A LiteLLM proxy: named so, or its `/v1/models` items carry LiteLLM's extra fields."""
    return "litellm" in provider_id.lower() or any(k in i for i in items for k in _MARKS)


def from_info(entry: Mapping[str, Any]) -> RemoteModel | None:
    """One deployment of `/model/info` (keyed by `model_name`, the ID `/v1/models` serves)."""
    name = entry.get("model_name")
    info = entry.get("model_info")
    if not isinstance(name, str) or not isinstance(info, Mapping):
        return None
    # `mode` is null for a deployment LiteLLM's cost map does not know: its ID may still say
    kind = kind_of(info.get("mode"))
    if kind is None:
        params = entry.get("litellm_params")
        upstream = params.get("model") if isinstance(params, Mapping) else None
        kind = kind_from_id(name) or (kind_from_id(upstream) if isinstance(upstream, str) else None)
    return RemoteModel(
        id=name,
        context=as_int(info.get("max_input_tokens")),
        output=as_int(info.get("max_output_tokens")) or as_int(info.get("max_tokens")),
        tool_call=as_bool(info.get("supports_function_calling")),
        reasoning=as_bool(info.get("supports_reasoning")),
        input_modalities=inputs_from(image=as_bool(info.get("supports_vision")),
                                     pdf=as_bool(info.get("supports_pdf_input")),
                                     audio=as_bool(info.get("supports_audio_input")),
                                     video=as_bool(info.get("supports_video_input"))),
        kind=kind,
        cost_in=per_million(info.get("input_cost_per_token")),
        cost_out=per_million(info.get("output_cost_per_token")),
        cache_read=per_million(info.get("cache_read_input_token_cost")),
        cache_write=per_million(info.get("cache_creation_input_token_cost")),
    )


def _known(values: Iterable[T | None]) -> list[T]:
    return [v for v in values if v is not None]


def _lowest(values: Iterable[int | None]) -> int | None:
    known = _known(values)
    return min(known) if known else None


def _highest(values: Iterable[float | None]) -> float | None:
    known = _known(values)
    return max(known) if known else None


def _all(values: Iterable[bool | None]) -> bool | None:
    """True only when every deployment that says anything says true: the router may pick any."""
    known = _known(values)
    return all(known) if known else None


def _common_inputs(values: Iterable[tuple[str, ...] | None]) -> tuple[str, ...] | None:
    known = _known(values)
    if not known:
        return None
    shared = set(known[0]).intersection(*known[1:])
    return tuple(m for m in known[0] if m in shared)


def combine(deployments: Sequence[RemoteModel]) -> RemoteModel:
    """One `model_name` over several deployments: the smallest limits and only the capabilities
    all of them have, since the router may send a request to any; the highest list price."""
    first = deployments[0]
    if len(deployments) == 1:
        return first

    def pick(field: str) -> list[Any]:
        return [getattr(d, field) for d in deployments]

    inputs = _common_inputs(pick("input_modalities"))
    return RemoteModel(
        id=first.id,
        context=_lowest(pick("context")), output=_lowest(pick("output")),
        tool_call=_all(pick("tool_call")), reasoning=_all(pick("reasoning")),
        input_modalities=inputs,
        kind=next(iter(_known(pick("kind"))), None),
        cost_in=_highest(pick("cost_in")), cost_out=_highest(pick("cost_out")),
        cache_read=_highest(pick("cache_read")), cache_write=_highest(pick("cache_write")),
    )


def by_model_name(entries: Iterable[object]) -> dict[str, RemoteModel]:
    """`/model/info` entries grouped by `model_name`, each group combined into one model."""
    groups: dict[str, list[RemoteModel]] = {}
    for entry in entries:
        model = from_info(entry) if isinstance(entry, Mapping) else None
        if model is not None:
            groups.setdefault(model.id, []).append(model)
    return {name: combine(group) for name, group in groups.items()}
