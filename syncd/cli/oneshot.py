"""The one-shot commands behind `syncd once`, `syncd add` and `syncd restore`, as values for the CLI."""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from syncd import jsonc, paths
from syncd.engine import Engine
from syncd.errors import SyncdError, UsageError
from syncd.providers.blocks import custom_providers
from syncd.report import TargetReport
from syncd.settings import load_settings
from syncd.sync.store import read_target

# Detection, notification sinks and the restore/add machinery load when used: a no-op `syncd once`
# should cost little more than its imports (issue 15).
if TYPE_CHECKING:
    import httpx

    from syncd.notify.events import Event
    from syncd.notify.sinks import Notifier

PROVIDER_ID = re.compile(r"^[0-9a-z-]+$")


async def run_once(
    *,
    cli_configs: Sequence[str] | None = None,
    provider_ids: Sequence[str] | None = None,
    dry_run: bool = False,
    detect: bool = True,
    notify: bool = True,
) -> tuple[list[TargetReport], list[str]]:
    """One cycle for every target; returns the reports and lines worth telling the user."""
    from syncd.logs import configure_logging

    configure_logging("console", -3, sys.stderr)  # events go to sinks; the CLI prints the summary
    settings = load_settings()
    notifier: list[Notifier] = []  # built with the first batch: most runs have nothing to say

    async def send(events: Sequence[Event]) -> None:
        if not notifier:
            from syncd.notify.sinks import Notifier

            notifier.append(Notifier(settings.notify))
        await notifier[0].notify(events)

    engine = Engine(settings, cli_configs=cli_configs, notify=send if notify else None)
    notes: list[str] = []
    previews: dict[Path, str] = {}
    try:
        if provider_ids:
            _check_selection(engine.targets(), provider_ids)
        if detect and settings.detect and not cli_configs and not settings.configs:
            from syncd.sync.detected import detect_runtimes

            found = await detect_runtimes(await engine.http(), dry_run=dry_run,
                                          state_dir=paths.state_dir(), now=datetime.now(UTC))
            notes += found.notes
            if found.preview is not None:
                previews[found.target] = found.preview
        reports = await engine.sync_all(provider_ids, dry_run=dry_run, previews=previews)
    finally:
        await engine.aclose()
        if notifier:
            await notifier[0].aclose()
    return reports, notes


def _check_selection(targets: Sequence[Path], wanted: Sequence[str]) -> None:
    """`--provider ID` naming no custom provider of any target is a typo: say so, do nothing.

    When a target cannot be read, what it holds is unknown: its own cycle reports it instead.
    """
    import difflib

    from syncd.sync.targets import provider_ids

    known: list[str] = []
    for t in targets:
        ids = provider_ids(t)
        if ids is None:
            return
        known += [i for i in ids if i not in known]
    for w in wanted:
        if targets and w not in known:
            close = difflib.get_close_matches(w, known, n=1, cutoff=0.5)
            hint = f"; did you mean `{close[0]}`?" if close else ""
            shown = ", ".join(f"`{k}`" for k in known[:8]) + (" …" if len(known) > 8 else "")
            raise UsageError(f"once: --provider {w}: no custom provider has that id{hint} "
                             f"(the configs have: {shown or 'none'}); nothing was done")


