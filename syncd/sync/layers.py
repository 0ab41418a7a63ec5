"""How a target and its overlay combine: merged views, moves of syncd's entries, routed edits (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from syncd.jsonc import REMOVE
from syncd.sync.plan import Change

SCHEMA_URL = "https://opencode.ai/config.json"


@dataclass(frozen=True)
class Layers:
    """The parsed files of one target in OpenCode's merge order (the target first) and their roles.

    `home` is the file syncd keeps its entries in; `movable` are the other files it may remove its
    own entries from once home holds them (the ones it can write).
    """

    docs: tuple[Any, ...]
    home: int
    movable: frozenset[int]

    def with_home(self, doc: Any) -> Layers:
        docs = list(self.docs)
        docs[self.home] = doc
        return Layers(tuple(docs), self.home, self.movable)

    @property
    def others(self) -> list[int]:
        return [i for i in range(len(self.docs)) if i != self.home]


def provider_of(doc: Any, pid: str) -> Mapping[str, Any]:
    providers = doc.get("provider") if isinstance(doc, Mapping) else None
    block = providers.get(pid) if isinstance(providers, Mapping) else None
    return block if isinstance(block, Mapping) else {}


def models_in(doc: Any, pid: str) -> Mapping[str, Any]:
    models = provider_of(doc, pid).get("models")
    return models if isinstance(models, Mapping) else {}


def merged_block(layers: Layers, pid: str, block: Mapping[str, Any]) -> Mapping[str, Any]:
    """The target's provider block with the models OpenCode would see from every file (each ID at
    its first position, the entry of the home file when two hold it) and the whitelist that wins."""
    if "models" in block and not isinstance(block["models"], Mapping):
        return block  # the planner reports it and leaves it alone
    models: dict[str, Any] = {}
    found = False
    for i, doc in enumerate(layers.docs):
        part = provider_of(doc, pid)
        found = found or isinstance(part.get("models"), Mapping)
        for mid, entry in models_in(doc, pid).items():
            if mid not in models or i == layers.home:
                models[mid] = entry
    out = {k: v for k, v in block.items() if k not in ("models", "whitelist")}
    if found:
        out["models"] = models
    lists = [provider_of(doc, pid)["whitelist"] for doc in layers.docs
             if "whitelist" in provider_of(doc, pid)]
    if lists:
        out["whitelist"] = lists[-1]  # arrays are replaced: the last file wins
    return out


def where(layers: Layers, pid: str, mid: str) -> int | None:
    """The file an entry lives in: home when it holds it, else the first other file that does."""
    if mid in models_in(layers.docs[layers.home], pid):
        return layers.home
    return next((i for i in layers.others if mid in models_in(layers.docs[i], pid)), None)


def move_in(layers: Layers, pid: str, managed: Iterable[str],
            whitelist: Sequence[str] | None) -> list[Change]:
    """Edits of the home file that copy syncd's entries (and its whitelist) from the files it may
    empty; entries in files it cannot write stay where they are (see `stuck`)."""
    home = layers.docs[layers.home]
    changes: list[Change] = []
    for mid in managed:
        if mid in models_in(home, pid):
            continue
        source = next((i for i in sorted(layers.movable) if mid in models_in(layers.docs[i], pid)), None)
        if source is not None:
            changes.append((("provider", pid, "models", mid), models_in(layers.docs[source], pid)[mid]))
    if whitelist is not None and "whitelist" not in provider_of(home, pid) and any(
            provider_of(layers.docs[i], pid).get("whitelist") == list(whitelist) for i in layers.movable):
        changes.append((("provider", pid, "whitelist"), list(whitelist)))
    return changes


def stuck(layers: Layers, pid: str, managed: Iterable[str]) -> list[str]:
    """syncd's entries held only by a file it cannot write: from now on they are the user's."""
    return [mid for mid in managed
            if (i := where(layers, pid, mid)) is not None and i != layers.home and i not in layers.movable]


def route(layers: Layers, pid: str, changes: Iterable[Change]) -> tuple[list[Change], list[str]]:
    """A provider plan's edits as edits of the home file, and the IDs whose entry another file holds
    (removals the user's own file would need: `remove: "all"` never edits those)."""
    kept: list[Change] = []
    blocked: list[str] = []
    for path, value in changes:
        if len(path) >= 2 and path[0] == "models":
            at = where(layers, pid, str(path[1]))
            if at is not None and at != layers.home:
                blocked.append(str(path[1]))
                continue
        kept.append((("provider", pid, *path), value))
    return kept, blocked


def move_out(layers: Layers, index: int, pid: str, managed: Iterable[str],
             whitelist: Sequence[str] | None, *, drop_empty: bool) -> list[Change]:
    """Edits of file `index` that remove syncd's entries (and whitelist) the home file now holds."""
    home = layers.docs[layers.home]
    ids = [mid for mid in managed if mid in models_in(home, pid)]
    with_list = whitelist is not None and "whitelist" in provider_of(home, pid)
    return removals(layers.docs[index], pid, ids, whitelist if with_list else None, drop_empty=drop_empty)


def removals(doc: Any, pid: str, ids: Iterable[str], whitelist: Sequence[str] | None, *,
             drop_empty: bool) -> list[Change]:
    """Edits removing `ids` (and the whitelist when it equals `whitelist`) from `doc`'s provider
    block; with `drop_empty` a block left with nothing but an empty `models` goes too."""
    block = provider_of(doc, pid)
    models = models_in(doc, pid)
    gone = [mid for mid in ids if mid in models]
    wl = whitelist is not None and block.get("whitelist") == list(whitelist)
    if not gone and not wl:
        return []
    rest = set(block) - {"models"} - ({"whitelist"} if wl else set())
    if drop_empty and not rest and len(gone) == len(models):
        return [(("provider", pid), REMOVE)]
    out: list[Change] = [(("provider", pid, "models", mid), REMOVE) for mid in gone]
    if wl:
        out.append((("provider", pid, "whitelist"), REMOVE))
    return out


def skeleton(target_name: str, newline: str = "\n") -> str:
    """The text of a new overlay file: what it is in its first line, and OpenCode's `$schema`."""
    lines = [
        f"// Maintained by syncd: the models it found for the providers defined in {target_name}.",
        "// OpenCode merges this file after that one. Edit or delete entries freely: syncd keeps",
        "// your edits and does not add back what you delete (`syncd restore` undoes a deletion).",
        "{",
        f'  "$schema": "{SCHEMA_URL}"',
        "}",
        "",
    ]
    return newline.join(lines)
