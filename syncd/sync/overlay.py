"""Where a target's models go (in place or an overlay OpenCode merges after it), and writing them there."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

from syncd import jsonc
from syncd.errors import SyncdError, TargetError, TargetParseError
from syncd.model import FetchResult
from syncd.paths import opencode_config_dir
from syncd.providers.blocks import custom_providers
from syncd.report import ProviderReport, TargetReport
from syncd.settings import Settings, WriteMode
from syncd.sync.cycle import Planner
from syncd.sync.layers import (
    Layers,
    merged_block,
    models_in,
    move_in,
    move_out,
    removals,
    route,
    skeleton,
    stuck,
    where,
)
from syncd.sync.locks import target_lock
from syncd.sync.outcome import target_report, unified_diff
from syncd.sync.plan import Change, plan_provider, protected_models
from syncd.sync.record import write_planned
from syncd.sync.records import ProviderState, State
from syncd.sync.state import load_state, save_state, state_file
from syncd.sync.store import read_target, sha256_bytes, unwritable_reason, write_target

# OpenCode merges its global files in this order; a target named on the left gets the overlay on
# the right by default (verified with opencode 1.18.33: models of one provider across files are
# all offered, and a later file's whitelist replaces an earlier one's).
DEFAULT_OVERLAY = {"config.json": "opencode.jsonc", "opencode.json": "opencode.jsonc"}


@dataclass(frozen=True)
class Layout:
    """Where syncd keeps one target's entries (`home`) and the other files that may still hold some.

    `files` is in OpenCode's merge order, the target first. `movable` are the files besides home
    syncd may remove its entries from. `error` says why the target can be neither written nor
    overlaid; `fallback` why `auto` chose the overlay.
    """

    target: Path
    home: Path
    files: tuple[Path, ...]
    movable: frozenset[Path] = frozenset()
    fallback: str | None = None
    error: str | None = None

    @property
    def overlay(self) -> Path | None:
        return self.home if self.home != self.target else None

    @property
    def layered(self) -> bool:
        return len(self.files) > 1


def default_overlay(target: Path) -> Path | None:
    """`opencode.jsonc` beside a global `config.json` / `opencode.json`; other files have none."""
    where = Path(os.path.abspath(target))
    name = DEFAULT_OVERLAY.get(where.name)
    return where.parent / name if name and where.parent == opencode_config_dir() else None


def _same(a: Path, b: Path) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


def unwritable(path: Path) -> str | None:
    """Why syncd could not write `path` (which may not exist yet), or None."""
    try:
        reason = unwritable_reason(path)
    except TargetError as exc:
        return exc.msg
    if reason is None and not Path(os.path.realpath(path)).parent.is_dir():
        return f"its folder {Path(os.path.realpath(path)).parent} does not exist"
    return reason


def layout_for(target: Path, settings: Settings, recorded: str | None) -> Layout:
    """Decide where syncd writes `target`'s models; `recorded` is the overlay the state remembers."""
    mode, named = settings.target_policy(target)
    reason = unwritable(target)
    old = Path(recorded) if recorded else None
    if mode is WriteMode.IN_PLACE or (mode is WriteMode.AUTO and reason is None):
        files = (target,) if old is None or _same(old, target) or not old.is_file() else (target, old)
        return Layout(target, target, files, frozenset(f for f in files[1:] if unwritable(f) is None))
    overlay = named or default_overlay(target)
    why = f"{target} is read-only ({reason})" if reason else f"{target} is set to `write: overlay`"
    if overlay is None:
        return Layout(target, target, (target,), error=(
            f"{why} and OpenCode merges no global file after it: name a writable one in the "
            f'settings (targets: {{"{target}": {{overlay: "<file>"}}}}) and point OPENCODE_CONFIG at it'))
    if _same(overlay, target):
        return Layout(target, target, (target,), error=f"{why}, and its overlay is the same file")
    problem = unwritable(overlay)
    if problem is not None:
        return Layout(target, target, (target,), error=(
            f"{why}, and its overlay {overlay} cannot be written either ({problem}); syncd can "
            "neither update it nor overlay it"))
    between = () if old is None or _same(old, overlay) or _same(old, target) or not old.is_file() else (old,)
    files = (target, *between, overlay)
    movable = frozenset(f for f in (target, *between) if unwritable(f) is None)
    return Layout(target, overlay, files, movable, fallback=reason if mode is WriteMode.AUTO else None)


