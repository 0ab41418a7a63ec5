"""`syncd service install`'s environment step: the {env:VAR} the targets read, recorded for the service.

A systemd or launchd service does not see the variables a login shell exports, so a key written as
`"{env:VAR}"` resolves to nothing there. This step finds every such variable, and records the
ones set in this shell (with consent: a prompt on a terminal, `--env`/`--all-env` otherwise) in
the service's environment file. Values are never printed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from syncd import jsonc
from syncd.errors import SettingsError, SyncdError, UsageError
from syncd.paths import service_env_file
from syncd.providers.credentials import load_auth
from syncd.providers.envrefs import EnvUse, env_uses
from syncd.service import envfile
from syncd.settings import load_settings
from syncd.sync.store import read_target
from syncd.sync.targets import resolve_targets

Ask = Callable[[str], bool]


@dataclass
class EnvOutcome:
    """What the step did: lines for the user (no values), and whether the file changed."""

    lines: list[str] = field(default_factory=list)
    changed: bool = False


def variables_used(cli_configs: Sequence[str] | None = None) -> dict[str, list[EnvUse]]:
    """Every variable the targets' custom providers read, with where each is read."""
    try:
        configured = load_settings().configs
    except SettingsError:
        configured = None  # `syncd doctor` reports the settings; the defaults still have targets
    auth = load_auth()
    out: dict[str, list[EnvUse]] = {}
    for target in resolve_targets(cli_configs, configured):
        try:
            data = jsonc.parse(read_target(target).text)
        except SyncdError:
            continue
        for use in env_uses(target, data, auth):
            out.setdefault(use.var, []).append(use)
    return out


def _where(uses: list[EnvUse]) -> str:
    more = f" and {len(uses) - 1} more" if len(uses) > 1 else ""
    return uses[0].describe() + more


def record_env(
    uses: Mapping[str, list[EnvUse]],
    environ: Mapping[str, str],
    *,
    only: Sequence[str] | None = None,
    every: bool = False,
    ask: Ask | None = None,
    dry_run: bool = False,
    path: Path | None = None,
) -> EnvOutcome:
    """Choose and record variables: `only` (--env), `every` (--all-env), else `ask` each one (a
    terminal), else none; `only=[]` is --no-env. Raises UsageError for an --env not set here."""
    path = path or service_env_file()
    recorded = envfile.read_env_file(path)
    out = EnvOutcome()
    wanted = [v for v in uses if v in environ and recorded.get(v) != environ[v]]
    if only is not None:
        unset = [v for v in only if v not in environ]
        if unset:
            raise UsageError(f"--env {unset[0]}: it is not set in this shell; export it first "
                             "(syncd records the value it has here, never prints it)")
        chosen = list(dict.fromkeys(only))
        out.lines += [f"note: no target reads {{env:{v}}}; recording it anyway"
                      for v in chosen if v not in uses]
    elif every:
        chosen = wanted
    elif ask is not None:
        chosen = [v for v in wanted if ask(f"Record {v} (read by {_where(uses[v])}) in {path} for "
                                           "the service? [Y/n] ")]
    else:
        chosen = []
    values = {v: environ[v] for v in chosen if recorded.get(v) != environ[v]}
    if values:
        try:
            out.changed = dry_run or envfile.record(path, values)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        verb = "would record" if dry_run else "recorded"
        out.lines.append(f"{verb} {envfile.names(values)} in {path} (mode 0600) for the service")
    for v in wanted:
        if v not in chosen:
            out.lines.append(f"warning: the service will not see {v} (read by {_where(uses[v])}); "
                             f"record it with `syncd service install --env {v}`")
    for v, where in uses.items():
        if v not in environ and v not in recorded:
            out.lines.append(f"warning: {v} (read by {_where(where)}) is not set in this shell or in "
                             f"{path}: export it and run `syncd service install --env {v}`, or add "
                             f"{v}=... to that file")
    return out


def tty_ask(stdin_is_tty: bool, prompt: Callable[[str], str] = input) -> Ask | None:
    """A yes/no question on a terminal; None when stdin is not one (never wait for an answer
    that cannot come)."""
    if not stdin_is_tty:
        return None

    def ask(question: str) -> bool:
        try:
            answer = prompt(question).strip().lower()
        except EOFError:
            return False
        return answer in ("", "y", "yes")

    return ask


def install_env(only: Sequence[str] | None, *, every: bool, none: bool, dry_run: bool,
                interactive: bool) -> EnvOutcome:
    """`syncd service install`'s flags (--env, --all-env, --no-env) applied to this shell."""
    return record_env(variables_used(), os.environ, only=[] if none else only, every=every,
                      ask=tty_ask(interactive), dry_run=dry_run)


def load_recorded_env() -> None:
    """`syncd run`: the variables `syncd service install` recorded, for those the environment
    lacks (launchd has no EnvironmentFile; a foreground run then behaves as the service does)."""
    import structlog

    log = structlog.get_logger("syncd")
    path = service_env_file()
    try:
        loaded = envfile.load_into(os.environ, path)
    except SyncdError as exc:
        log.error("service environment not loaded", error=str(exc))
        return
    if loaded:
        log.info("service environment loaded", variables=loaded, file=str(path))
