"""The service's environment: the {env:VAR} the providers read, recorded 0600 for the unit and `syncd run`."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncd import paths
from syncd.cli.service_env import record_env, tty_ask, variables_used
from syncd.doctor.checks import Status, TargetInfo
from syncd.doctor.environment import check_service_env
from syncd.errors import UsageError
from syncd.providers.envrefs import env_uses
from syncd.service import envfile
from syncd.service.files import Manager, find_syncd
from syncd.service.status import ServiceStatus

SECRET = "sk-live-1234'\"$HOME`x\\y"  # quotes, $, backtick, backslash: must survive as they are


def config(providers: dict[str, Any]) -> Path:
    folder = paths.opencode_config_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "opencode.jsonc"
    path.write_text(json.dumps({"provider": providers}, indent=2))
    return path


def block(base_url: str = "http://127.0.0.1:9/v1", **options: Any) -> dict[str, Any]:
    return {"npm": "@ai-sdk/openai-compatible", "options": {"baseURL": base_url, **options}}


# --- which variables -----------------------------------------------------------------------------


def test_every_variable_a_provider_block_reads_is_found() -> None:
    data = {"provider": {
        "gw": block("{env:GW_URL}/v1", apiKey="{env:GW_KEY}", headers={"X-Team": "t-{env:TEAM}"}),
        "solo": {**block(), "env": ["SOLO_KEY"]},  # OpenCode's one-name `env`, read without apiKey
        "logged": {**block(), "env": ["NOT_READ"]},  # auth.json has its key: `env` is not read
        "builtin": {"options": {"apiKey": "{env:NOT_CUSTOM}"}},  # no baseURL: not syncd's
    }}
    uses = env_uses(Path("/c.json"), data, {"logged": {"type": "api", "key": "k"}})
    assert [(u.var, u.provider, u.where) for u in uses] == [
        ("GW_URL", "gw", "options.baseURL"), ("GW_KEY", "gw", "options.apiKey"),
        ("TEAM", "gw", "options.headers.X-Team"), ("SOLO_KEY", "solo", "env")]


# --- the file ------------------------------------------------------------------------------------


@given(st.text(alphabet=st.characters(blacklist_characters="\n\r\0", blacklist_categories=("Cs",))))
def test_any_one_line_value_reads_back_as_written(value: str) -> None:
    assert envfile.parse(envfile.line_for("KEY", value)) == {"KEY": value}


def test_values_that_span_lines_are_refused() -> None:
    with pytest.raises(ValueError, match="spans lines"):
        envfile.line_for("KEY", "a\nb")


def test_recording_keeps_other_lines_and_makes_the_file_private(tmp_path: Path) -> None:
    path = tmp_path / "syncd" / "env"
    path.parent.mkdir()
    path.write_text("# mine\nOTHER=kept\nGW_KEY=old\n")
    path.chmod(0o644)
    assert envfile.record(path, {"GW_KEY": SECRET, "NEW": "n"})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().startswith("# mine\nOTHER=kept\nGW_KEY=")
    assert envfile.read_env_file(path) == {"OTHER": "kept", "GW_KEY": SECRET, "NEW": "n"}
    assert not envfile.record(path, {"GW_KEY": SECRET})  # nothing to change: not rewritten


def test_syncd_run_loads_only_what_its_environment_lacks(tmp_path: Path) -> None:
    path = tmp_path / "env"
    envfile.record(path, {"A": "from file", "B": "from file"})
    environ = {"A": "from the shell"}
    assert envfile.load_into(environ, path) == ["B"]
    assert environ == {"A": "from the shell", "B": "from file"}


def test_syncd_run_reads_the_recorded_keys_as_a_launchd_agent_needs(fake_provider: Any) -> None:
    """launchd has no EnvironmentFile: the daemon itself reads the file, so a keyed provider
    written as {env:GW_KEY} syncs although the daemon's environment lacks the key."""
    import signal

    from fakes import wait_until

    from syncd import jsonc

    fake = fake_provider("openai", api_key="sk-recorded")
    target = config({"gw": block(fake.base_url, apiKey="{env:GW_KEY}")})
    envfile.record(paths.service_env_file(), {"GW_KEY": "sk-recorded"})
    env = {k: v for k, v in os.environ.items() if k != "GW_KEY"}
    env["SYNCD_DETECT_PORTS"] = "0,0,0"
    proc = subprocess.Popen([sys.executable, "-m", "syncd", "run", "--log-format", "json"], env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    try:
        synced = wait_until(lambda: bool(jsonc.parse(target.read_text())["provider"]["gw"].get("models")),
                            timeout=30)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    assert synced, err[-2000:]
    assert "service environment loaded" in err and "sk-recorded" not in err


# --- choosing what to record ------------------------------------------------------------------------


def _uses() -> dict[str, list[Any]]:
    config({"gw": block(apiKey="{env:GW_KEY}"), "other": block(apiKey="{env:OTHER_KEY}"),
            "gone": block(apiKey="{env:UNSET_KEY}")})
    return variables_used()


def test_only_the_variables_asked_for_are_recorded_and_no_value_is_shown() -> None:
    environ = {"GW_KEY": SECRET, "OTHER_KEY": "sk-other", "UNRELATED": "x"}
    out = record_env(_uses(), environ, only=["GW_KEY"])
    path = paths.service_env_file()
    assert envfile.read_env_file(path) == {"GW_KEY": SECRET}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = "\n".join(out.lines)
    assert SECRET not in text and "sk-other" not in text
    assert "--env OTHER_KEY" in text and "UNSET_KEY" in text and out.changed


def test_all_env_records_every_variable_set_here() -> None:
    record_env(_uses(), {"GW_KEY": "a", "OTHER_KEY": "b", "UNRELATED": "x"}, every=True)
    assert envfile.read_env_file(paths.service_env_file()) == {"GW_KEY": "a", "OTHER_KEY": "b"}


def test_on_a_terminal_each_variable_is_asked_for() -> None:
    asked: list[str] = []

    def ask(question: str) -> bool:
        asked.append(question)
        return "GW_KEY" in question

    record_env(_uses(), {"GW_KEY": "a", "OTHER_KEY": "b"}, ask=ask)
    assert len(asked) == 2 and all("a" not in q.split("?")[-1] for q in asked)
    assert envfile.read_env_file(paths.service_env_file()) == {"GW_KEY": "a"}


def test_without_a_terminal_nothing_is_asked_or_recorded() -> None:
    assert tty_ask(False) is None
    out = record_env(_uses(), {"GW_KEY": "a"}, ask=tty_ask(False))
    assert not paths.service_env_file().exists() and not out.changed
    assert any("--env GW_KEY" in line for line in out.lines)


def test_a_prompt_that_reads_end_of_file_means_no() -> None:
    def closed(_: str) -> str:
        raise EOFError

    ask = tty_ask(True, prompt=closed)
    assert ask is not None and ask("Record? ") is False


def test_env_for_a_variable_not_set_here_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="UNSET_KEY: it is not set"):
        record_env(_uses(), {}, only=["UNSET_KEY"])
    assert not paths.service_env_file().exists()