def _parse(path: Path, text: str) -> Any:
    try:
        return jsonc.parse(text) if text.strip() else {}
    except jsonc.JsoncError as exc:
        raise TargetParseError(str(path), exc.line, exc.col, exc.msg) from None


@dataclass(frozen=True)
class FileChange:
    """One file of a layered cycle: its text before and after (equal when untouched)."""

    path: Path
    old: str
    new: str


@dataclass
class LayeredPlanner(Planner):
    """A Planner for the home file of a layout: plans on what OpenCode merges from all its files."""

    layout: Layout = field(default_factory=lambda: Layout(Path(), Path(), ()))
    target_text: str | None = None  # the target's text when it is not the file on disk (previews)
    notes: list[str] = field(default_factory=list)

    def texts(self, given: Mapping[Path, str]) -> list[str]:
        """Every file's text in merge order: `given` first, then the previewed target, then disk."""
        out = []
        for f in self.layout.files:
            if f in given:
                out.append(given[f])
            elif f == self.layout.target and self.target_text is not None:
                out.append(self.target_text)
            else:
                out.append(read_target(f).text)
        return out

    def layers(self, texts: Sequence[str]) -> Layers:
        files = self.layout.files
        docs = tuple(_parse(f, t) for f, t in zip(files, texts, strict=True))
        return Layers(docs, files.index(self.layout.home),
                      frozenset(i for i, f in enumerate(files) if f in self.layout.movable))

    def __call__(self, text: str) -> str | None:
        self.notes = []
        state = load_state().settled(self.target, sha256_bytes(text.encode("utf-8")))
        overlay_new = not text.strip() and self.layout.overlay is not None
        base = skeleton(self.target.name) if overlay_new else text
        layers = self.layers(self.texts({self.layout.home: base}))
        blocks = custom_providers(layers.docs[0])
        owned = {f.pid: state.provider(self.target, f.pid) for f in self.fetched if f.pid in blocks}
        moves = [c for pid, ps in owned.items() for c in move_in(layers, pid, ps.managed, ps.whitelist)]
        if moves:
            base = jsonc.modify_many(base, moves)
            layers = layers.with_home(_parse(self.layout.home, base))
            self.notes.append(f"moved {len(moves)} of syncd's entries into {self.layout.home}")
        changes: list[Change] = []
        self.plans = {}
        for f in self.fetched:
            if f.pid not in owned:
                continue
            ps = placed_only(owned[f.pid], layers, f.pid) if overlay_new else owned[f.pid]
            changes += self._plan(f.pid, f.result, ps, layers, blocks[f.pid])
        if self.layout.overlay is not None:  # providers gone from the target leave no models behind
            for pid, ps in state.target(self.target).providers.items():
                if pid not in blocks:
                    changes += removals(layers.docs[layers.home], pid, ps.managed, ps.whitelist,
                                        drop_empty=True)
        new = jsonc.modify_many(base, changes) if changes else base
        return None if new == text or (overlay_new and new == skeleton(self.target.name)) else new

    def _plan(self, pid: str, result: object, ps: ProviderState, layers: Layers,
              block: Mapping[str, Any]) -> list[Change]:
        gone = stuck(layers, pid, ps.managed)
        if gone:  # in a file syncd cannot write: the user's from now on, never updated or removed
            ps = replace(ps, managed={k: v for k, v in ps.managed.items() if k not in gone})
            self.notes.append(f"{pid}: {', '.join(gone)} stay in {self.target}, which syncd cannot "
                              "write; they are yours now")
        view = merged_block(layers, pid, block)
        plan = plan_provider(
            current=view.get("models"), fetched=result if isinstance(result, FetchResult) else None,
            state=ps, policy=self.settings.policy(pid),
            # the target's own references, and every other file's (the overlay's too)
            protected=protected_models(layers.docs[0], pid) | self.named.get(pid, frozenset()),
            catalog_has_provider=self.catalog is not None and self.catalog.has_provider(pid),
            block=view,
        )
        kept, blocked = route(layers, pid, plan.changes)
        if blocked:
            plan = replace(plan, removed=tuple(m for m in plan.removed if m not in blocked),
                           warnings=(*plan.warnings, f"not removed (in {self.target}, which syncd "
                                     f"leaves alone in this mode): {', '.join(blocked)}"))
        self.plans[pid] = plan
        return kept


