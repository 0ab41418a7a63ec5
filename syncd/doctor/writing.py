"""Doctor's check of where syncd writes each target (in place or an overlay) and which file has its models."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from syncd import jsonc
from syncd.doctor.checks import Check, Status, TargetInfo, ok, one_line
from syncd.errors import SyncdError
from syncd.paths import OPENCODE_GLOBAL_NAMES
from syncd.providers.blocks import custom_providers
from syncd.settings import Settings
from syncd.sync.layers import models_in
from syncd.sync.overlay import Layout, layout_for, unwritable
from syncd.sync.records import State
from syncd.sync.store import read_target

NAME = "write"
_FIX_NEITHER = ('make the file writable, or name a writable overlay in the settings: targets: '
                '{"<target>": {overlay: "<file>"}} (see README, "Nix and home-manager")')


def _real(path: Path) -> str:
    return os.path.realpath(path)


def layouts(infos: Sequence[TargetInfo], settings: Settings, state: State | None) -> dict[Path, Layout]:
    return {i.path: layout_for(i.path, settings, state.target(i.path).overlay if state else None)
            for i in infos}


def overlay_files(found: Mapping[Path, Layout]) -> set[str]:
    """Real paths of the files that hold some target's models as its overlay."""
    return {_real(lay.home) for lay in found.values() if lay.overlay is not None}


def check_writing(infos: Sequence[TargetInfo], found: Mapping[Path, Layout],
                  state: State | None) -> list[Check]:
    """One row per target: writable or read-only, where syncd's models go and which file holds them."""
    checked = {_real(i.path) for i in infos}  # their syntax has a row of its own
    out: list[Check] = []
    for info in infos:
        if info.data is None or not custom_providers(info.data):
            continue  # a broken target has its own row; one without providers gets no models
        out.append(_check(found[info.path], state, checked))
    return out or [ok(NAME, "no target to write")]


def _check(layout: Layout, state: State | None, checked: set[str]) -> Check:
    target = layout.target
    if layout.error is not None:
        return Check(NAME, Status.FAIL, layout.error, _FIX_NEITHER)
    placed = _placement(layout, state)
    if layout.overlay is None:
        reason = unwritable(target)
        if reason is not None:
            return Check(NAME, Status.FAIL,
                         f"{target} is read-only ({reason}) and set to `write: in-place`",
                         'set write: "auto" (or "overlay") in the settings; syncd then keeps its '
                         "models in an overlay file")
        return ok(NAME, f"{target}: writable, models written in place; {placed}")
    overlay = layout.overlay
    problem = None if _real(overlay) in checked else _overlay_problem(overlay)
    if problem is not None:
        return problem
    if not merged_after(target, overlay):
        return Check(NAME, Status.WARN,
                     f"{target}: syncd's models go to {overlay}, which OpenCode does not load by itself",
                     f"export OPENCODE_CONFIG={overlay} where OpenCode runs")
    why = f"read-only ({layout.fallback})" if layout.fallback else "`write: overlay`"
    return ok(NAME, f"{target}: {why}; syncd's models go to the overlay {overlay}; {placed}")


def _overlay_problem(overlay: Path) -> Check | None:
    try:
        text = read_target(overlay).text
        if text.strip():
            jsonc.parse(text)
    except jsonc.JsoncError as exc:
        return Check(NAME, Status.FAIL, f"{overlay}:{exc.line}:{exc.col}: {one_line(exc.msg)}",
                     f"fix the syntax at line {exc.line}, column {exc.col}; syncd leaves the overlay "
                     "alone (and OpenCode will not start) until then")
    except SyncdError as exc:
        return Check(NAME, Status.FAIL, one_line(str(exc)), "fix the overlay's permissions or encoding")
    return None


def merged_after(target: Path, overlay: Path) -> bool:
    """Whether OpenCode loads `overlay` after `target`: a later global file, or $OPENCODE_CONFIG."""
    t, o = Path(os.path.abspath(target)), Path(os.path.abspath(overlay))
    if t.parent == o.parent and t.name in OPENCODE_GLOBAL_NAMES and o.name in OPENCODE_GLOBAL_NAMES:
        return OPENCODE_GLOBAL_NAMES.index(o.name) > OPENCODE_GLOBAL_NAMES.index(t.name)
    extra = os.environ.get("OPENCODE_CONFIG")
    return extra is not None and _real(Path(extra).expanduser()) == _real(overlay)


def _placement(layout: Layout, state: State | None) -> str:
    """How many of syncd's models each file holds (home first), e.g. "syncd's 3 models: 3 in …"."""
    managed = {pid: ps.managed for pid, ps in state.target(layout.target).providers.items()} if state else {}
    total = sum(len(m) for m in managed.values())
    if not total:
        return "syncd has added no model yet"
    docs: dict[Path, Any] = {}
    for f in (layout.home, *(f for f in layout.files if f != layout.home)):
        try:
            docs[f] = jsonc.parse(read_target(f).text or "{}")
        except SyncdError:
            docs[f] = {}
    counts: dict[Path, int] = {}
    for pid, ids in managed.items():
        for mid in ids:
            where = next((f for f, doc in docs.items() if mid in models_in(doc, pid)), None)
            if where is not None:
                counts[where] = counts.get(where, 0) + 1
    parts = [f"{n} in {f}" for f, n in counts.items()]
    missing = total - sum(counts.values())
    if missing:
        parts.append(f"{missing} deleted by hand (recorded at the next cycle)")
    return f"syncd's {total} model(s): {', '.join(parts)}"
