"""Side by side with the closest peer (PyPI opencode-sync): same fixtures, same fake servers, one table.

Usage: bench/peers.py [--quick] [--json] [--peer-venv DIR]   (--quick never installs the peer)

The peer is installed into its own virtualenv (default bench/.peer-venv, gitignored), never
into syncd's. Each run gets a fresh HOME/XDG tree; servers are tests/fakes.py FakeProviders on
127.0.0.1. Both tools get the same timeout (their shared default of 10 s, 1 s with --quick).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402
from _common import REPO, Row, Run, emit, isolated_env, machine_line, median, run_measured, versus  # noqa: E402

_common.add_tests_to_path()
from syncd.jsonc import JsoncError, modify, parse  # noqa: E402
from tests.fakes import FakeProvider, default_models  # noqa: E402

PEER = "opencode-sync==0.5.0"
ALIAS_DIGEST = "d" * 64
EMBEDDINGS = {"nomic-embed-text:latest", "text-embedding-nomic-embed-text-v1.5"}


@dataclass(frozen=True)
class Tool:
    name: str
    argv: Callable[[Path], list[str]]


@dataclass(frozen=True)
class Ctx:
    quick: bool
    syncd: Tool
    peer: Tool | None
    peer_why: str  # why the peer column is n/a, when peer is None

    @property
    def timeout(self) -> int:
        return 1 if self.quick else 10

    def settings(self, **extra: Any) -> str:
        t = f'timeouts: {{ read: "{self.timeout}s", total: "{2 * self.timeout}s" }}' if self.quick else ""
        return "{ " + ", ".join([t] + [f"{k}: {v!r}" for k, v in extra.items()]).strip(", ") + " }"


def ensure_peer(venv: Path, install: bool = True) -> tuple[Path | None, str]:
    """The peer's entry point in its own venv, created and installed from PyPI when missing."""
    exe = venv / "bin" / "opencode-sync"
    if exe.exists():
        return exe, ""
    if not install:
        return None, "n/a: peer venv missing (run bench/peers.py once without --quick)"
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", PEER], check=True,
                       capture_output=True, timeout=300)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as e:
        return None, f"n/a: peer not installed ({type(e).__name__})"
    return (exe, "") if exe.exists() else (None, "n/a: peer not installed")


def make_tools(quick: bool, peer_exe: Path | None) -> tuple[Tool, Tool | None]:
    own = Path(sys.executable).parent / "syncd"
    base = [str(own)] if own.exists() else [sys.executable, "-m", "syncd"]
    syncd = Tool("syncd", lambda cfg: base + ["once", "--config", str(cfg), "--no-detect", "--no-notify"])
    if peer_exe is None:
        return syncd, None
    extra = ["--timeout", "1"] if quick else []
    return syncd, Tool("peer", lambda cfg: [str(peer_exe), "--config", str(cfg)] + extra)


class Home:
    """A throwaway HOME/XDG tree with one OpenCode config in it, for one tool in one scenario."""

    def __init__(self, text: str, settings: str) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="peers-")
        self.root = Path(self._tmp.name)
        self.cfg = self.root / ".config" / "opencode" / "opencode.jsonc"
        self.cfg.parent.mkdir(parents=True)
        self.cfg.write_text(text)
        (self.root / "syncd.json5").write_text(settings)
        self.env = isolated_env(self.root)

    def run(self, tool: Tool, timeout: float = 120) -> Run:
        return run_measured(tool.argv(self.cfg), self.env, timeout)

    def data(self) -> dict[str, Any] | None:
        try:
            value = parse(self.cfg.read_text())
        except JsoncError:
            return None
        return value if isinstance(value, dict) else None

    def models(self, pid: str) -> dict[str, Any]:
        return dict(((self.data() or {}).get("provider", {}).get(pid, {}) or {}).get("models") or {})

    def close(self) -> None:
        self._tmp.cleanup()


def block(pid: str, url: str, models: str = "{}", extra: str = "") -> str:
    return (f'    "{pid}": {{\n      "npm": "@ai-sdk/openai-compatible",\n'
            f'      "options": {{ "baseURL": "{url}"{extra} }},\n      "models": {models}\n    }}')


