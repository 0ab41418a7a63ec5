"""Installs and removes syncd's background service: a systemd user unit or a launchd agent."""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from syncd.service.files import (
    AGENT_LABEL,
    UNIT_NAME,
    Manager,
    checked_syncd,
    log_dir,
    manager_for,
    render_plist,
    render_unit,
    unit_path,
)

# `enable --now` waits for READY=1 from a Type=notify unit; systemd's own start timeout is 90 s.
COMMAND_TIMEOUT = 120.0

# What systemctl/launchctl say when there is no user service manager to talk to (a container, an
# ssh session without a login session, a macOS session without a GUI domain).
_UNAVAILABLE = (
    "failed to connect to bus",
    "failed to connect to user scope bus",
    "no medium found",
    "not been booted with systemd",
    "$dbus_session_bus_address",
    "$xdg_runtime_dir",
    "could not find domain",
    "domain does not support specified action",
)

Runner = Callable[..., "subprocess.CompletedProcess[str]"]


class Action(StrEnum):
    INSTALL = "install"
    UNINSTALL = "uninstall"


@dataclass(frozen=True, slots=True)
class WriteFile:
    path: Path
    text: str


@dataclass(frozen=True, slots=True)
class MakeDir:
    path: Path


@dataclass(frozen=True, slots=True)
class RemoveFile:
    path: Path


@dataclass(frozen=True, slots=True)
class Run:
    argv: tuple[str, ...]
    tolerate: bool = False  # any failure is expected and harmless (bootout of an agent not loaded)


Step = WriteFile | MakeDir | RemoveFile | Run


@dataclass(frozen=True, slots=True)
class ServicePlan:
    """What install/uninstall would do: the file, its rendered text, the steps, and advice."""

    action: Action
    manager: Manager
    unit_path: Path
    text: str | None  # the rendered unit or plist (install only)
    steps: tuple[Step, ...]
    notes: tuple[str, ...]  # how to see the logs, linger, ...

    @property
    def commands(self) -> tuple[tuple[str, ...], ...]:
        return tuple(s.argv for s in self.steps if isinstance(s, Run))


@dataclass(frozen=True, slots=True)
class ServiceOutcome:
    plan: ServicePlan
    done: tuple[str, ...]  # one line per thing actually done
    unavailable: str | None  # the manager's own message when it could not be reached
    pending: tuple[tuple[str, ...], ...]  # commands to run where a service manager exists
    error: str | None  # a command that failed for a real reason; later steps were not run

    @property
    def ok(self) -> bool:
        """False only for a real failure; a missing service manager is a warning, not a failure."""
        return self.error is None


def _uid(uid: int | None) -> int:
    return os.getuid() if uid is None else uid


def _systemctl(*args: str) -> Run:
    return Run(("systemctl", "--user", *args))


def _notes(manager: Manager, home: Path | None, uid: int) -> tuple[str, ...]:
    if manager is Manager.SYSTEMD:
        return (
            "See the logs: journalctl --user -u syncd -f",
            "Reload the settings: systemctl --user reload syncd; state: syncd service status",
            "Headless machine (no login session)? Run `loginctl enable-linger $USER` so the "
            "service starts at boot and keeps running after you log out.",
        )
    logs = log_dir(home)
    return (
        f"See the logs: tail -f {logs}/syncd.err.log {logs}/syncd.out.log",
        f"Inspect the agent: launchctl print gui/{uid}/{AGENT_LABEL}",
    )