def test_dry_run_records_nothing() -> None:
    out = record_env(_uses(), {"GW_KEY": "a"}, every=True, dry_run=True)
    assert not paths.service_env_file().exists()
    assert out.lines[0].startswith("would record GW_KEY")


# --- install end to end, with a stub systemctl -------------------------------------------------------

STUB = """#!{python}
import json, os, re, stat, sys
args = sys.argv[1:]
seen = {{"argv": args}}
if "daemon-reload" in args:  # what systemd would load now: the unit and the file it names
    unit = os.path.join(os.environ["XDG_CONFIG_HOME"], "systemd", "user", "syncd.service")
    line = re.search(r"^EnvironmentFile=-(.+)$", open(unit).read(), re.M).group(1)
    seen["env_file"] = line
    if os.path.exists(line):  # the leading "-": systemd starts the service without it
        seen["mode"] = oct(stat.S_IMODE(os.stat(line).st_mode))
        seen["names"] = sorted(l.split("=", 1)[0] for l in open(line) if "=" in l and l[0] != "#")
with open(os.environ["STUB_LOG"], "a") as log:
    log.write(json.dumps(seen) + "\\n")
"""


def _install(tmp_path: Path, *args: str, env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str],
                                                                          list[dict[str, Any]]]:
    bindir = tmp_path / "stubbin"
    bindir.mkdir(exist_ok=True)
    (bindir / "systemctl").write_text(STUB.format(python=sys.executable))
    (bindir / "systemctl").chmod(0o755)
    log = tmp_path / "calls.jsonl"
    full = {**os.environ, **env, "STUB_LOG": str(log),
            "PATH": f"{bindir}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    out = subprocess.run([sys.executable, "-m", "syncd", "service", "install", *args], env=full,
                         stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, check=False)
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return out, calls


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the systemd unit")
def test_install_records_the_asked_variable_and_the_unit_reads_that_file(tmp_path: Path) -> None:
    _uses()
    out, calls = _install(tmp_path, "--env", "GW_KEY",
                          env={"GW_KEY": SECRET, "OTHER_KEY": "sk-other", "UNRELATED": "u"})
    assert out.returncode == 0, out.stderr
    path = paths.service_env_file()
    assert envfile.read_env_file(path) == {"GW_KEY": SECRET}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert SECRET not in out.stdout + out.stderr and "sk-other" not in out.stdout + out.stderr
    reload = next(c for c in calls if "daemon-reload" in c["argv"])
    assert reload["env_file"] == str(path) and reload["mode"] == "0o600"
    assert reload["names"] == ["GW_KEY"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the systemd unit")
def test_install_without_a_terminal_neither_waits_nor_records(tmp_path: Path) -> None:
    _uses()
    out, _ = _install(tmp_path, env={"GW_KEY": SECRET})
    assert out.returncode == 0, out.stderr
    assert not paths.service_env_file().exists()
    assert "syncd service install --env GW_KEY" in out.stderr


def test_env_flags_belong_to_install() -> None:
    from syncd.cli.main import main

    assert main(["service", "status", "--no-env"]) == 2


# --- doctor ------------------------------------------------------------------------------------------


def _status(installed: bool = True) -> ServiceStatus:
    return ServiceStatus(Manager.SYSTEMD, Path("/u/syncd.service"), installed, None, None, True, True,
                         "active", None, Path("/s/state.json"), None, None)


def _infos() -> list[TargetInfo]:
    data = {"provider": {"gw": block(apiKey="{env:GW_KEY}")}}
    return [TargetInfo(Path("/c/opencode.jsonc"), data)]


def test_doctor_fails_a_variable_the_service_cannot_see(tmp_path: Path) -> None:
    (check,) = check_service_env(_infos(), {}, _status(), None, tmp_path / "env")
    assert check.status is Status.FAIL and "GW_KEY" in check.message
    assert "syncd service install --env GW_KEY" in check.fix


def test_doctor_passes_a_variable_in_the_env_file_or_the_managers_environment(tmp_path: Path) -> None:
    path = tmp_path / "env"
    envfile.record(path, {"GW_KEY": SECRET})
    (check,) = check_service_env(_infos(), {}, _status(), None, path)
    assert check.status is Status.OK and SECRET not in check.message
    (check,) = check_service_env(_infos(), {}, _status(), {"GW_KEY"}, tmp_path / "none")
    assert check.status is Status.OK


def test_doctor_fails_an_env_file_others_can_read(tmp_path: Path) -> None:
    path = tmp_path / "env"
    envfile.record(path, {"GW_KEY": "k"})
    path.chmod(0o644)
    checks = check_service_env(_infos(), {}, _status(), None, path)
    assert [c.status for c in checks] == [Status.FAIL] and "chmod 600" in checks[0].fix


def test_doctor_does_not_fail_the_env_of_a_service_not_installed(tmp_path: Path) -> None:
    (check,) = check_service_env(_infos(), {}, _status(installed=False), None, tmp_path / "env")
    assert check.status is Status.OK and "1 of them not recorded" in check.message


# --- installs that exist ------------------------------------------------------------------------------


def test_find_syncd_finds_a_pip_user_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`pip install --user`: the script is in the user base's bin, neither beside the interpreter
    nor (often) on PATH."""
    interpreter = tmp_path / "usr" / "bin"
    interpreter.mkdir(parents=True)
    user_bin = tmp_path / "userbase" / "bin"
    user_bin.mkdir(parents=True)
    (user_bin / "syncd").write_text("#!/bin/sh\n")
    (user_bin / "syncd").chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(interpreter / "python3"))
    monkeypatch.setenv("PYTHONUSERBASE", str(tmp_path / "userbase"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    import sysconfig

    monkeypatch.setattr(sysconfig, "_CONFIG_VARS", None)  # the user base is read once per process
    assert find_syncd() == str(user_bin / "syncd")


def test_the_missing_syncd_message_suggests_installs_that_exist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from syncd.errors import SyncdError

    monkeypatch.setattr(sys, "executable", str(tmp_path / "python3"))
    monkeypatch.setenv("PYTHONUSERBASE", str(tmp_path / "nothing"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(sys, "argv", ["/x/python3"])
    import sysconfig

    monkeypatch.setattr(sysconfig, "_CONFIG_VARS", None)
    with pytest.raises(SyncdError) as err:
        find_syncd()
    assert "pipx install opencode-syncd" not in str(err.value)
    assert "pipx install ." in str(err.value) and ".whl" in str(err.value)
