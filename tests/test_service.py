"""The service installer: rendered unit and plist; install, uninstall and status with stubs."""

from __future__ import annotations

import configparser
import json
import os
import plistlib
import shlex
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path

import pytest

from syncd import paths
from syncd.errors import SyncdError, UsageError
from syncd.service import install as service
from syncd.service.files import (
    AGENT_LABEL,
    PLIST_NAME,
    UNIT_NAME,
    find_syncd,
    render_plist,
    render_unit,
)
from syncd.service.status import format_status, service_status

ROOT = Path(__file__).resolve().parent.parent
NO_BUS = "Failed to connect to bus: No medium found"

STUB = """#!{python}
import json, os, sys
args = sys.argv[1:]
with open(os.environ["STUB_LOG"], "a") as log:
    log.write(json.dumps([os.path.basename(sys.argv[0]), *args]) + "\\n")
rules = json.loads(os.environ.get("STUB_RULES", "{{}}"))
verb = next((a for a in args if not a.startswith("-")), "")
rc, out, err = rules.get(verb, rules.get("*", [0, "", ""]))
sys.stdout.write(out)
sys.stderr.write(err)
sys.exit(rc)
"""


class Stub:
    """A fake systemctl/launchctl on PATH that records its argv and answers per verb."""

    def __init__(self, bindir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.log = bindir / "calls.jsonl"
        self.monkeypatch = monkeypatch
        for name in ("systemctl", "launchctl"):
            exe = bindir / name
            exe.write_text(STUB.format(python=sys.executable))
            exe.chmod(0o755)
        monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
        monkeypatch.setenv("STUB_LOG", str(self.log))
        self.answer()

    def answer(self, **rules: tuple[int, str, str]) -> None:
        self.monkeypatch.setenv("STUB_RULES", json.dumps(rules))

    def calls(self) -> list[list[str]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]


@pytest.fixture
def stub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Stub:
    bindir = tmp_path / "stubbin"
    bindir.mkdir()
    return Stub(bindir, monkeypatch)


@pytest.fixture
def fake_syncd(tmp_path: Path) -> str:
    """An executable at an awkward path: spaces, %, $ and & must survive both file formats."""
    exe = tmp_path / "odd dir %h $HOME & <x>" / "syncd"
    exe.parent.mkdir()
    exe.write_text("#!/bin/sh\nexit 0\n")
    exe.chmod(0o755)
    return str(exe)


def _unit(text: str) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(text)
    return parser


def _exec_start_program(text: str) -> str:
    line = _unit(text)["Service"]["ExecStart"]
    # undo systemd's specifier escaping: %% is %
    return shlex.split(line.replace("%%", "%"))[0]


# --- templates and rendering --------------------------------------------------------------


@pytest.mark.parametrize("name", [UNIT_NAME, PLIST_NAME])
def test_packaged_templates_are_the_repo_templates(name: str) -> None:
    repo = ROOT / ("systemd" if name == UNIT_NAME else "launchd") / name
    packaged = (resources.files("syncd.service") / "data" / name).read_bytes()
    assert packaged == repo.read_bytes()


def test_unit_has_every_directive_the_issue_asks_for() -> None:
    unit = _unit(render_unit(find_syncd()))
    svc = unit["Service"]
    assert svc["Type"] == "notify"
    assert svc["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert svc["Restart"] == "on-failure"
    assert svc["WatchdogSec"] == "120s"
    assert svc["EnvironmentFile"] == f"-{paths.service_env_file()}"  # where install records keys
    assert svc["UMask"] == "0077"
    for key in ("RestartSec", "TimeoutStopSec"):
        assert svc[key]
    for key in ("NoNewPrivileges", "LockPersonality", "RestrictRealtime"):
        assert svc[key] == "yes"
    # namespaced sandboxing fails in user units without user namespaces
    for key in ("ProtectSystem", "ProtectHome", "PrivateTmp", "PrivateDevices"):
        assert key not in svc
    assert unit["Unit"]["StartLimitIntervalSec"] and unit["Unit"]["StartLimitBurst"]
    assert unit["Install"]["WantedBy"] == "default.target"


def test_unit_execstart_is_the_absolute_syncd_of_this_interpreter() -> None:
    text = render_unit(find_syncd())
    program = _exec_start_program(text)
    assert os.path.isabs(program) and os.access(program, os.X_OK)
    assert Path(program).parent == Path(sys.executable).parent
    assert _unit(text)["Service"]["ExecStart"].endswith(" run")


def test_unit_quotes_an_awkward_path(fake_syncd: str) -> None:
    assert _exec_start_program(render_unit(fake_syncd)) == fake_syncd


def _verify(unit_dir: Path, text: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze not installed (bash .ci/run installs Debian's systemd)")
    unit_dir.mkdir(parents=True, exist_ok=True)
    path = unit_dir / UNIT_NAME
    path.write_text(text)
    # --user needs a runtime dir even to only verify; containers often have none
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700, exist_ok=True)
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "SYSTEMD_LOG_COLOR": "0"}
    result = subprocess.run(
        [tool, "--user", "verify", str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    if "Failed to initialize manager" in result.stderr:
        pytest.skip(f"systemd-analyze cannot run here: {result.stderr.strip()}")
    return result


def _complaints(result: subprocess.CompletedProcess[str], unit_dir: Path) -> list[str]:
    """Lines about our unit: unknown keys and bad values only warn, with exit status 0."""
    out = result.stdout + result.stderr
    return [line for line in out.splitlines() if UNIT_NAME in line or str(unit_dir) in line]


@pytest.mark.parametrize("which", ["interpreter", "awkward"])
def test_rendered_unit_passes_systemd_analyze_verify(
    which: str, fake_syncd: str, tmp_path: Path
) -> None:
    syncd = find_syncd() if which == "interpreter" else fake_syncd
    unit_dir = tmp_path / "units"
    result = _verify(unit_dir, render_unit(syncd), tmp_path)
    assert result.returncode == 0, result.stderr
    assert _complaints(result, unit_dir) == []


def test_verify_catches_a_broken_unit(tmp_path: Path) -> None:
    """The check above can fail: a bad value, an unknown key and a missing program are caught."""
    text = render_unit(find_syncd()).replace("Restart=on-failure", "Restart=sometimes\nBogus=1")
    unit_dir = tmp_path / "units"
    assert len(_complaints(_verify(unit_dir, text, tmp_path), unit_dir)) == 2
    missing = render_unit(find_syncd()).replace(find_syncd(), str(tmp_path / "gone" / "syncd"))
    assert _verify(unit_dir, missing, tmp_path).returncode != 0


def test_plist_parses_and_has_every_key_with_absolute_paths(
    fake_syncd: str, tmp_path: Path
) -> None:
    logs = tmp_path / "Library" / "Logs" / "syncd"
    plist = plistlib.loads(render_plist(fake_syncd, logs).encode())
    assert plist["Label"] == AGENT_LABEL
    assert plist["ProgramArguments"] == [fake_syncd, "run"]
    assert plist["RunAtLoad"] is True
    assert plist["KeepAlive"] == {"SuccessfulExit": False}
    assert plist["ThrottleInterval"] > 0 and plist["ExitTimeOut"] > 0
    assert plist["ProcessType"] == "Background"
    for key in ("StandardOutPath", "StandardErrorPath"):
        assert Path(plist[key]).parent == logs
    search = plist["EnvironmentVariables"]["PATH"].split(":")
    assert all(os.path.isabs(d) for d in search) and {"/usr/bin", "/bin"} <= set(search)
    assert search[0] == os.path.dirname(fake_syncd)
    assert "~" not in json.dumps(plist)


def test_find_syncd_prefers_the_running_interpreters_bin_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ours, other = tmp_path / "venv" / "bin", tmp_path / "elsewhere"
    for d in (ours, other):
        d.mkdir(parents=True)
        (d / "syncd").write_text("#!/bin/sh\n")
        (d / "syncd").chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(ours / "python"))
    monkeypatch.setenv("PATH", str(other))
    assert find_syncd() == str(ours / "syncd")
    (ours / "syncd").unlink()
    assert find_syncd() == str(other / "syncd")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(SyncdError, match="cannot find the syncd executable"):
        find_syncd()


def test_unsupported_platform_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="Linux"):
        service.plan_install(platform="win32")


def test_relative_syncd_path_is_refused() -> None:
    with pytest.raises(SyncdError, match="absolute"):
        service.plan_install(platform="linux", syncd_path="bin/syncd")


# --- install / uninstall / status against a stub systemctl or launchctl ------------------


def _systemctl(*args: str) -> list[str]:
    return ["systemctl", "--user", *args]


def test_install_dry_run_prints_the_unit_and_commands_and_changes_nothing(
    isolated_home: Path, stub: Stub
) -> None:
    plan = service.plan_install(platform="linux", home=isolated_home)
    text = service.format_plan(plan)
    assert plan.text is not None and plan.text in text
    assert "systemctl --user daemon-reload" in text
    assert "systemctl --user enable --now syncd.service" in text
    assert "journalctl --user -u syncd -f" in text and "loginctl enable-linger" in text
    assert not plan.unit_path.exists()
    assert stub.calls() == []


def test_install_writes_the_unit_and_enables_it(isolated_home: Path, stub: Stub) -> None:
    plan = service.plan_install(platform="linux", home=isolated_home)
    outcome = service.apply(plan)
    assert outcome.ok and outcome.unavailable is None
    unit = isolated_home / ".config" / "systemd" / "user" / UNIT_NAME
    assert unit.read_text() == render_unit(find_syncd())
    assert stub.calls() == [_systemctl("daemon-reload"), _systemctl("enable", "--now", UNIT_NAME)]
    text = service.format_outcome(outcome)
    assert f"Wrote {unit}" in text and "installed and started" in text
    assert "journalctl --user -u syncd -f" in text and "loginctl enable-linger $USER" in text


def test_reinstall_restarts_only_when_the_unit_changed(isolated_home: Path, stub: Stub) -> None:
    service.apply(service.plan_install(platform="linux", home=isolated_home))
    again = service.plan_install(platform="linux", home=isolated_home)
    assert _systemctl("try-restart", UNIT_NAME) not in [list(c) for c in again.commands]
    other = isolated_home / "newbin" / "syncd"
    other.parent.mkdir()
    other.write_text("#!/bin/sh\n")
    other.chmod(0o755)
    moved = service.plan_install(platform="linux", home=isolated_home, syncd_path=str(other))
    assert service.apply(moved).ok
    assert stub.calls()[-1] == _systemctl("try-restart", UNIT_NAME)


def test_install_without_a_user_manager_writes_the_unit_and_warns(
    isolated_home: Path, stub: Stub
) -> None:
    stub.answer(**{"*": (1, "", NO_BUS + "\n")})
    plan = service.plan_install(platform="linux", home=isolated_home)
    outcome = service.apply(plan)
    assert outcome.ok, "no user manager is a warning, not a failure"
    assert plan.unit_path.is_file()
    assert outcome.unavailable == NO_BUS
    assert [list(argv) for argv in outcome.pending] == [list(c) for c in plan.commands]
    text = service.format_outcome(outcome)
    assert "warning:" in text and NO_BUS in text
    assert "  systemctl --user enable --now syncd.service" in text


def test_install_without_a_user_manager_after_systemctl_did_the_file_part(
    isolated_home: Path, stub: Stub
) -> None:
    """Real systemctl 252 in a container: enable links the unit offline, then fails to start it."""
    link = "Created symlink /x/default.target.wants/syncd.service -> /x/syncd.service.\n"
    stub.answer(enable=(1, "", link + NO_BUS + "\n"), **{"daemon-reload": (1, "", NO_BUS)})
    outcome = service.apply(service.plan_install(platform="linux", home=isolated_home))
    assert outcome.ok and outcome.unavailable == NO_BUS
    assert outcome.pending[-1] == ("systemctl", "--user", "enable", "--now", UNIT_NAME)


def test_install_without_systemctl_at_all_warns(
    isolated_home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "nothing-here"))
    outcome = service.apply(service.plan_install(platform="linux", home=isolated_home))
    assert outcome.ok and outcome.unavailable and "not found" in outcome.unavailable


def test_install_reports_a_service_that_fails_to_start(isolated_home: Path, stub: Stub) -> None:
    job = "Job for syncd.service failed because the control process exited with error code."
    stub.answer(enable=(1, "", job + "\nSee journalctl\n"))
    outcome = service.apply(service.plan_install(platform="linux", home=isolated_home))
    assert not outcome.ok
    assert outcome.error is not None and job in outcome.error
    assert "journalctl --user -u syncd" in service.format_outcome(outcome)


def test_uninstall_disables_and_removes_the_unit(isolated_home: Path, stub: Stub) -> None:
    plan = service.plan_install(platform="linux", home=isolated_home)
    service.apply(plan)
    wants = plan.unit_path.parent / "default.target.wants" / UNIT_NAME
    wants.parent.mkdir()
    wants.symlink_to(plan.unit_path)  # what a real `enable` leaves behind
    before = len(stub.calls())
    outcome = service.apply(service.plan_uninstall(platform="linux", home=isolated_home))
    assert outcome.ok
    assert stub.calls()[before:] == [
        _systemctl("disable", "--now", UNIT_NAME),
        _systemctl("daemon-reload"),
    ]
    assert not plan.unit_path.exists() and not wants.is_symlink()
    assert "removed" in service.format_outcome(outcome)


def test_uninstall_without_a_user_manager_still_removes_the_files(
    isolated_home: Path, stub: Stub
) -> None:
    plan = service.plan_install(platform="linux", home=isolated_home)
    service.apply(plan)
    wants = plan.unit_path.parent / "default.target.wants" / UNIT_NAME
    wants.parent.mkdir()
    wants.symlink_to(plan.unit_path)
    stub.answer(**{"*": (1, "", NO_BUS + "\n")})
    outcome = service.apply(service.plan_uninstall(platform="linux", home=isolated_home))
    assert outcome.ok and outcome.unavailable == NO_BUS
    assert not plan.unit_path.exists() and not wants.is_symlink()
    text = service.format_outcome(outcome)
    assert (
        "The file is removed" in text and "  systemctl --user disable --now syncd.service" in text
    )


def test_uninstall_when_not_installed_does_nothing(isolated_home: Path, stub: Stub) -> None:
    plan = service.plan_uninstall(platform="linux", home=isolated_home)
    outcome = service.apply(plan)
    assert outcome.ok and plan.steps == () and stub.calls() == []
    assert "not installed" in service.format_outcome(outcome)


def _state_with_successes(state_dir: Path, *times: datetime | None) -> Path:
    providers = {
        f"p{i}": {"last_success": t.isoformat() if t else None, "managed": {}}
        for i, t in enumerate(times)
    }
    path = state_dir / "state.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"version": 1, "targets": {"/x/opencode.json": providers}}))
    return path


def test_status_reports_installed_enabled_active_and_last_cycle(
    isolated_home: Path, stub: Stub, tmp_path: Path
) -> None:
    service.apply(service.plan_install(platform="linux", home=isolated_home))
    now = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)
    newest = now - timedelta(minutes=3)
    state = _state_with_successes(tmp_path / "state", now - timedelta(hours=2), newest, None)
    stub.answer(**{"is-enabled": (0, "enabled\n", ""), "is-active": (0, "active\n", "")})
    status = service_status(platform="linux", home=isolated_home, state_file=state)
    assert status.installed and status.enabled and status.active and status.running
    assert status.program == find_syncd() and status.program_exists
    assert status.last_cycle == newest
    text = format_status(status, now=now)
    assert "enabled: yes" in text and "active: active" in text
    assert f"last successful sync: {newest.isoformat(timespec='seconds')} (3 min ago)" in text
    assert stub.calls()[-2:] == [
        _systemctl("is-enabled", UNIT_NAME),
        _systemctl("is-active", UNIT_NAME),
    ]