def config(*blocks: str) -> str:
    return ('{\n  "$schema": "https://opencode.ai/config.json",\n  "provider": {\n'
            + ",\n".join(blocks) + "\n  }\n}\n")


def hand_config(vllm: str, ollama: str) -> str:
    """A hand-edited config: 8 comments, a tuned entry, a hand-written entry, a default model."""
    return f'''{{
  "$schema": "https://opencode.ai/config.json",
  // C1 my local boxes
  "model": "vllm/qwen/qwen3-coder-30b",
  "provider": {{
    /* C2 vLLM on the workstation */
    "vllm": {{
      "npm": "@ai-sdk/openai-compatible",
      "name": "vLLM",
      "options": {{ "baseURL": "{vllm}" }}, // C3 port from the unit file
      "models": {{
        // C4 tuned by hand
        "qwen/qwen3-coder-30b": {{
          "name": "Qwen Coder (mine)", // C5 my label
          "limit": {{ "context": 200000, "output": 16000 }},
          "options": {{ "temperature": 0.6 }}
        }},
        "my-lora": {{ "name": "My LoRA" }} // C6 served while the adapter is loaded
      }}
    }},
    "ollama": {{
      "npm": "@ai-sdk/openai-compatible",
      "options": {{ "baseURL": "{ollama}" }},
      "models": {{}} // C7 filled by the tool
    }}
  }}
  // C8 end
}}
'''


HAND_PATHS = (("model",), ("provider", "vllm", "models", "qwen/qwen3-coder-30b", "name"),
              ("provider", "vllm", "models", "qwen/qwen3-coder-30b", "limit"),
              ("provider", "vllm", "models", "qwen/qwen3-coder-30b", "options"),
              ("provider", "vllm", "models", "my-lora"))


def dig(data: Any, path: Sequence[str]) -> Any:
    for key in path:
        data = data.get(key) if isinstance(data, dict) else None
    return data


def each_tool(ctx: Ctx, text: Callable[[], str], settings: str,
              body: Callable[[Tool, Home], Any]) -> dict[str, Any]:
    """Run `body` once per tool, each in its own fresh home with the same fixture text."""
    out: dict[str, Any] = {}
    for tool in (ctx.syncd, ctx.peer):
        if tool is None:
            continue
        home = Home(text(), settings)
        try:
            out[tool.name] = body(tool, home)
        finally:
            home.close()
    return out


def pair(ctx: Ctx, figure: str, target: str, got: dict[str, Any], better: str | None = None,
         unit: str = "", note: str = "", tol: float = 0.05, tol_abs: float = 0.0) -> Row:
    """A row from both tools' values (see `versus`); the peer column says why when it is n/a."""
    return versus(figure, target, got.get("syncd"), got.get("peer", ctx.peer_why), ctx.peer is not None,
                  better, unit, note, tol, tol_abs)


def first_sync(ctx: Ctx) -> list[Row]:
    vllm = FakeProvider("openai", variant="vllm")
    ollama = FakeProvider("ollama")
    ollama.models[0]["digest"] = ALIAS_DIGEST
    ollama.models.append(dict(ollama.models[0], id="qwen3-coder:latest"))
    try:
        original = parse(hand_config(vllm.base_url, ollama.base_url))

        def body(tool: Tool, home: Home) -> dict[str, Any]:
            run = home.run(tool)
            text, data = home.cfg.read_text(), home.data() or {}
            everything = {**home.models("vllm"), **home.models("ollama")}
            return {"rc": run.rc, "valid": home.data() is not None,
                    "comments": sum(f"C{i} " in text for i in range(1, 9)),
                    "hand": sum(dig(data, p) == dig(original, p) for p in HAND_PATHS),
                    "embed": len(EMBEDDINGS & set(everything)),
                    "alias": len({"qwen3-coder:30b", "qwen3-coder:latest"} & set(everything))}

        got = each_tool(ctx, lambda: hand_config(vllm.base_url, ollama.base_url), ctx.settings(), body)
    finally:
        vllm.close()
        ollama.close()
    col = {k: {t: v[k] for t, v in got.items()} for k in next(iter(got.values()))}
    return [
        pair(ctx, "comments kept (of 8)", "8", col["comments"], "high"),
        pair(ctx, "hand edits kept (of 5)", "5", col["hand"], "high",
             note="tuned entry, default model, hand-written `my-lora` the server does not list"),
        pair(ctx, "embedding models written (of 2 served)", "0", col["embed"], "low", tol=0),
        pair(ctx, "entries for 2 Ollama tags of one digest", "1", col["alias"], "low", tol=0),
    ]


