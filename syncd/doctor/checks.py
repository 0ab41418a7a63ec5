"""The checks of `syncd doctor` that read local files, processes and the service: each returns Checks."""

from __future__ import annotations

import difflib
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from syncd import jsonc
from syncd.errors import SyncdError
from syncd.localfile import SMALL_LIMIT, UnsafeFile, read_bytes
from syncd.providers.blocks import custom_providers
from syncd.providers.credentials import resolve
from syncd.report import plural
from syncd.service.files import Manager
from syncd.service.status import ServiceStatus
from syncd.sync.records import State
from syncd.sync.store import read_target

MIN_CONTEXT = 65536


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True)
class Check:
    """One finding: `message` and `fix` are one line each; `fix` is "" when there is nothing to do."""

    name: str
    status: Status
    message: str
    fix: str = ""


@dataclass(frozen=True)
class TargetInfo:
    """A target as doctor saw it: its parsed data, or None when it is missing or invalid."""

    path: Path
    data: Any


@dataclass(frozen=True)
class Proc:
    """A running process that looks like OpenCode."""

    pid: int
    started: datetime
    command: str


def ok(name: str, message: str) -> Check:
    return Check(name, Status.OK, message)


def one_line(text: str) -> str:
    return " ".join(str(text).split())


# --- targets ----------------------------------------------------------------------------------


def check_target(path: Path) -> tuple[TargetInfo, Check]:
    """Whether a target reads and parses; a syntax error is reported with its line and column."""
    try:
        snap = read_target(path)
    except SyncdError as exc:
        return TargetInfo(path, None), Check("target", Status.FAIL, one_line(str(exc)),
                                             "fix the file's permissions or encoding")
    if not snap.exists:
        return TargetInfo(path, None), Check(
            "target", Status.FAIL, f"{path}: no such file",
            "create it, or drop it from --config / the settings' `configs`")
    try:
        data = jsonc.parse(snap.text)
    except jsonc.JsoncError as exc:
        return TargetInfo(path, None), Check(
            "target", Status.FAIL, f"{path}:{exc.line}:{exc.col}: {one_line(exc.msg)}",
            f"fix the syntax at line {exc.line}, column {exc.col}; OpenCode will not start until then")
    n = len(custom_providers(data))
    return TargetInfo(path, data), ok("target", f"{path}: valid, {plural(n, 'custom provider')}")


