"""Secrets: API keys from auth.json, options.apiKey and {env:} never reach logs, notices, state or --json."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from fakes import FakeProvider, wait_until
from reliability_kit import syncd_cli, write_settings

from syncd import paths

KEYS = {
    "authjson": "sk-authjson-0f9e8d7c6b5a49382716",
    "literal": "sk-literal-1a2b3c4d5e6f7a8b9c0d",
    "envvar": "sk-envvar-99887766554433221100",
}
ENV_NAME = "SYNCD_RELIABILITY_KEY"


class EchoingFake(FakeProvider):
    """A gateway that quotes the key it was sent in its error, as some real ones do."""

    def __init__(self, status: int) -> None:
        super().__init__("openai", [])
        self.status = status

    def authorised(self, headers: dict[str, str], query: dict[str, list[str]]) -> bool:
        return True

    def route(self, method: str, path: str, query: dict[str, list[str]],
              body: bytes) -> tuple[int, Any]:
        sent = self.requests[-1].headers.get("authorization", "")
        return self.status, {"error": {"message": f"Incorrect API key provided: {sent}",
                                       "key": sent.removeprefix("Bearer ")}}


def config(urls: dict[str, str]) -> str:
    return json.dumps({"provider": {
        "authjson": {"npm": "@ai-sdk/openai-compatible", "options": {"baseURL": urls["authjson"]},
                     "models": {}},
        "literal": {"npm": "@ai-sdk/openai-compatible",
                    "options": {"baseURL": urls["literal"], "apiKey": KEYS["literal"]}, "models": {}},
        "envvar": {"npm": "@ai-sdk/openai-compatible",
                   "options": {"baseURL": urls["envvar"], "apiKey": "{env:" + ENV_NAME + "}"},
                   "models": {}},
    }}, indent=2)


def leaks(text: str) -> list[str]:
    return [name for name, key in KEYS.items() if key in text or key[-12:] in text]


def every_file(*folders: Path) -> list[Path]:
    return [p for f in folders if f.is_dir() for p in sorted(f.rglob("*")) if p.is_file()]


@pytest.mark.slow
def test_api_keys_appear_in_no_output_file_or_notification(tmp_path: Path) -> None:
    good = FakeProvider("openai", api_key=KEYS["authjson"])  # a success, so that a backup is made
    bad401, bad200 = EchoingFake(401), EchoingFake(200)
    try:
        urls = {"authjson": good.base_url, "literal": bad401.base_url, "envvar": bad200.base_url}
        auth = paths.opencode_auth_file()
        auth.parent.mkdir(parents=True, exist_ok=True)
        auth.write_text(json.dumps({"authjson": {"type": "api", "key": KEYS["authjson"]}}))
        auth.chmod(0o600)
        sink = tmp_path / "notices.jsonl"
        recorder = tmp_path / "record-notice"
        recorder.write_text(f"#!/bin/sh\ncat >> {sink}\necho >> {sink}\n")
        recorder.chmod(0o755)
        settings = write_settings(tmp_path, f"notify: {{ desktop: false, command: ['{recorder}'] }}")
        env = {"SYNCD_CONFIG": str(settings), ENV_NAME: KEYS["envvar"]}
        target = tmp_path / "opencode.json"
        target.write_text(config(urls))

        seen: list[str] = []
        for _ in range(3):  # the third failure in a row notifies "provider unreachable"
            out = syncd_cli("once", "--config", str(target), "--json", env=env)  # notifying
            seen += [out.stdout, out.stderr]
            assert out.returncode == 1, out.stderr  # two providers fail, the rest is done
        doc = json.loads(out.stdout)
        status = {p["id"]: p["status"] for p in doc["targets"][0]["providers"]}
        assert status == {"authjson": "ok", "literal": "error", "envvar": "error"}
        assert bad401.requests and bad200.requests, "the keys were never sent"
        sent = {r.headers.get("authorization") for r in bad401.requests + bad200.requests}
        assert {f"Bearer {KEYS['literal']}", f"Bearer {KEYS['envvar']}"} <= sent
        assert wait_until(lambda: sink.exists() and sink.read_text().strip() != "", 10)
        seen.append(sink.read_text())
        seen.append(syncd_cli("status", "--json", env=env).stdout)

        daemon = subprocess.Popen(
            [sys.executable, "-m", "syncd", "run", "-vv", "--log-format", "json",
             "--config", str(target)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "SYNCD_DETECT_PORTS": "0,0,0", **env},
        )
        try:
            n = len(bad401.requests)
            assert wait_until(lambda: len(bad401.requests) > n and len(bad200.requests) > 3, 20)
            time.sleep(0.5)  # let the cycle's log lines and notices out
        finally:
            daemon.send_signal(signal.SIGTERM)
            d_out, d_err = daemon.communicate(timeout=20)
        assert daemon.returncode == 0, d_err
        assert '"level": "debug"' in d_err, "the daemon did not log at debug level"
        seen += [d_out, d_err]

        state_dir = paths.state_dir()
        files = every_file(state_dir)
        assert any("backups" in p.parts for p in files), "no backup was made"
        for path in files:  # a backup is a copy of the user's file, key and all: hence its 0600
            if "backups" not in path.parts:
                seen.append(path.read_bytes().decode("utf-8", "replace"))
        for text in seen:
            assert leaks(text) == [], text[:2000]
        for path in files:
            if path.name.endswith(".lock"):
                continue
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        for folder in [state_dir, *[p for p in state_dir.rglob("*") if p.is_dir()]]:
            assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    finally:
        for fake in (good, bad401, bad200):
            fake.close()