def test_status_of_a_failed_service_points_at_the_journal(isolated_home: Path, stub: Stub) -> None:
    service.apply(service.plan_install(platform="linux", home=isolated_home))
    stub.answer(**{"is-enabled": (0, "enabled\n", ""), "is-active": (3, "failed\n", "")})
    status = service_status(platform="linux", home=isolated_home)
    assert status.enabled and status.active is False and status.state == "failed"
    assert not status.running
    assert "journalctl --user -u syncd" in format_status(status)


def test_status_without_a_user_manager_says_unknown(isolated_home: Path, stub: Stub) -> None:
    service.apply(service.plan_install(platform="linux", home=isolated_home))
    stub.answer(**{"*": (1, "", NO_BUS + "\n")})
    status = service_status(platform="linux", home=isolated_home)
    assert status.installed and status.enabled is None and status.active is None
    assert status.unavailable == NO_BUS
    text = format_status(status)
    assert "enabled: unknown" in text and NO_BUS in text


def test_status_when_not_installed_asks_nobody(isolated_home: Path, stub: Stub) -> None:
    status = service_status(platform="linux", home=isolated_home)
    assert not status.installed and not status.running and stub.calls() == []
    assert "syncd service install" in format_status(status)
    assert "never" in format_status(status)


def test_status_notices_a_unit_whose_program_is_gone(
    isolated_home: Path, stub: Stub, fake_syncd: str
) -> None:
    plan = service.plan_install(platform="linux", home=isolated_home, syncd_path=fake_syncd)
    service.apply(plan)
    assert service_status(platform="linux", home=isolated_home).program == fake_syncd
    os.unlink(fake_syncd)
    status = service_status(platform="linux", home=isolated_home)
    assert status.program_exists is False
    assert "no longer exists" in format_status(status)