def _leaves(node: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Leaf paths as OpenCode merges them: objects deep-merge, anything else (arrays too) replaces."""
    if isinstance(node, Mapping) and node:
        for key, value in node.items():
            yield from _leaves(value, (*prefix, str(key)))
    else:
        yield prefix, node


def check_shadowing(folders: Sequence[Path], overlays: Collection[str] = ()) -> list[Check]:
    """`opencode.json` and `opencode.jsonc` side by side: OpenCode loads both and `.jsonc` wins.

    `overlays` are the real paths of syncd's overlay files: there the pair is intended.
    """
    out: list[Check] = []
    for folder in dict.fromkeys(folders):
        plain, commented = folder / "opencode.json", folder / "opencode.jsonc"
        if not (plain.is_file() and commented.is_file()):
            continue
        if os.path.realpath(commented) in overlays:
            out.append(ok("shadowing", f"{commented} is syncd's overlay: OpenCode merges it after "
                                       f"{plain.name}, as intended"))
            continue
        try:
            first = dict(_leaves(jsonc.parse(read_target(plain).text)))
            second = dict(_leaves(jsonc.parse(read_target(commented).text)))
        except SyncdError:
            first, second = {}, {}
        clashes = [".".join(p) for p, v in second.items()
                   if p in first and first[p] != v and p != ("$schema",)]
        if clashes:
            shown = ", ".join(clashes[:3]) + (f" (+{len(clashes) - 3} more)" if len(clashes) > 3 else "")
            settings = plural(len(clashes), "setting")
            out.append(Check("shadowing", Status.FAIL,
                             f"{commented} overrides {settings} of {plain.name}: {shown}",
                             f"merge the two files into {commented.name} and delete {plain.name}"))
        else:
            out.append(Check("shadowing", Status.WARN,
                             f"{folder} has both opencode.json and opencode.jsonc; OpenCode merges "
                             "them and .jsonc wins", "keep one file: merge them into opencode.jsonc"))
    return out or [ok("shadowing", "no folder holds both opencode.json and opencode.jsonc")]


# --- credentials ------------------------------------------------------------------------------


def read_auth(path: Path) -> tuple[dict[str, Any], Check | None]:
    """auth.json as data, or a failing Check saying where it is broken."""
    try:
        text = read_bytes(path, SMALL_LIMIT).decode("utf-8")
    except FileNotFoundError:
        return {}, None
    except UnsafeFile as exc:
        return {}, Check("auth.json", Status.FAIL, f"{path} {exc.strerror}; OpenCode cannot use it",
                         f"move it aside (mv {path} {path}.bad) and `opencode auth login` again")
    except (OSError, UnicodeDecodeError) as exc:
        return {}, Check("auth.json", Status.FAIL, f"{path}: unreadable ({type(exc).__name__})",
                         f"chmod 600 {path}, or log in again with `opencode auth login`")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return {}, Check("auth.json", Status.FAIL, f"{path}:{exc.lineno}:{exc.colno}: {exc.msg}",
                         "fix the JSON there (OpenCode ignores every key in it until then)")
    except RecursionError:
        return {}, Check("auth.json", Status.FAIL, f"{path}: nested too deeply to read",
                         f"move it aside (mv {path} {path}.bad) and `opencode auth login` again")
    if not isinstance(data, dict):
        return {}, Check("auth.json", Status.FAIL, f"{path}: not a JSON object",
                         f"move it aside (mv {path} {path}.bad) and `opencode auth login` again")
    return data, None


def check_auth_mode(path: Path) -> list[Check]:
    """auth.json holds API keys: no one but its owner should read or change it."""
    try:
        mode = path.stat().st_mode & 0o7777
    except OSError:
        return []  # missing or unreadable: read_auth says so
    if not mode & 0o077:
        return [ok("auth.json mode", f"only its owner can read it (mode {mode:04o})")]
    who = {0o070: "its group", 0o007: "every user"}
    others = " and ".join(w for bits, w in who.items() if mode & bits)
    what = "readable" if mode & 0o044 else "writable"
    return [Check("auth.json mode", Status.WARN,
                  f"{path} holds API keys and is {what} by {others} (mode {mode:04o})",
                  f"chmod 600 {path}")]


def check_auth_ids(auth: Mapping[str, Any], targets: Sequence[TargetInfo],
                   known: Callable[[str], bool]) -> list[Check]:
    """auth.json keys for provider IDs that no config defines and OpenCode does not know."""
    blocks: dict[str, Mapping[str, Any]] = {}
    for t in targets:
        providers = t.data.get("provider") if isinstance(t.data, Mapping) else None
        if isinstance(providers, Mapping):
            blocks.update({k: v for k, v in providers.items() if isinstance(v, Mapping)})
    custom = [pid for t in targets for pid in custom_providers(t.data)]
    out: list[Check] = []
    for pid, entry in auth.items():
        if not isinstance(entry, Mapping) or entry.get("type") != "api":
            continue
        if pid in blocks or known(pid):
            continue
        close = difflib.get_close_matches(pid, custom, n=2, cutoff=0.6)
        if close:
            out.append(Check("auth.json", Status.FAIL,
                             f"key for `{pid}` matches no provider; did you mean `{close[0]}`?",
                             f"run `opencode auth logout` (pick `{pid}`), then `opencode auth "
                             f"login` with the ID `{close[0]}`"))
        else:
            out.append(Check("auth.json", Status.WARN,
                             f"key for `{pid}` matches no provider in your configs",
                             "remove it with `opencode auth logout`, or add provider "
                             f"`{pid}` to a config"))
    if not auth:
        return [ok("auth.json", "no keys stored (none needed so far)")]
    return out or [ok("auth.json", f"{plural(len(auth), 'key')}, each for a known provider")]


def _bearer(value: object) -> bool:
    return isinstance(value, str) and value.strip().lower().startswith("bearer ")


def check_bearer(auth: Mapping[str, Any], targets: Sequence[TargetInfo]) -> list[Check]:
    """Keys stored with `Bearer `: OpenCode adds it itself, so the server gets `Bearer Bearer …`."""
    out: list[Check] = []
    for pid, entry in auth.items():
        if isinstance(entry, Mapping) and _bearer(entry.get("key")):
            out.append(Check("bearer", Status.FAIL, f"auth.json key of `{pid}` starts with `Bearer `",
                             f"run `opencode auth login` for `{pid}` again and paste the key "
                             "without `Bearer `"))
    for t in targets:
        for pid, block in custom_providers(t.data).items():
            raw = block["options"].get("apiKey")
            try:
                value = resolve(raw, t.path.parent, config_path=t.path) if isinstance(raw, str) else None
            except SyncdError:
                continue  # an unreadable {file:} is the provider check's finding
            if _bearer(value):
                where = "its variable" if raw != value else "it"
                out.append(Check("bearer", Status.FAIL,
                                 f"{pid}: options.apiKey starts with `Bearer ` ({t.path})",
                                 f"remove `Bearer ` from {where}; OpenCode adds it itself"))
    return out or [ok("bearer", "no key carries a `Bearer ` prefix")]


# --- a stale OpenCode process -----------------------------------------------------------------

_OPENCODE = re.compile(r"^opencode(?:\.exe)?$")
_LAUNCHERS = {"node", "bun", "nodejs"}


def looks_like_opencode(argv: Sequence[str]) -> bool:
    """`opencode …`, or node/bun running a script named `opencode` (the npm wrapper)."""
    names = [os.path.basename(a) for a in argv[:2]]
    if names and _OPENCODE.match(names[0]):
        return True
    return len(names) == 2 and names[0] in _LAUNCHERS and bool(_OPENCODE.match(names[1]))


def linux_processes(proc: Path = Path("/proc")) -> list[Proc]:
    """OpenCode processes from /proc: start = boot time + starttime ticks (stat field 22)."""
    try:
        btime = next(int(ln.split()[1]) for ln in (proc / "stat").read_text().splitlines()
                     if ln.startswith("btime "))
    except (OSError, StopIteration, ValueError):
        return []
    ticks = os.sysconf("SC_CLK_TCK")
    out: list[Proc] = []
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            stat = (entry / "stat").read_text()
            argv = [a for a in (entry / "cmdline").read_bytes().decode("utf-8", "replace")
                    .split("\0") if a]
            # cmdline reads empty while a process is still in exec(); its name is in stat already
            argv = argv or [stat[stat.find("(") + 1:stat.rfind(")")]]
            if not looks_like_opencode(argv):
                continue
            fields = stat.rsplit(")", 1)[1].split()
            started = btime + int(fields[19]) / ticks  # field 22 is the 20th after "(comm)"
        except (OSError, IndexError, ValueError):
            continue  # the process ended while we looked
        out.append(Proc(int(entry.name), datetime.fromtimestamp(started, UTC), " ".join(argv)))
    return out


def parse_ps(text: str) -> list[Proc]:
    """`ps -axo pid=,lstart=,command=` lines (macOS); lstart is local time like `Mon Oct  6 12:00:00 2025`."""
    out: list[Proc] = []
    for line in text.splitlines():
        parts = line.split(None, 6)
        if len(parts) < 7 or not parts[0].isdigit():
            continue
        try:
            started = datetime.strptime(" ".join(parts[1:6]), "%a %b %d %H:%M:%S %Y").astimezone(UTC)
        except ValueError:
            continue
        if looks_like_opencode(parts[6].split()):
            out.append(Proc(int(parts[0]), started, parts[6]))
    return out


def opencode_processes() -> list[Proc]:
    """Running OpenCode processes on this machine (Linux: /proc; macOS: ps)."""
    if sys.platform.startswith("linux"):
        return linux_processes()
    try:
        done = subprocess.run(["ps", "-axo", "pid=,lstart=,command="], capture_output=True,
                              text=True, check=False, timeout=5, env={**os.environ, "LC_ALL": "C"})
    except (OSError, subprocess.SubprocessError):
        return []
    return [p for p in parse_ps(done.stdout) if p.pid != os.getpid()]


def last_write(state: State) -> datetime | None:
    times: list[datetime] = []
    for ts in state.targets.values():
        try:
            when = datetime.fromisoformat(ts.last_write_at) if ts.last_write_at else None
        except ValueError:
            continue
        if when is not None:
            times.append(when if when.tzinfo else when.replace(tzinfo=UTC))
    return max(times, default=None)


def check_stale_opencode(state: State | None, processes: Callable[[], Sequence[Proc]]) -> Check:
    """An OpenCode started before syncd's last write has not read the change (no hot reload)."""
    written = last_write(state) if state is not None else None
    if written is None:
        return ok("opencode", "syncd has not written any config yet")
    # /proc's boot time is whole seconds, so a start time may read up to 1 s early
    stale = [p for p in processes() if p.started.timestamp() + 1.0 < written.timestamp()]
    if not stale:
        return ok("opencode", "no OpenCode process predates syncd's last write")
    pids = ", ".join(str(p.pid) for p in stale[:5])
    return Check("opencode", Status.WARN,
                 f"OpenCode (pid {pids}) started before syncd's last write at "
                 f"{written.isoformat(timespec='seconds')}: it does not see the change",
                 "restart OpenCode; it reads its config only at start")


# --- the service ------------------------------------------------------------------------------


def check_service(status: ServiceStatus) -> Check:
    """Installed and running; missing is a warning (syncd also works as `syncd once`)."""
    if not status.installed:
        return Check("service", Status.WARN, f"not installed (no {status.unit_path})",
                     "syncd service install")
    if status.program and status.program_exists is False:
        return Check("service", Status.FAIL, f"it starts {status.program}, which no longer exists",
                     "syncd service install")
    if status.unavailable:
        return Check("service", Status.WARN,
                     f"installed, but the service manager cannot be asked: {one_line(status.unavailable)}",
                     "check that a user session manager runs (loginctl enable-linger $USER)")
    if status.running:
        return ok("service", f"installed and running ({status.unit_path.name})")
    fix = ("systemctl --user enable --now syncd; see journalctl --user -u syncd -n 50"
           if status.manager is Manager.SYSTEMD else "syncd service install")
    return Check("service", Status.FAIL,
                 f"installed but not running (enabled: {status.enabled}, state: {status.state})", fix)
