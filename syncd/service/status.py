"""Reports whether the background service is installed, enabled and running, and the last sync."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

from syncd import paths
from syncd.service.files import AGENT_LABEL, UNIT_NAME, Manager, manager_for, unit_path
from syncd.service.install import COMMAND_TIMEOUT, Runner, call, unreachable


@dataclass(frozen=True, slots=True)
class ServiceStatus:
    manager: Manager
    unit_path: Path
    installed: bool
    program: str | None  # the executable the installed file starts
    program_exists: bool | None
    enabled: bool | None  # None: the service manager could not be asked
    active: bool | None
    state: str | None  # the manager's word: active, failed, activating, running, ...
    unavailable: str | None
    state_file: Path
    last_cycle: datetime | None  # the newest `last_success` in the state file
    state_error: str | None

    @property
    def running(self) -> bool:
        return self.installed and bool(self.enabled) and bool(self.active)


def _walk(node: Any, key: str) -> Iterator[Any]:
    if isinstance(node, dict):
        for k, v in node.items():
            if k == key:
                yield v
            yield from _walk(v, key)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item, key)


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def last_cycle(state_file: Path) -> tuple[datetime | None, str | None]:
    """The newest per-provider `last_success` in the state file, read as plain JSON; or why not."""
    try:
        data = json.loads(state_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return None, f"{state_file}: unreadable ({type(exc).__name__}); see `syncd status`"
    times = [t for t in map(_parse_time, _walk(data, "last_success")) if t is not None]
    return (max(times) if times else None), None


def _program(manager: Manager, text: str) -> str | None:
    if manager is Manager.SYSTEMD:
        match = re.search(r"^ExecStart=(.+)$", text, re.M)
        if not match:
            return None
        try:
            words = shlex.split(match.group(1).replace("%%", "%"))
        except ValueError:
            return None
        return words[0].lstrip("@-:+!") if words else None
    match = re.search(r"<key>ProgramArguments</key>\s*<array>\s*<string>([^<]*)</string>", text)
    return (
        match.group(1).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
        if match
        else None
    )


def _ask(runner: Runner, argv: tuple[str, ...]) -> tuple[CompletedProcess[str], str | None]:
    try:
        result = call(runner, argv)
    except subprocess.TimeoutExpired:  # a hung manager is one we cannot ask, not a crash
        return CompletedProcess(list(argv), 1, "", ""), (
            f"`{shlex.join(argv)}` did not answer in {COMMAND_TIMEOUT:.0f} s")
    return result, unreachable(result)


def service_status(
    *,
    platform: str | None = None,
    home: Path | None = None,
    uid: int | None = None,
    runner: Runner = subprocess.run,
    state_file: Path | None = None,
) -> ServiceStatus:
    """Whether the service is installed, enabled and active, and when the daemon last synced."""
    manager = manager_for(platform)
    path = unit_path(platform=platform, home=home)
    state_file = state_file or paths.state_dir() / "state.json"
    cycle, state_error = last_cycle(state_file)
    installed = path.is_file()
    program = _program(manager, path.read_text("utf-8", "replace")) if installed else None
    program_exists = os.access(program, os.X_OK) if program else None
    enabled: bool | None = False
    active: bool | None = False
    state: str | None = None
    missing: str | None = None
    if installed and manager is Manager.SYSTEMD:
        # is-enabled reads the unit files and often answers even without a user manager
        result, missing = _ask(runner, ("systemctl", "--user", "is-enabled", UNIT_NAME))
        enabled = None if missing else result.returncode == 0
        result, no_bus = _ask(runner, ("systemctl", "--user", "is-active", UNIT_NAME))
        missing = missing or no_bus
        words = (result.stdout or "").split()
        state = None if no_bus or not words else words[0]
        active = None if no_bus else state == "active"
    elif installed:
        uid = os.getuid() if uid is None else uid
        result, missing = _ask(runner, ("launchctl", "print", f"gui/{uid}/{AGENT_LABEL}"))
        found = re.search(r"^\s*state = (\S+)", result.stdout or "", re.M)
        state = found.group(1) if found and not missing else None
        # loaded into the GUI domain means it starts at every login
        enabled = None if missing else result.returncode == 0
        active = None if missing else state == "running"
    return ServiceStatus(
        manager,
        path,
        installed,
        program,
        program_exists,
        enabled,
        active,
        state,
        missing,
        state_file,
        cycle,
        state_error,
    )


def manager_environment(*, platform: str | None = None,
                        runner: Runner = subprocess.run) -> frozenset[str] | None:
    """The names (never the values) of the variables the user service manager passes to every
    service (systemd's `show-environment`); None when there is none to ask (launchd: only the
    environment file counts)."""
    if manager_for(platform) is not Manager.SYSTEMD:
        return None
    result, missing = _ask(runner, ("systemctl", "--user", "show-environment"))
    if missing or result.returncode != 0:
        return None
    return frozenset(line.split("=", 1)[0] for line in (result.stdout or "").splitlines() if "=" in line)


def _yes_no(value: bool | None, yes: str, no: str) -> str:
    return "unknown" if value is None else yes if value else no


def _ago(moment: datetime, now: datetime) -> str:
    seconds = int((now - moment).total_seconds())
    if seconds < 0:
        return "in the future (clock skew?)"
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


def format_status(status: ServiceStatus, now: datetime | None = None) -> str:
    """The lines `syncd service status` prints; `now` adds how long ago the last cycle was."""
    where = "systemd user unit" if status.manager is Manager.SYSTEMD else "launchd agent"
    if not status.installed:
        lines = [
            f"service: not installed ({where}: no {status.unit_path})",
            "install it: syncd service install",
        ]
    else:
        lines = [
            f"service: installed ({where}: {status.unit_path})",
            f"enabled: {_yes_no(status.enabled, 'yes', 'no')}",
            "active: " + (status.state or _yes_no(status.active, "yes", "no")),
        ]
        if status.program and status.program_exists is False:
            lines.append(
                f"warning: it starts {status.program}, which no longer exists; "
                "run `syncd service install` again"
            )
        if status.unavailable:
            lines.append(f"warning: could not ask the service manager ({status.unavailable})")
        elif status.manager is Manager.SYSTEMD and status.enabled and not status.active:
            lines.append("see why: journalctl --user -u syncd -n 50")
    if status.last_cycle is None:
        lines.append(f"last successful sync: never (state: {status.state_file})")
    else:
        when = status.last_cycle.isoformat(timespec="seconds")
        if now is not None:
            when += f" ({_ago(status.last_cycle, now)})"
        lines.append(f"last successful sync: {when}")
    if status.state_error:
        lines.append(f"warning: {status.state_error}")
    return "\n".join(lines)
