"""Notifications through the real CLI: a sync that adds models sends exactly one message per sink."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fakes import FakeProvider

Received = list[tuple[str, dict[str, str], bytes]]


class _Hook(BaseHTTPRequestHandler):
    received: Received

    def do_POST(self) -> None:  # noqa: N802  (http.server's naming)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.received.append((self.path, dict(self.headers), body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def hooks() -> Iterator[tuple[str, Received]]:
    received: Received = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), type("H", (_Hook,), {"received": received}))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", received
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def sinks(tmp_path: Path, hooks: tuple[str, Received]) -> dict[str, Any]:
    """A settings file with every sink: JSON and ntfy webhooks, a command, a notify-send on PATH."""
    url, received = hooks
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, script in (
        ("notify-send", f'#!/bin/sh\nprintf "%s\\0" "$@" >> {tmp_path}/desktop.argv\n'),
        ("record-batch", f"#!/bin/sh\ncat >> {tmp_path}/command.stdin\necho >> {tmp_path}/command.stdin\n"),
    ):
        path = bin_dir / name
        path.write_text(script)
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    settings = tmp_path / "config.json5"
    settings.write_text(
        "{detect: false, notify: {desktop: true, command: ['record-batch'], webhook: ["
        f"'{url}/json', {{url: '{url}/topic', format: 'ntfy'}}]}}}}\n"
    )
    env = {
        **os.environ,
        "SYNCD_CONFIG": str(settings),
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "DBUS_SESSION_BUS_ADDRESS": "unix:path=/dev/null",  # the desktop probe wants a session bus
    }
    return {"env": env, "received": received, "dir": tmp_path}


def _target(isolated_home: Path, fake: FakeProvider) -> Path:
    config = isolated_home / ".config" / "opencode" / "opencode.jsonc"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(
        '{\n  "provider": {\n    "ollama": {\n      "npm": "@ai-sdk/openai-compatible",\n'
        f'      "options": {{ "baseURL": "{fake.base_url}" }},\n      "models": {{}}\n    }}\n  }}\n}}\n'
    )
    return config


def _once(env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "syncd", "once", *extra], env=env,
                          capture_output=True, text=True, timeout=60)


def _command_batches(directory: Path) -> list[dict[str, Any]]:
    path = directory / "command.stdin"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _desktop_calls(directory: Path) -> int:
    path = directory / "desktop.argv"
    return path.read_bytes().count(b"Restart OpenCode") if path.exists() else 0


def test_once_that_adds_models_sends_one_message_to_every_sink(
    isolated_home: Path, fake_provider: Callable[..., FakeProvider], sinks: dict[str, Any]
) -> None:
    fake = fake_provider("ollama")
    _target(isolated_home, fake)
    done = _once(sinks["env"])
    assert done.returncode == 0, done.stderr

    by_path: dict[str, list[tuple[dict[str, str], bytes]]] = {}
    for path, headers, body in sinks["received"]:
        by_path.setdefault(path, []).append((headers, body))
    ((_, json_body),) = by_path["/json"]
    batch = json.loads(json_body)
    added = [e for e in batch["events"] if e["type"] == "added"]
    assert {m for e in added for m in e["models"]} == {"qwen3-coder:30b", "gemma3:4b"}
    ((ntfy_headers, ntfy_body),) = by_path["/topic"]
    assert ntfy_body.decode() == batch["body"] and "Restart OpenCode" in batch["body"]
    assert ntfy_headers["Title"] == batch["title"]
    assert _command_batches(sinks["dir"]) == [batch]
    assert _desktop_calls(sinks["dir"]) == 1


def test_once_with_nothing_new_or_with_no_notify_sends_nothing(
    isolated_home: Path, fake_provider: Callable[..., FakeProvider], sinks: dict[str, Any]
) -> None:
    fake = fake_provider("ollama")
    _target(isolated_home, fake)
    assert _once(sinks["env"], "--no-notify").returncode == 0  # adds the models, silently
    fake.models.append({"id": "late:7b", "context": 32768, "tools": True})
    assert _once(sinks["env"], "--no-notify").returncode == 0
    assert _once(sinks["env"]).returncode == 0  # nothing changed since
    assert sinks["received"] == [] and _command_batches(sinks["dir"]) == []
    assert _desktop_calls(sinks["dir"]) == 0


def test_daemon_notifies_when_a_model_is_pulled_upstream(
    isolated_home: Path, fake_provider: Callable[..., FakeProvider], sinks: dict[str, Any]
) -> None:
    fake = fake_provider("ollama")
    _target(isolated_home, fake)
    settings = Path(sinks["env"]["SYNCD_CONFIG"])
    fast = settings.read_text().replace("{detect: false,", "{detect: false, local_interval: '1s',")
    settings.write_text(fast)
    daemon = subprocess.Popen([sys.executable, "-m", "syncd", "run", "--log-format", "json"],
                              env=sinks["env"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while len(_command_batches(sinks["dir"])) < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        fake.models.append({"id": "pulled:8b", "context": 65536, "tools": True})
        while len(_command_batches(sinks["dir"])) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)
    first, second = _command_batches(sinks["dir"])[:2]
    assert "qwen3-coder:30b" in first["body"]
    assert [m for e in second["events"] for m in e["models"]] == ["pulled:8b"]
