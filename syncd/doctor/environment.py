"""Doctor's check that every {env:VAR} a provider block reads resolves where the background service runs."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from syncd.doctor.checks import Check, Status, TargetInfo, ok, one_line
from syncd.errors import SyncdError
from syncd.providers.envrefs import EnvUse, env_uses
from syncd.service.envfile import loose_mode, read_env_file
from syncd.service.status import ServiceStatus

NAME = "service env"


def check_service_env(infos: Sequence[TargetInfo], auth: Mapping[str, Any], status: ServiceStatus | None,
                      manager_env: Collection[str] | None, env_file: Path) -> list[Check]:
    """The variables the providers read that neither the environment file nor the service
    manager gives the service; a loose mode on that file."""
    uses: dict[str, list[EnvUse]] = {}
    for info in infos:
        if info.data is not None:
            for use in env_uses(info.path, info.data, auth):
                uses.setdefault(use.var, []).append(use)
    if not uses:
        return [ok(NAME, "no provider reads an environment variable ({env:VAR})")]
    try:
        recorded = read_env_file(env_file)
    except SyncdError as exc:
        return [Check(NAME, Status.FAIL, one_line(str(exc)), f"chmod 600 {env_file}")]
    out: list[Check] = []
    mode = loose_mode(env_file)
    if mode is not None:
        out.append(Check(NAME, Status.FAIL, f"{env_file} has mode {mode:04o}: others can read the keys",
                         f"chmod 600 {env_file}"))
    missing = [v for v in uses if v not in recorded and v not in (manager_env or ())]
    if status is None or not status.installed:
        where = f"{len(missing)} of them not recorded for a service yet" if missing else "all recorded"
        return out or [ok(NAME, f"the service is not installed; {len(uses)} variable(s) read, {where}")]
    if missing:
        shown = "; ".join(f"{v} (read by {uses[v][0].describe()})" for v in missing[:3])
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        flags = " ".join(f"--env {v}" for v in missing)
        out.append(Check(NAME, Status.FAIL, f"not set where the service runs: {shown}{more}",
                         f"export {'/'.join(missing)} here and run `syncd service install {flags}`, "
                         f"or add NAME=value lines to {env_file}"))
    return out or [ok(NAME, f"{len(uses)} variable(s) the providers read reach the service "
                            f"({env_file} or the service manager)")]
