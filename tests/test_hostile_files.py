"""A hostile machine: named pipes, devices, absurd nesting, unusable state dirs, stale temp files.

Every case runs the real CLI in a subprocess with a deadline: a hang is a failure, not a stuck run.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from syncd import jsonc, paths
from tests.hostile import Servers, json_reply

DEEP = "[" * 200_000 + "]" * 200_000


@pytest.fixture
def servers() -> Iterator[Servers]:
    made = Servers()
    yield made
    made.close()


def syncd(*args: str, env: Mapping[str, str] | None = None,
          timeout: float = 60) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "SYNCD_DETECT_PORTS": "0,0,0", **(env or {})}
    return subprocess.run([sys.executable, "-m", "syncd", *args], capture_output=True, text=True,
                          env=full, timeout=timeout, check=False)


def target(path: Path, url: str, **options: str) -> Path:
    path.write_text(json.dumps({"provider": {"gw": {
        "npm": "@ai-sdk/openai-compatible", "options": {"baseURL": url, **options}, "models": {}}}},
        indent=2))
    return path


def one_line_error(out: subprocess.CompletedProcess[str], *words: str, code: int = 1) -> str:
    """The run ended with exit `code` (1; 2 for the user's own settings) and a one-line error
    holding `words`, never exit 3."""
    assert out.returncode == code, (out.returncode, out.stdout, out.stderr)
    text = " ".join((out.stdout + out.stderr).split())  # unwrapped
    assert "internal error" not in text and "Traceback" not in text, text
    for word in words:
        assert word in text, text
    return text


@pytest.fixture
def served(servers: Servers) -> str:
    return servers(lambda r: json_reply({"data": [{"id": "m1"}]})).url + "/v1"


# -- 9. named pipes never hang a run ------------------------------------------------------------

def test_a_named_pipe_as_the_config_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "opencode.json"
    os.mkfifo(fifo)
    one_line_error(syncd("once", "--config", str(fifo), "--no-notify"), str(fifo), "named pipe")
    doctor = syncd("doctor", "--config", str(fifo))
    assert "named pipe" in doctor.stdout and doctor.returncode == 1


def hostile_file(path: Path, kind: str) -> str:
    """Make `path` a named pipe, or a regular file nested 200,000 levels deep; the words an
    error about it must say."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "fifo":
        os.mkfifo(path)
        return "named pipe"
    path.write_text('{"gw": ' + DEEP + "}")
    path.chmod(0o600)
    return "nested too deeply"


@pytest.mark.parametrize("kind", ["fifo", "deep"])
def test_a_hostile_settings_file_is_a_settings_error(tmp_path: Path, served: str, kind: str) -> None:
    settings = tmp_path / "config.json5"
    words = hostile_file(settings, kind)
    cfg = target(tmp_path / "opencode.json", served)
    out = syncd("once", "--config", str(cfg), "--no-notify", env={"SYNCD_CONFIG": str(settings)})
    one_line_error(out, str(settings), words, code=2)


@pytest.mark.parametrize("kind", ["fifo", "deep"])
def test_a_hostile_auth_json_costs_nothing_and_doctor_names_it(tmp_path: Path, served: str,
                                                               kind: str) -> None:
    words = hostile_file(paths.opencode_auth_file(), kind)
    cfg = target(tmp_path / "opencode.json", served)
    out = syncd("once", "--config", str(cfg), "--no-notify")
    assert out.returncode == 0, out.stderr
    assert "m1" in jsonc.parse(cfg.read_text())["provider"]["gw"]["models"]
    doctor = syncd("doctor", "--config", str(cfg))
    assert "auth.json" in doctor.stdout and words in doctor.stdout


@pytest.mark.parametrize("special", ["fifo", "/dev/zero"])
def test_a_file_key_on_a_pipe_or_a_device_fails_its_provider_only(
    tmp_path: Path, served: str, special: str
) -> None:
    key = tmp_path / "key"
    if special == "fifo":
        os.mkfifo(key)
    else:
        key = Path(special)
    cfg = target(tmp_path / "opencode.json", served, apiKey=f"{{file:{key}}}")
    out = syncd("once", "--config", str(cfg), "--no-notify")
    one_line_error(out, f"{{file:{key}}}", "not a regular file")


def test_dev_zero_as_the_config_is_refused_not_read(tmp_path: Path) -> None:
    one_line_error(syncd("once", "--config", "/dev/zero", "--no-notify"), "/dev/zero",
                   "character device")


def test_the_daemon_refuses_a_named_pipe_and_stops_on_sigterm_when_one_appears(
    tmp_path: Path, served: str
) -> None:
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    refused = syncd("run", "--config", str(fifo), timeout=30)
    assert refused.returncode == 2 and "named pipe" in refused.stderr, refused.stderr
    cfg = target(tmp_path / "opencode.json", served)
    daemon = subprocess.Popen([sys.executable, "-m", "syncd", "run", "--config", str(cfg),
                               "--log-format", "json"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "SYNCD_DETECT_PORTS": "0,0,0"})
    try:
        deadline = time.monotonic() + 30
        while "m1" not in cfg.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        os.replace(fifo, cfg)  # the config becomes a named pipe under the running daemon
        time.sleep(3)  # the watcher saw it and every reader had its chance to block on it
        daemon.send_signal(signal.SIGTERM)
        _, err = daemon.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        daemon.kill()
        daemon.communicate()
        pytest.fail("syncd run ignored SIGTERM once its config became a named pipe")
    assert daemon.returncode == 0, err


# -- 10. nesting and devices: one-line errors, never exit 3 ------------------------------------

def test_absurd_nesting_in_the_state_file_is_a_one_line_error_and_the_file_is_kept() -> None:
    state = paths.state_dir() / "state.json"
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_text('{"version": 1, "targets": ' + DEEP + "}")
    before = state.read_bytes()
    one_line_error(syncd("status"), str(state), "nested too deeply")
    assert state.read_bytes() == before


@pytest.mark.parametrize(("where", "word"), [
    ("/sys/syncd-state", "/sys/syncd-state"),  # mkdir refused, even for root: EPERM
    ("/proc/syncd-state/x", "/proc/syncd-state"),  # a folder that cannot exist: ENOENT
    ("FILE/state", "state"),  # a path through a regular file: ENOTDIR
])
def test_a_state_dir_that_cannot_be_used_is_a_one_line_error(
    tmp_path: Path, served: str, where: str, word: str
) -> None:
    if where.startswith("FILE"):
        (tmp_path / "file").write_text("")
        where = str(tmp_path / "file") + where[4:]
    cfg = target(tmp_path / "opencode.json", served)
    env = {"SYNCD_STATE_DIR": where}
    one_line_error(syncd("once", "--config", str(cfg), "--no-notify", env=env), word, "SYNCD_STATE_DIR")
    daemon = syncd("run", "--config", str(cfg), env=env, timeout=30)
    one_line_error(daemon, word, "SYNCD_STATE_DIR")


# -- 13. smaller: stale temp files, a readable auth.json, hard links ------------------------------

def test_stale_temp_files_of_syncd_writes_are_removed_at_start(tmp_path: Path, served: str) -> None:
    state = paths.state_dir()
    (state / "backups" / "x").mkdir(parents=True)
    cfg = target(tmp_path / "opencode.json", served)
    stale = [state / ".fetch-cache.json.syncd-0a1b2c3d4e5f.tmp", state / ".state.json.syncd-a1.tmp",
             state / "backups" / "x" / ".20260101T000000.000000Z.json.syncd-b2.tmp",
             tmp_path / ".opencode.json.syncd-c3.tmp"]
    old = time.time() - 3600
    for path in stale:
        path.write_text("half")
        os.utime(path, (old, old))
    fresh = state / ".daemon.json.syncd-d4.tmp"  # a write in flight right now: not ours to remove
    fresh.write_text("in flight")
    mine = state / "notes.tmp"  # not a syncd temp file at all
    mine.write_text("mine")
    assert syncd("once", "--config", str(cfg), "--no-notify").returncode == 0
    assert [p for p in stale if p.exists()] == []
    assert fresh.exists() and mine.exists()


def test_doctor_warns_about_an_auth_json_others_can_read(tmp_path: Path, served: str) -> None:
    auth = paths.opencode_auth_file()
    auth.parent.mkdir(parents=True, exist_ok=True)
    auth.write_text(json.dumps({"gw": {"type": "api", "key": "sk-0123456789"}}))
    auth.chmod(0o644)
    cfg = target(tmp_path / "opencode.json", served)
    doctor = syncd("doctor", "--config", str(cfg))
    assert "readable by" in doctor.stdout and f"chmod 600 {auth}" in doctor.stdout.replace(
        str(Path.home()), "~").replace("~", str(Path.home()))
    auth.chmod(0o600)
    assert "readable by" not in syncd("doctor", "--config", str(cfg)).stdout


def test_a_hard_linked_config_is_not_split_from_its_other_name(tmp_path: Path, served: str) -> None:
    cfg = target(tmp_path / "opencode.json", served)
    other = tmp_path / "dotfiles-opencode.json"
    os.link(cfg, other)
    before = cfg.read_bytes()
    out = syncd("once", "--config", str(cfg), "--no-notify")
    one_line_error(out, "hard link", "symlink")
    assert cfg.read_bytes() == other.read_bytes() == before
    assert os.stat(cfg).st_ino == os.stat(other).st_ino and stat.S_ISREG(os.stat(cfg).st_mode)
