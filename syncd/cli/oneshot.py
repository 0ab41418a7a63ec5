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
