"""Benchmark: peak RSS of `syncd once` against hostile servers (floods, bombs, a giant item), vs 200 MB.

Each hostile server runs in a process of its own (tests/hostile.py SCENARIO), so the figure is
syncd's memory alone, measured by GNU time around `syncd once --config ... --no-detect`. Also
prints how close the reader's memory estimate is to what CPython really allocates (tracemalloc)
for the worst shapes, and the time to read a legitimate 5,000-model list.

Usage: bench/hostile_bench.py [--quick] [--json]
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _common import REPO, Row, emit, isolated_env, median, run_measured  # noqa: E402

from syncd.providers.jsonstream import JsonStream, estimate  # noqa: E402

TARGET_MB = 200
CASES: dict[str, tuple[str, ...]] = {
    "1M tiny models (17 MB body)": ("flood",),
    "16M list items (32 MiB body)": ("items",),
    "three floods together (1M models, 16M items, 1M models)": ("flood", "items", "flood"),
    "one model holding 32 MiB of {} (11M objects)": ("one-item",),
    "three such giant models together": ("one-item", "one-item", "one-item"),
    "Content-Encoding: gzip, gzip (1 GiB inside)": ("gzip-stack",),
    "one gzip layer of 1 GiB": ("gzip-bomb",),
    "legitimate: 5,000 OpenRouter-shaped models": ("legit",),
    "baseline: one provider, 3 models": ("small",),
}
QUICK = ("1M tiny models (17 MB body)", "baseline: one provider, 3 models")


@contextmanager
def scenario_servers(names: Sequence[str]) -> Iterator[list[int]]:
    procs = [subprocess.Popen([sys.executable, str(REPO / "tests" / "hostile.py"), name],
                              stdout=subprocess.PIPE, text=True, cwd=REPO) for name in names]
    try:
        ports = []
        for proc in procs:
            assert proc.stdout is not None
            ports.append(int(proc.stdout.readline()))
        yield ports
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def once_rss(names: Sequence[str]) -> tuple[float, float, int | None, str]:
    """Peak RSS (MB) and wall time of `syncd once` over one provider per scenario server."""
    with tempfile.TemporaryDirectory() as tmp, scenario_servers(names) as ports:
        root = Path(tmp)
        env = isolated_env(root)
        config = root / "opencode.json"
        providers = {f"p{i}": {"npm": "@ai-sdk/openai-compatible",
                               "options": {"baseURL": f"http://127.0.0.1:{port}/v1"}, "models": {}}
                     for i, port in enumerate(ports)}
        config.write_text(json.dumps({"provider": providers}))
        syncd = [sys.executable, "-m", "syncd", "once", "--config", str(config), "--no-detect",
                 "--no-notify"]
        run = run_measured(syncd, {**env, "PYTHONPATH": str(REPO)}, timeout=300, cwd=str(REPO))
        lines = [ln.strip() for ln in (run.stdout + run.stderr).splitlines() if ln.strip()]
        detail = next((ln for ln in lines if ln.startswith("!")), lines[-1] if lines else "")
        return run.rss_kb / 1024, run.wall, run.rc, detail


SHAPES = {
    "[{},{},…]": "{}", "[[],[],…]": "[]", "[[[[[]]]]],…": "[[[[[]]]]]", '["ab",…]': '"ab"',
    "[1.5,…]": "1.5", '[{"a":1},…]': '{"a":1}', '["\\ud83d\\ude00",…]': '"\\ud83d\\ude00"',
}


def calibration() -> list[Row]:
    rows = []
    for label, item in SHAPES.items():
        text = "[" + ",".join([item] * 100_000) + "]"
        gc.collect()
        tracemalloc.start()
        value = json.loads(text)
        real, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        del value
        rows.append(Row(f"memory estimate vs real, {label}", "real <= estimate",
                        round(real / estimate(text, 0, len(text)), 2), "x",
                        verdict="met" if real <= estimate(text, 0, len(text)) else "missed"))
    return rows


def legit_read_time() -> Row:
    item = {"id": "x", "name": "Model", "context_length": 262144, "description": "d" * 300,
            "architecture": {"modality": "text->text", "input_modalities": ["text"],
                             "output_modalities": ["text"], "tokenizer": "Qwen3"},
            "pricing": {"prompt": "0.00000022", "completion": "0.00000095"},
            "top_provider": {"context_length": 262144, "max_completion_tokens": None},
            "supported_parameters": ["max_tokens", "temperature", "tools", "tool_choice"] * 4}
    text = json.dumps({"data": [dict(item, id=f"m{i}") for i in range(5000)]})

    def streamed() -> None:
        reader = JsonStream(max_items=5000, budget=48 << 20)
        for i in range(0, len(text), 65536):
            reader.feed(text[i:i + 65536])
        reader.finish()

    def timed(read: Callable[[], object]) -> float:  # median of 5: the machine is shared
        runs = []
        for _ in range(5):
            gc.collect()
            started = time.perf_counter()
            read()
            runs.append(time.perf_counter() - started)
        return median(runs)

    plain = timed(lambda: json.loads(text))
    streamed_s = timed(streamed)
    return Row("reading 5,000 OpenRouter-shaped models (6 MB), median of 5", "",
               round(streamed_s * 1000), "ms", ratio=round(streamed_s / plain, 2),
               peer=round(plain * 1000), note="peer: json.loads of the same text, which bounds nothing")


def main(quick: bool, as_json: bool) -> int:
    rows: list[Row] = []
    ok = True
    for label, names in CASES.items():
        if quick and label not in QUICK:
            continue
        rss, wall, rc, detail = once_rss(names)
        met = rss <= TARGET_MB
        ok &= met
        rows.append(Row(f"peak RSS of `syncd once`: {label}", f"<= {TARGET_MB} MB", round(rss),
                        "MB", verdict="met" if met else "missed",
                        note=f"exit {rc}, {wall:.1f} s: {detail[:140]}"))
    if not quick:
        rows += calibration()
        rows.append(legit_read_time())
    emit(rows, as_json, "syncd against hostile servers")
    return 0 if ok else 1


if __name__ == "__main__":
    _ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    _ap.add_argument("--quick", action="store_true", help="only the 1M-model flood and the baseline")
    _ap.add_argument("--json", action="store_true", help="print rows as JSON (for run_all.py)")
    _args = _ap.parse_args()
    raise SystemExit(main(_args.quick, _args.json))