def plan_install(
    *,
    platform: str | None = None,
    home: Path | None = None,
    syncd_path: str | None = None,
    uid: int | None = None,
    env_changed: bool = False,
) -> ServicePlan:
    """Render the service file for this machine and list the steps that install and start it;
    `env_changed`: the environment file changed, so a running service restarts to read it."""
    manager, user = manager_for(platform), _uid(uid)
    syncd = checked_syncd(syncd_path)
    path = unit_path(platform=platform, home=home)
    steps: list[Step]
    if manager is Manager.SYSTEMD:
        text = render_unit(syncd)
        steps = [WriteFile(path, text), _systemctl("daemon-reload")]
        steps.append(_systemctl("enable", "--now", UNIT_NAME))
        if env_changed or path.is_file() and path.read_text(encoding="utf-8", errors="replace") != text:
            # enable --now leaves a running daemon on the old files; restart it on the new ones.
            steps.append(_systemctl("try-restart", UNIT_NAME))
    else:
        text = render_plist(syncd, log_dir(home))
        target = f"gui/{user}"
        steps = [
            MakeDir(log_dir(home)),  # launchd does not create the folders of its log paths
            WriteFile(path, text),
            # bootstrap refuses an agent already loaded: unload the old one (if any) first.
            Run(("launchctl", "bootout", f"{target}/{AGENT_LABEL}"), tolerate=True),
            Run(("launchctl", "enable", f"{target}/{AGENT_LABEL}")),
            Run(("launchctl", "bootstrap", target, str(path))),
        ]
    return ServicePlan(
        Action.INSTALL, manager, path, text, tuple(steps), _notes(manager, home, user)
    )


def plan_uninstall(
    *, platform: str | None = None, home: Path | None = None, uid: int | None = None
) -> ServicePlan:
    """The steps that stop, disable and remove the installed service (none when not installed)."""
    manager, user = manager_for(platform), _uid(uid)
    path = unit_path(platform=platform, home=home)
    if not (path.exists() or path.is_symlink()):
        return ServicePlan(
            Action.UNINSTALL, manager, path, None, (), (f"not installed: no {path}",)
        )
    steps: list[Step]
    if manager is Manager.SYSTEMD:
        steps = [_systemctl("disable", "--now", UNIT_NAME)]
        wants = path.parent / "default.target.wants" / UNIT_NAME
        if wants.is_symlink():
            # without a user manager `disable` may not run; a dangling wants link would remain
            steps.append(RemoveFile(wants))
        steps += [RemoveFile(path), _systemctl("daemon-reload")]
        notes: tuple[str, ...] = ("Past logs stay in the journal: journalctl --user -u syncd",)
    else:
        steps = [
            Run(("launchctl", "bootout", f"gui/{user}/{AGENT_LABEL}"), tolerate=True),
            RemoveFile(path),
        ]
        notes = (f"Logs are kept in {log_dir(home)}",)
    return ServicePlan(Action.UNINSTALL, manager, path, None, tuple(steps), notes)


def _one_line(result: subprocess.CompletedProcess[str]) -> str:
    text = f"{result.stderr or ''}\n{result.stdout or ''}".strip()
    return text.splitlines()[0].strip() if text else f"exit status {result.returncode}"


def unreachable(result: subprocess.CompletedProcess[str]) -> str | None:
    """The manager's message when a command failed because there is no service manager to ask."""
    if result.returncode == 127:
        return _one_line(result)
    # systemctl may first do the file part offline ("Created symlink ...") and only then fail
    lines = f"{result.stderr or ''}\n{result.stdout or ''}".splitlines()
    return next((ln.strip() for ln in lines if any(m in ln.lower() for m in _UNAVAILABLE)), None)