def keyed_gateway(ctx: Ctx) -> list[Row]:
    with FakeProvider("openai", api_key="sk-bench-key") as gw:
        text = config(block("gw", gw.base_url, extra=', "apiKey": "sk-bench-key"'))

        def body(tool: Tool, home: Home) -> str:
            before = len(gw.requests)
            home.run(tool)
            sent = any(r.headers.get("authorization") == "Bearer sk-bench-key"
                       for r in gw.requests[before:])
            n = len(home.models("gw"))
            ok = bool(sent and n)
            text = f"yes ({n} models)" if ok else f"no (key sent: {'yes' if sent else 'no'}, {n} models)"
            return text, ok

        got = each_tool(ctx, lambda: text, ctx.settings(), body)
    return [pair(ctx, "keyed gateway reached (options.apiKey sent)", "yes", got)]


def faulty_middle(ctx: Ctx, fault: str, cap: float, label: str, budget: int) -> list[Row]:
    a, b, c = FakeProvider("openai"), FakeProvider("openai"), FakeProvider("ollama")
    b.fault = fault
    try:
        text = config(block("a", a.base_url), block("b", b.base_url), block("c", c.base_url))

        def body(tool: Tool, home: Home) -> tuple[float, int, str]:
            run = home.run(tool, timeout=cap)
            how = (f"killed at the {cap:.0f} s cap" if run.rc is None
                   else "crashed: " + run.stderr.strip().splitlines()[-1] if "Traceback" in run.stderr
                   else "")
            return run.wall, bool(home.models("a")) + bool(home.models("c")), how

        got = each_tool(ctx, lambda: text, ctx.settings(), body)
    finally:
        for f in (a, b, c):
            f.close()
    note = "; ".join(f"{t} {v[2]}" for t, v in got.items() if v[2])
    return [
        pair(ctx, f"{label}: time to finish", f"≤ {budget + 1} s", {t: v[0] for t, v in got.items()},
             "low", "s", note=note, tol_abs=0.5),
        pair(ctx, f"{label}: other providers synced (of 2)", "2",
             {t: v[1] for t, v in got.items()}, "high"),
    ]


def empty_lists(ctx: Ctx) -> list[Row]:
    a, c = FakeProvider("openai"), FakeProvider("ollama")
    try:
        text = config(block("a", a.base_url), block("c", c.base_url))

        def body(tool: Tool, home: Home) -> tuple[tuple[str, bool], tuple[str, bool]]:
            a.models, a.fault, c.models = _default("openai"), None, _default("ollama")[:1]
            home.run(tool)
            had = len(home.models("a"))
            a.models = []
            home.run(tool)
            kept = len(home.models("a"))
            empty = f"{kept}/{had} kept", kept == had
            a.fault, c.models = "null", _default("ollama")[:2]
            run = home.run(tool)
            synced_c = len(home.models("c")) == 2
            kept = len(home.models("a"))
            null = (f"{kept}/{had} kept, other provider {'synced' if synced_c else 'NOT synced'}, "
                    f"exit {run.rc}" + (" (traceback)" if "Traceback" in run.stderr else "")), \
                kept == had and synced_c
            return empty, null

        got = each_tool(ctx, lambda: text, ctx.settings(), body)
    finally:
        a.close()
        c.close()
    return [pair(ctx, "server answers `[]`: existing entries", "all kept",
                 {t: v[0] for t, v in got.items()}),
            pair(ctx, "server answers `data: null`", "all kept, others synced",
                 {t: v[1] for t, v in got.items()})]


def _default(kind: str) -> list[dict[str, Any]]:
    return [m for m in default_models(kind) if m["id"] not in EMBEDDINGS]


