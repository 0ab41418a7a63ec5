"""The model IDs a config names in `model`, `small_model`, `agent.*.model` and `mode.*.model` (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

SECTIONS = ("agent", "mode")


@dataclass(frozen=True, slots=True)
class ModelRef:
    """One `provider/model` a config names; `key` says where (`model`, `agent.build.model`, …)."""

    key: str
    provider: str
    model: str

    @property
    def full(self) -> str:
        return f"{self.provider}/{self.model}"


def _split(value: object) -> tuple[str, str] | None:
    # OpenCode splits on the first '/': the model part keeps its own slashes (`router/qwen/qwen3`)
    if not isinstance(value, str) or "/" not in value:
        return None
    provider, model = value.split("/", 1)
    return (provider, model) if provider and model else None


def model_refs(config: object) -> list[ModelRef]:
    """Every model reference of one config, in file order of the keys it checks."""
    if not isinstance(config, Mapping):
        return []
    found: list[tuple[str, object]] = [(k, config.get(k)) for k in ("model", "small_model")]
    for section in SECTIONS:
        block = config.get(section)
        if isinstance(block, Mapping):
            found += [(f"{section}.{name}.model", entry.get("model"))
                      for name, entry in block.items() if isinstance(entry, Mapping)]
    out: list[ModelRef] = []
    for key, value in found:
        split = _split(value)
        if split is not None:
            out.append(ModelRef(key, *split))
    return out


def referenced(configs: Iterable[object], pid: str) -> frozenset[str]:
    """The model IDs of provider `pid` that any of `configs` names."""
    return frozenset(r.model for c in configs for r in model_refs(c) if r.provider == pid)


def referenced_by_provider(configs: Iterable[object]) -> dict[str, frozenset[str]]:
    """`referenced` for every provider at once: provider id -> the model IDs named for it."""
    out: dict[str, set[str]] = {}
    for c in configs:
        for r in model_refs(c):
            out.setdefault(r.provider, set()).add(r.model)
    return {pid: frozenset(ids) for pid, ids in out.items()}
