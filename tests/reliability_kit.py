"""Shared helpers of the reliability tests and the soak script: rotating fakes, configs, temp finders."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fakes import FakeProvider

HERE = Path(__file__).resolve().parent
USER_MODEL = "my-hand-added-model"
COMMENT = "// the user's own comment: syncd must keep it"
WINDOW = 4  # models served at once by a rotating fake


class RotatingFake(FakeProvider):
    """An openai-compatible fake whose list moves on one model per listing: each sync changes the file."""

    def __init__(self, window: int = WINDOW, prefix: str = "rot") -> None:
        super().__init__("openai", [])
        self.window = window
        self.prefix = prefix
        self.tick = 0
        self._tick_lock = threading.Lock()
        self.models = self.window_models(0)

    def window_ids(self, start: int) -> list[str]:
        return [f"{self.prefix}-{i:05d}" for i in range(start, start + self.window)]

    def window_models(self, start: int) -> list[dict[str, Any]]:
        return [{"id": mid, "context": 32768, "output": 4096} for mid in self.window_ids(start)]

    def route(self, method: str, path: str, query: dict[str, list[str]],
              body: bytes) -> tuple[int, Any]:
        if path == "/v1/models":
            with self._tick_lock:
                self.models = self.window_models(self.tick)
                self.tick += 1
        return super().route(method, path, query, body)

    def is_window(self, ids: set[str]) -> bool:
        """Whether `ids` is exactly what one complete sync leaves: one window of served IDs."""
        starts = {int(i.rsplit("-", 1)[1]) for i in ids if i.startswith(self.prefix + "-")}
        if len(starts) != len(ids) or not starts:
            return False
        low = min(starts)
        return ids == set(self.window_ids(low))


def target_text(providers: Mapping[str, str], *, user_model: bool = True) -> str:
    """A hand-written JSONC target with a comment, a user-owned model and a trailing comma."""
    blocks = []
    for pid, url in providers.items():
        models = f'"{USER_MODEL}": {{ "name": "Mine" }},' if user_model else ""
        blocks.append(
            f'    "{pid}": {{\n      {COMMENT}\n      "npm": "@ai-sdk/openai-compatible",\n'
            f'      "options": {{ "baseURL": "{url}" }},\n      "models": {{ {models} }}\n    }}'
        )
    return '{\n  /* block comment */\n  "provider": {\n' + ",\n".join(blocks) + "\n  },\n}\n"


def write_settings(folder: Path, body: str) -> Path:
    """A settings file; the caller points SYNCD_CONFIG at it."""
    path = folder / "syncd-settings.json5"
    path.write_text("{ detect: false, catalog: 'off', " + body + " }\n")
    return path


def temp_files(*folders: Path) -> list[Path]:
    """Temp files a writer may leave: dot-files ending in .tmp, anywhere under `folders`."""
    found: list[Path] = []
    for folder in folders:
        if folder.is_dir():
            found += [p for p in folder.rglob(".*") if p.is_file() and p.name.endswith(".tmp")]
    return sorted(found)


def syncd_cli(*args: str, env: Mapping[str, str] | None = None,
              timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The real CLI in a subprocess, with local-runtime probing off."""
    full = {**os.environ, "SYNCD_DETECT_PORTS": "0,0,0", **(env or {})}
    return subprocess.run([sys.executable, "-m", "syncd", *args], capture_output=True, text=True,
                          env=full, timeout=timeout, check=False)


def once_cmd(target: Path, *extra: str) -> list[str]:
    return ["once", "--config", str(target), "--no-notify", *extra]


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def comment_lines(text: str) -> list[str]:
    return [ln.strip() for ln in text.splitlines() if ln.strip().startswith(("//", "/*"))]


def spawn_loop(target: Path, env: Mapping[str, str] | None = None) -> subprocess.Popen[str]:
    """Start tests/reliability_sync_loop.py: a process that forks Engine.sync loops on demand."""
    return subprocess.Popen(
        [sys.executable, str(HERE / "reliability_sync_loop.py"), str(target)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
        env={**os.environ, **(env or {})},
    )


def ask(proc: subprocess.Popen[str], line: str) -> str:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(line + "\n")
    proc.stdin.flush()
    return proc.stdout.readline().strip()


def stop_loop(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    try:
        proc.stdin.write("quit\n")
        proc.stdin.close()
    except BrokenPipeError:
        pass
    proc.wait(timeout=10)
    if proc.stdout is not None:
        proc.stdout.close()


def ids_of(doc: Any, pid: str) -> set[str]:
    return set((doc["provider"][pid].get("models") or {}).keys())


def strip_models(doc: Any, pids: Sequence[str]) -> Any:
    """The document without the models objects of `pids` (what syncd must never change)."""
    import copy

    out = copy.deepcopy(doc)
    for pid in pids:
        out["provider"][pid].pop("models", None)
    return out