def stale(ctx: Ctx) -> list[Row]:
    with FakeProvider("openai") as a:
        text = config(block("a", a.base_url))
        gone = _default("openai")[1]["id"]

        def runs_to_remove(tool: Tool, home: Home) -> int | str:
            a.models = _default("openai")
            home.run(tool)
            a.models = _default("openai")[:1]
            for n in range(1, 5):
                home.run(tool)
                if gone not in home.models("a"):
                    return n
            return "never"

        def hiccup(tool: Tool, home: Home) -> tuple[str, bool]:
            a.models = _default("openai")
            home.run(tool)
            edited = modify(home.cfg.read_text(), ["provider", "a", "models", gone, "name"], "Mine")
            home.cfg.write_text(edited)
            a.models = _default("openai")[:1]  # one run of a partial list: a server mid-restart
            home.run(tool)
            a.models = _default("openai")
            home.run(tool)
            entry = home.models("a").get(gone)
            ok = isinstance(entry, dict) and entry.get("name") == "Mine"
            return ("kept" if ok else "lost (re-added without the edit)" if entry else "lost"), ok

        got = each_tool(ctx, lambda: text, ctx.settings(), runs_to_remove)
        fast = each_tool(ctx, lambda: text, ctx.settings(grace=1), runs_to_remove)
        kept = each_tool(ctx, lambda: text, ctx.settings(), hiccup)
    row = pair(ctx, "runs until a stale model is removed", "grace (2)", got, "low", "runs",
               note=f"syncd waits `grace` runs on purpose; with grace: 1 it took {fast['syncd']}")
    if ctx.peer is not None:
        row = replace(row, verdict="by design")
    return [row, pair(ctx, "hand-tuned model after one partial list", "kept", kept)]


def cost(ctx: Ctx) -> list[Row]:
    fakes = [FakeProvider("ollama"), FakeProvider("openai", variant="vllm"), FakeProvider("llamacpp")]
    reps = 1 if ctx.quick else 5
    try:
        ids = ("ollama", "vllm", "llamacpp")
        text = config(*(block(pid, f.base_url) for pid, f in zip(ids, fakes, strict=True)))
        runs: dict[str, dict[str, list[float]]] = {}
        for _ in range(reps):  # interleaved, so drift on the machine hits both tools alike
            for tool in (ctx.syncd, ctx.peer):
                if tool is None:
                    continue
                home = Home(text, ctx.settings())
                try:
                    first, again = home.run(tool), home.run(tool)
                finally:
                    home.close()
                r = runs.setdefault(tool.name, {"first": [], "again": [], "rss": []})
                r["first"].append(first.wall * 1000)
                r["again"].append(again.wall * 1000)
                r["rss"].append(max(first.rss_kb, again.rss_kb) / 1024)
    finally:
        for f in fakes:
            f.close()
    why = "interpreter start-up and imports (httpx, asyncio) dominate; see report"
    return [pair(ctx, f"wall time, first sync of 3 providers (median of {reps})", "",
                 {t: median(v["first"]) for t, v in runs.items()}, "low", "ms", note=why),
            pair(ctx, f"wall time, no-op re-run (median of {reps})", "",
                 {t: median(v["again"]) for t, v in runs.items()}, "low", "ms"),
            pair(ctx, f"peak RSS (median of {reps})", "",
                 {t: median(v["rss"]) for t, v in runs.items()}, "low", "MB")]


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1 s timeouts, 1 repetition, short caps")
    ap.add_argument("--json", action="store_true", help="print the rows as JSON")
    ap.add_argument("--peer-venv", type=Path, default=REPO / "bench" / ".peer-venv")
    args = ap.parse_args(argv)
    peer_exe, why = ensure_peer(args.peer_venv, install=not args.quick)
    syncd, peer = make_tools(args.quick, peer_exe)
    ctx = Ctx(args.quick, syncd, peer, why)
    cap = 4.0 if args.quick else 60.0
    rows = (first_sync(ctx) + keyed_gateway(ctx)
            + faulty_middle(ctx, "hang", cap, "hung server (accepts, never answers)", ctx.timeout)
            + faulty_middle(ctx, "slow", cap, "trickling server (1 byte / 50 ms)",
                            2 * ctx.timeout if ctx.quick else 30)
            + empty_lists(ctx) + stale(ctx) + cost(ctx))
    if not args.json:
        print(f"Machine: {machine_line()}\nCommand: bench/peers.py {' '.join(argv or sys.argv[1:])}\n"
              f"Peer: {PEER} in {args.peer_venv if peer_exe else why}\n")
    emit(rows, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