@pytest.mark.parametrize("content", [b"{not json", b"\xff\xfe", b"[]", b'{"last_success": 7}'])
def test_status_tolerates_a_bad_state_file(
    isolated_home: Path, stub: Stub, tmp_path: Path, content: bytes
) -> None:
    state = tmp_path / "state.json"
    state.write_bytes(content)
    status = service_status(platform="linux", home=isolated_home, state_file=state)
    assert status.last_cycle is None
    assert (status.state_error is not None) == content.startswith((b"{not", b"\xff"))


def test_status_reads_the_state_file_from_the_state_dir(
    isolated_home: Path, stub: Stub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    when = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    monkeypatch.setenv("SYNCD_STATE_DIR", str(tmp_path / "st"))
    _state_with_successes(tmp_path / "st", when)
    assert service_status(platform="linux", home=isolated_home).last_cycle == when


def test_launchd_install_bootstraps_the_agent(isolated_home: Path, stub: Stub) -> None:
    stub.answer(bootout=(113, "", "Boot-out failed: 113: Could not find service\n"))
    plan = service.plan_install(platform="darwin", home=isolated_home, uid=501)
    outcome = service.apply(plan)
    assert outcome.ok, outcome.error
    plist = isolated_home / "Library" / "LaunchAgents" / PLIST_NAME
    assert plistlib.loads(plist.read_bytes())["Label"] == AGENT_LABEL
    assert (isolated_home / "Library" / "Logs" / "syncd").is_dir()
    assert stub.calls() == [
        ["launchctl", "bootout", f"gui/501/{AGENT_LABEL}"],
        ["launchctl", "enable", f"gui/501/{AGENT_LABEL}"],
        ["launchctl", "bootstrap", "gui/501", str(plist)],
    ]
    assert "Library/Logs/syncd/syncd.err.log" in service.format_outcome(outcome)


def test_launchd_status_and_uninstall(isolated_home: Path, stub: Stub) -> None:
    service.apply(service.plan_install(platform="darwin", home=isolated_home, uid=501))
    printed = f"gui/501/{AGENT_LABEL} = {{\n\tactive count = 1\n\tstate = running\n\tpid = 42\n}}\n"
    stub.answer(print=(0, printed, ""))
    status = service_status(platform="darwin", home=isolated_home, uid=501)
    assert status.running and status.state == "running" and status.program == find_syncd()
    before = len(stub.calls())
    outcome = service.apply(service.plan_uninstall(platform="darwin", home=isolated_home, uid=501))
    assert outcome.ok and not status.unit_path.exists()
    assert stub.calls()[before:] == [["launchctl", "bootout", f"gui/501/{AGENT_LABEL}"]]
    stub.answer(print=(113, "", "Could not find service\n"))
    assert not service_status(platform="darwin", home=isolated_home, uid=501).installed


def test_status_with_a_hung_service_manager_says_unknown_instead_of_crashing(
    isolated_home: Path, stub: Stub
) -> None:
    service.apply(service.plan_install(platform="linux", home=isolated_home))

    def hung(argv: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
        raise subprocess.TimeoutExpired(argv, float(str(kw["timeout"])))

    status = service_status(platform="linux", home=isolated_home, runner=hung)
    assert status.installed and status.enabled is None and status.active is None
    assert status.unavailable is not None and "did not answer" in status.unavailable
    assert "enabled: unknown" in format_status(status)