def placed_only(ps: ProviderState, layers: Layers, pid: str) -> ProviderState:
    """Forget syncd's entries no file holds: a deleted overlay is a fresh start, not a deletion of
    each of its models (which would make them tombstones, never added back)."""
    keep = {k: v for k, v in ps.managed.items() if where(layers, pid, k) is not None}
    return ps if len(keep) == len(ps.managed) else replace(ps, managed=MappingProxyType(keep))


def _move_out_text(planner: LayeredPlanner, path: Path, text: str, home_text: str) -> str | None:
    """The text of `path` without syncd's entries that the home file now holds."""
    layers = planner.layers(planner.texts({planner.layout.home: home_text, path: text}))
    index = planner.layout.files.index(path)
    state = load_state()
    blocks = custom_providers(layers.docs[0])
    changes: list[Change] = []
    for pid, ps in state.target(planner.target).providers.items():
        if pid in blocks:
            changes += move_out(layers, index, pid, ps.managed, ps.whitelist,
                                drop_empty=path != planner.layout.target)
        elif path != planner.layout.target:  # a provider gone from the target: its models go too
            changes += removals(layers.docs[index], pid, ps.managed, ps.whitelist, drop_empty=True)
    return jsonc.modify_many(text, changes) if changes else None


def preview_layered(planner: LayeredPlanner) -> list[FileChange]:
    """What a layered cycle would write, file by file, writing nothing."""
    home = planner.layout.home
    old = planner.texts({})[planner.layout.files.index(home)]
    new = planner(old)
    home_text = old if new is None else new
    out = [FileChange(home, old, home_text)]
    for path in planner.layout.files:
        if path in planner.layout.movable:
            text = planner.texts({})[planner.layout.files.index(path)]
            out.append(FileChange(path, text, _move_out_text(planner, path, text, home_text) or text))
    return out


def write_layered(planner: LayeredPlanner, *, state_dir: Path,
                  clock: Callable[[], float]) -> list[FileChange]:
    """Write the home file first (so nothing is ever lost), then drop the copies it now holds from
    the other files; record where the target's models live. A kill in between leaves a copy in
    both, which the next cycle removes."""
    layout = planner.layout
    result = write_planned(planner.target, planner, state_dir=state_dir, clock=clock, file=layout.home)
    out = [FileChange(layout.home, result.old_text, result.new_text)]
    written: dict[Path, str] = {}
    for path in layout.files:
        if path not in layout.movable:
            continue
        res = write_target(path, _mover(planner, path, result.new_text), state_dir=state_dir)
        out.append(FileChange(path, res.old_text, res.new_text))
        if res.changed:
            written[path] = res.sha256
    _settle(planner, written, state_dir, clock())
    return out


def _mover(planner: LayeredPlanner, path: Path, home_text: str) -> Callable[[str], str | None]:
    return lambda text: _move_out_text(planner, path, text, home_text)


def _settle(planner: LayeredPlanner, written: Mapping[Path, str], state_dir: Path, at: float) -> None:
    """Record the other files' writes, which overlay holds the models, and forget syncd's entries
    of providers gone from the target that no file holds any more."""
    layout = planner.layout
    texts = [read_target(f).text for f in layout.files]
    try:
        layers = planner.layers(texts)
    except TargetParseError:
        layers = None
    now = datetime.fromtimestamp(at, UTC)
    with target_lock(state_file(), state_dir):
        state = load_state()
        for path, sha in written.items():
            state = state.with_write(path, sha, now)
        state = _forget_orphans(state, planner.target, layers)
        overlay = layout.overlay
        if overlay is None and layers is not None and _holds_models(state, planner.target, layers):
            # back in place: the old overlay is still read with the target while it holds entries
            # for its providers (the user's own, or syncd's not yet moved), so none is added twice
            overlay = layout.files[1]
        recorded = None if overlay is None else str(overlay)
        save_state(state.with_overlay(planner.target, recorded, home=layout.overlay is not None))


