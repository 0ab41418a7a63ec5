"""Local-runtime detection as a user expects it (DESIGN §4.9): a block is added once, announced,
and a block the user deletes stays declined until `syncd restore PROVIDER`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx

from syncd import jsonc
from syncd.errors import SyncdError, UsageError
from syncd.providers.detect import Runtime, add_blocks, free_id, probe_runtimes, provider_block, unclaimed
from syncd.sync.merged import opencode_files, read_configs
from syncd.sync.records import Detected, State, target_key
from syncd.sync.state import load_state, update_state
from syncd.sync.store import WriteResult, read_target, write_target
from syncd.sync.targets import global_target


@dataclass(frozen=True)
class Detection:
    """What detection did (or, in a dry run, would do): lines for the user, and the new text."""

    target: Path
    notes: tuple[str, ...] = ()
    preview: str | None = None  # dry run: the target's text with the new blocks


def _declined_now(loose: list[Runtime], state: State) -> list[tuple[Runtime, Detected]]:
    """Runtimes detection gave a block that no config points at any more: the user deleted it."""
    out = []
    for rt in loose:
        d = state.detected.get(rt.base_url)
        if d is not None and d.declined_at is None:
            out.append((rt, d))
    return out


async def detect_runtimes(client: httpx.AsyncClient, *, dry_run: bool, state_dir: Path,
                          now: datetime) -> Detection:
    """Probe this machine; give each runtime that no config OpenCode merges points at, and that
    the user has not declined, a provider block in the global config."""
    target = global_target()
    found = await probe_runtimes(client)
    if not found:
        return Detection(target)
    loose = unclaimed(found, read_configs(opencode_files()))
    state = load_state()
    declined = _declined_now(loose, state)
    notes = [f"you deleted provider `{d.provider}` that syncd added for {rt.name} at "
             f"{rt.base_url}: syncd leaves it alone from now on (`syncd restore {d.provider}` "
             "lets it add the block again)" for rt, d in declined]
    if declined and not dry_run:
        update_state(_decline_all(declined, now.isoformat()), state_dir)
    fresh = [rt for rt in loose if rt.base_url not in state.detected]
    if not fresh:
        return Detection(target, tuple(notes))
    added: list[tuple[str, Runtime]] = []

    def transform(text: str) -> str | None:
        added.clear()  # the write path may call this again on newer text
        data = jsonc.parse(text) if text.strip() else {}
        blocks = {}
        for rt in unclaimed(fresh, [(target, data)]):  # the file may have changed meanwhile
            pid = free_id(rt.provider_id, data)
            blocks[pid] = provider_block(rt.name, rt.base_url)
            added.append((pid, rt))
        return add_blocks(text, blocks) if blocks else None

    def remember(state: State) -> State:
        for pid, rt in added:
            # a block of that id deleted long ago left its managed entries behind: without
            # this, the fresh block's empty `models` would read as "all deleted by hand"
            state = state.without_provider(target, pid).with_detected(
                rt.base_url, Detected(pid, target_key(target), now.isoformat()))
        return state

    def record(result: WriteResult) -> None:
        if result.changed:
            update_state(remember, state_dir)

    preview = None
    try:
        snap = read_target(target)
        if dry_run:
            preview = transform(snap.text)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            write_target(target, transform, state_dir=state_dir, after=record)
    except (SyncdError, OSError) as exc:
        # the target's own cycle reports it (with its path); the other targets still sync
        names = ", ".join(rt.name for rt in fresh)
        return Detection(target, (*notes, f"found {names} but could not add it to {target}: {exc}"))
    return Detection(target, (*notes, *_announce(added, target, snap.exists, dry_run)), preview)


def _decline_all(found: list[tuple[Runtime, Detected]], at: str) -> Callable[[State], State]:
    def change(state: State) -> State:
        for rt, d in found:
            state = state.with_detected(rt.base_url, Detected(d.provider, d.target, d.added_at, at))
        return state
    return change


def _announce(added: list[tuple[str, Runtime]], target: Path, existed: bool,
              dry_run: bool) -> list[str]:
    out = []
    for pid, rt in added:
        what = f"provider `{pid}` for {rt.name}, which answers at {rt.base_url}"
        if existed:
            line = f"{'would add' if dry_run else 'added'} {what}, to {target}"
        else:
            line = (f"{'would create' if dry_run else 'created'} {target} (OpenCode's global "
                    f"config) with {what}")
        out.append(line + "; delete the block and syncd will not add it again")
    return out


def restore_declined(pid: str, state_dir: Path) -> str:
    """`syncd restore PROVIDER`: forget that the user deleted the block detection added."""
    lifted: list[str] = []

    def change(state: State) -> State:
        mine = {url: d for url, d in state.detected.items() if d.provider == pid}
        declined = [url for url, d in mine.items() if d.declined_at is not None]
        if not declined:
            if mine:
                raise SyncdError(f"provider `{pid}` that detection added was not deleted; "
                                 "nothing to restore")
            raise UsageError(f"{pid!r}: no local runtime you declined has that provider id; "
                             "expected PROVIDER/MODEL (a deleted model) or the provider id "
                             "`syncd status` lists under declined runtimes")
        lifted.extend(declined)
        for url in declined:
            state = state.with_detected(url, None)
        return state

    update_state(change, state_dir)
    return (f"syncd will add provider `{pid}` for {', '.join(lifted)} again the next time it "
            "finds it answering (run `syncd once` to do it now)")


def forget_provider(target: Path, pid: str, state_dir: Path) -> None:
    """Drop what syncd remembers of `target`'s provider `pid` (a new block of that id replaces it)."""
    update_state(lambda state: state.without_provider(target, pid), state_dir)