async def add_provider(
    pid: str,
    base_url: str,
    *,
    name: str | None = None,
    key_env: str | None = None,
    config: str | None = None,
    dry_run: bool = False,
) -> TargetReport:
    """`syncd add`: write a provider block, then sync it at once."""
    from syncd.providers.catalog import BUILTIN_IDS
    from syncd.providers.detect import add_blocks, provider_block
    from syncd.sync.detected import forget_provider
    from syncd.sync.store import write_target
    from syncd.sync.targets import global_target

    if not PROVIDER_ID.match(pid):
        raise UsageError(f"provider id {pid!r}: use lowercase letters, digits and '-' only")
    if not re.match(r"^https?://[^\s/]+", base_url):
        raise UsageError(f"{base_url!r} is not an http(s) URL, e.g. http://127.0.0.1:11434/v1")
    if key_env is not None and not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key_env):
        raise UsageError(f"--key-env {key_env!r} is not an environment variable name")
    if pid in BUILTIN_IDS:
        raise UsageError(f"add: `{pid}` is OpenCode's own provider: a block with that id would "
                         f"change it (its models, its key); pick another id, e.g. "
                         f"`syncd add {pid}-custom {base_url}`")
    target = Path(config).expanduser() if config else global_target()
    block = provider_block(name or pid.replace("-", " ").title(), base_url.rstrip("/"), key_env)

    def transform(text: str) -> str:
        if text.strip():
            data = jsonc.parse(text)
            providers = data.get("provider") if isinstance(data, dict) else None
            if isinstance(providers, dict) and pid in providers:
                raise UsageError(f"provider {pid!r} already exists in {target}")
        return add_blocks(text, {pid: block})

    settings = load_settings()
    engine = Engine(settings, cli_configs=[str(target)])
    try:
        await _check_api_root(pid, base_url.rstrip("/"), await engine.http())
        if dry_run:
            old = read_target(target).text
            new = transform(old)
            report = await engine.sync_preview(target, new, [pid])
            return report
        target.parent.mkdir(parents=True, exist_ok=True)
        write_target(target, transform, state_dir=paths.state_dir(),
                     after=lambda _: forget_provider(target, pid, paths.state_dir()))
        return await engine.sync(target, [pid])
    finally:
        await engine.aclose()


async def _check_api_root(pid: str, base_url: str, client: httpx.AsyncClient) -> None:
    """Ollama and LM Studio answer OpenCode only under /v1: a URL without it lists models (syncd
    finds them) while every chat fails. Refuse it, naming the URL that works."""
    from syncd.errors import FetchError
    from syncd.model import Kind, ProviderSpec
    from syncd.providers.discover import detect_kind

    if base_url.endswith("/v1"):
        return
    try:
        kind = await detect_kind(ProviderSpec(id=pid, base_url=base_url), client, None)
    except FetchError:
        return  # not reachable now: the sync that follows says so
    names = {Kind.OLLAMA: "Ollama", Kind.LMSTUDIO: "LM Studio"}
    if kind in names:
        raise UsageError(f"add: {base_url} is {names[kind]}'s own API; OpenCode talks to its "
                         f"OpenAI-compatible API under /v1: `syncd add {pid} {base_url}/v1`")


def restore_model(ref: str, cli_configs: Sequence[str] | None = None) -> str:
    """`syncd restore PROVIDER/MODEL`: lift the tombstone in every target that has it;
    `syncd restore PROVIDER`: let detection add the block of a runtime the user declined."""
    from syncd.sync.detected import restore_declined
    from syncd.sync.locks import target_lock
    from syncd.sync.plan import restore
    from syncd.sync.state import load_state, save_state, state_file
    from syncd.sync.targets import resolve_targets

    pid, sep, model_id = ref.partition("/")
    if not sep and PROVIDER_ID.match(ref):
        return restore_declined(ref, paths.state_dir())
    if not sep or not pid or not model_id:
        raise UsageError(f"{ref!r}: expected PROVIDER/MODEL, e.g. ollama/qwen3-coder:30b")
    lifted: list[str] = []
    with target_lock(state_file(), paths.state_dir()):
        state = load_state()
        for key, ts in state.targets.items():
            ps = ts.providers.get(pid)
            if ps is not None and model_id in ps.tombstones:
                state = state.with_provider(key, pid, restore(ps, model_id))
                lifted.append(key)
        if lifted:
            save_state(state)
    if not lifted:
        targets = resolve_targets(cli_configs, load_settings().configs)
        known = [t for t in targets if _has_provider(t, pid)]
        where = f" (provider {pid!r} is in {', '.join(map(str, known))})" if known else ""
        raise SyncdError(f"{ref} is not a deleted model syncd remembers{where}; nothing to restore")
    return (f"restored {ref} in {', '.join(lifted)}; the next sync adds it again "
            "(run `syncd once` to do it now)")


def _has_provider(target: Path, pid: str) -> bool:
    try:
        return pid in custom_providers(jsonc.parse(read_target(target).text))
    except SyncdError:
        return False