def _forget_orphans(state: State, target: Path, layers: Layers | None) -> State:
    if layers is None:
        return state
    blocks = custom_providers(layers.docs[0])
    for pid, ps in state.target(target).providers.items():
        if pid in blocks:
            continue
        held = {m for doc in layers.docs for m in models_in(doc, pid)}
        keep = {k: v for k, v in ps.managed.items() if k in held}
        if len(keep) != len(ps.managed):
            state = state.with_provider(target, pid, replace(ps, managed=keep))
    return state


def _holds_models(state: State, target: Path, layers: Layers) -> bool:
    """Whether a file besides the target holds an entry of one of the target's providers."""
    pids = set(custom_providers(layers.docs[0])) | set(state.target(target).providers)
    return any(models_in(layers.docs[i], pid) for pid in pids for i in layers.others)


def own_targets(targets: Sequence[Path], layout_of: Callable[[Path], Layout]) -> list[Path]:
    """The targets, less the files that are only another target's overlay (no providers of their own)."""
    overlays = {os.path.realpath(o) for t in targets for o in layout_of(t).files[1:]}
    return [t for t in targets if os.path.realpath(t) not in overlays or _defines_providers(t)]


def _defines_providers(path: Path) -> bool:
    try:
        return bool(custom_providers(jsonc.parse(read_target(path).text)))
    except SyncdError:
        return False


def layered_view(target: Path, settings: Settings, state: State,
                 text: str) -> tuple[Layers, str, bool]:
    """The files OpenCode merges for `target` (holding `text`), the hash of the home file's bytes,
    and whether the home file is an overlay that is missing or empty (see `placed_only`)."""
    layout = layout_for(target, settings, state.target(target).overlay)
    planner = LayeredPlanner(target, (), settings, None, layout=layout, target_text=text)
    texts = planner.texts({})
    home = texts[layout.files.index(layout.home)]
    fresh = layout.overlay is not None and not home.strip()
    return planner.layers(texts), sha256_bytes(home.encode("utf-8")), fresh


def layered_report(planner: LayeredPlanner, files: Sequence[FileChange], skipped: list[ProviderReport],
                   before: State, *, with_diff: bool, diff_base: str | None = None) -> TargetReport:
    """The report of a layered cycle: the target's, with every file's diff and what to tell once."""
    layout = planner.layout
    if diff_base is not None:  # a preview of a new target text: its diff shows that change too
        files = [FileChange(f.path, diff_base, f.new) if f.path == layout.target else f for f in files]
        if all(f.path != layout.target for f in files):
            files = [FileChange(layout.target, diff_base, planner.target_text or diff_base), *files]
    home = files[0]
    report = target_report(str(planner.target), list(planner.fetched), planner.plans, skipped, before,
                           home.old, home.new)
    notes = list(planner.notes)
    if layout.fallback and before.target(planner.target).overlay != str(layout.home):
        notes.insert(0, f"{planner.target} is read-only ({layout.fallback}); syncd keeps its models "
                        f"in {layout.home}, which OpenCode merges after it")
    diff = "".join(unified_diff(str(f.path), f.old, f.new) for f in files) if with_diff else ""
    return replace(report, changed=any(f.old != f.new for f in files), diff=diff, notes=tuple(notes),
                   overlay=None if layout.overlay is None else str(layout.overlay))


def overlay_homes(state: State) -> dict[str, str]:
    """Target -> the overlay file that held its models after its last cycle, when one did."""
    return {key: ts.overlay for key, ts in state.targets.items() if ts.overlay and ts.in_overlay}