def call(runner: Runner, argv: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
    """Run argv; a missing program reads as "no service manager" (exit 127, like a shell)."""
    try:
        return runner(
            list(argv), capture_output=True, text=True, check=False, timeout=COMMAND_TIMEOUT
        )
    except FileNotFoundError:
        return subprocess.CompletedProcess(list(argv), 127, "", f"{argv[0]}: command not found")


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.chmod(tmp, 0o644)  # the manager only needs to read it; it holds no secrets
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def apply(plan: ServicePlan, runner: Runner = subprocess.run) -> ServiceOutcome:
    """Carry out a plan's steps in order; stop at the first real failure."""
    done: list[str] = []
    pending: list[tuple[str, ...]] = []
    unavailable: str | None = None
    for step in plan.steps:
        try:
            if isinstance(step, WriteFile):
                _write(step.path, step.text)
                done.append(f"wrote {step.path}")
            elif isinstance(step, MakeDir):
                if not step.path.is_dir():
                    step.path.mkdir(parents=True, exist_ok=True)
                    done.append(f"created {step.path}")
            elif isinstance(step, RemoveFile) and (step.path.exists() or step.path.is_symlink()):
                step.path.unlink()
                done.append(f"removed {step.path}")
        except OSError as exc:
            where = getattr(step, "path", "")
            return ServiceOutcome(
                plan, tuple(done), unavailable, tuple(pending), f"{where}: {exc.strerror or exc}"
            )
        if not isinstance(step, Run):
            continue
        try:
            result = call(runner, step.argv)
        except subprocess.TimeoutExpired:
            error = f"`{shlex.join(step.argv)}` did not finish in {COMMAND_TIMEOUT:.0f} s"
            return ServiceOutcome(plan, tuple(done), unavailable, tuple(pending), error)
        if result.returncode == 0 or step.tolerate:
            done.append(f"ran {shlex.join(step.argv)}")
            continue
        missing = unreachable(result)
        if missing:
            unavailable = unavailable or missing
            pending.append(step.argv)
            continue
        error = f"`{shlex.join(step.argv)}` failed: {_one_line(result)}"
        return ServiceOutcome(plan, tuple(done), unavailable, tuple(pending), error)
    return ServiceOutcome(plan, tuple(done), unavailable, tuple(pending), None)


def _describe(step: Step) -> str:
    if isinstance(step, WriteFile):
        return f"write {step.path}"
    if isinstance(step, MakeDir):
        return f"create {step.path}"
    if isinstance(step, RemoveFile):
        return f"remove {step.path}"
    return shlex.join(step.argv)


def format_plan(plan: ServicePlan) -> str:
    """What `--dry-run` prints: the rendered file, then every step, changing nothing."""
    if not plan.steps:
        return "\n".join(plan.notes)
    lines: list[str] = []
    if plan.text is not None:
        lines += [f"# {plan.unit_path}", plan.text.rstrip("\n"), ""]
    lines.append(f"Would {plan.action} the {_what(plan)} with:")
    lines += [f"  {_describe(step)}" for step in plan.steps]
    return "\n".join(lines + ["", *plan.notes])


def _what(plan: ServicePlan) -> str:
    return "systemd user service" if plan.manager is Manager.SYSTEMD else "launchd agent"


def format_outcome(outcome: ServiceOutcome) -> str:
    """What install/uninstall prints: what was done, any warning or error, where the logs are."""
    plan = outcome.plan
    if not plan.steps:
        return "\n".join(plan.notes)
    lines = [line[0].upper() + line[1:] for line in outcome.done]
    if outcome.error:
        lines.append(f"error: {outcome.error}")
        if plan.manager is Manager.SYSTEMD and plan.action is Action.INSTALL:
            lines.append("See why: journalctl --user -u syncd -n 50")
        return "\n".join(lines)
    if outcome.unavailable:
        tool = "systemctl --user" if plan.manager is Manager.SYSTEMD else "launchctl"
        installing = plan.action is Action.INSTALL
        lines += [
            f"warning: {tool} cannot reach a service manager here ({outcome.unavailable}); "
            "usual in a container or an ssh session without a login session.",
            f"The file is {'in place' if installing else 'removed'}. Where a service manager "
            "runs, finish with:",
            *(f"  {shlex.join(argv)}" for argv in outcome.pending),
        ]
        if installing:
            lines.append("or run `syncd run` in the foreground.")
    else:
        done = "installed and started" if plan.action is Action.INSTALL else "removed"
        lines.append(f"syncd {_what(plan)} {done}.")
    return "\n".join(lines + list(plan.notes))
