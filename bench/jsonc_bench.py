"""Time JSONC parse and parse+modify+verify on a generated 5 KB and 1 MB OpenCode config."""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from syncd.jsonc import REMOVE, modify, modify_many, parse  # noqa: E402


def make_config(target_bytes: int) -> str:
    """A commented, multi-provider config of about `target_bytes`."""
    head = '{\n  "$schema": "https://opencode.ai/config.json",\n  // providers below\n  "provider": {\n'
    blocks: list[str] = []
    size, p = len(head), 0
    while size < target_bytes:
        models = []
        for m in range(10):
            models.append(
                f'        "model-{p}-{m}": {{ "name": "Model {p}/{m}", '
                f'"limit": {{ "context": 131072, "output": 8192 }} }}, // #{m}'
            )
        block = (
            f'    "prov{p}": {{\n      "npm": "@ai-sdk/openai-compatible",\n'
            f'      "options": {{ "baseURL": "http://127.0.0.1:{8000 + p}/v1" }},\n'
            '      /* served models */\n      "models": {\n' + "\n".join(models) + "\n      }\n    }"
        )
        blocks.append(block)
        size += len(block) + 2
        p += 1
    return head + ",\n".join(blocks) + "\n  }\n}\n"


def best_ms(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return min(times), statistics.median(times)


# issue targets: modify + verify of one model <= 3 ms on a 5 KB config, <= 1 s on a 1 MB config
TARGETS = {("5 KB", "add one model"): "<= 3 ms", ("5 KB", "remove one model"): "<= 3 ms",
           ("1 MB", "add one model"): "<= 1000 ms", ("1 MB", "remove one model"): "<= 1000 ms"}


def bench(label: str, text: str, repeat: int, quiet: bool = False) -> list[dict[str, object]]:
    entry = {"name": "New", "limit": {"context": 32768, "output": 4096}}
    if not quiet:
        print(f"{label} config: {len(text.encode()):,} bytes")
    cases: list[tuple[str, Callable[[], object]]] = [
        ("parse", lambda: parse(text)),
        ("add one model", lambda: modify(text, ["provider", "prov0", "models", "new"], entry)),
        ("remove one model", lambda: modify(text, ["provider", "prov0", "models", "model-0-3"], REMOVE)),
        ("add 5000 models", lambda: modify_many(
            text, [(["provider", "prov0", "models", f"n{i}"], entry) for i in range(5000)])),
        ("new provider + 5000 models", lambda: modify_many(
            text, [(["provider", "fresh", "models", f"n{i}"], entry) for i in range(5000)])),
    ]
    rows: list[dict[str, object]] = []
    for name, fn in cases:
        best, median = best_ms(fn, repeat if "5000" not in name else max(2, repeat // 20))
        if not quiet:
            print(f"  {name:28s} best {best:8.2f} ms   median {median:8.2f} ms")
        rows.append({"figure": f"JSONC {label}: {name} (median)",
                     "target": TARGETS.get((label, name), ""), "measured":
                     round(median, 3), "unit": "ms", "ratio": None})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--json", action="store_true", help="print rows {figure, target, measured, unit, ratio}")
    ap.add_argument("--quick", action="store_true", help="fewer repetitions (for the smoke test)")
    args = ap.parse_args()
    rows: list[dict[str, object]] = []
    for label, size, repeat in (("5 KB", 5_000, 200), ("1 MB", 1_000_000, 5)):
        rows += bench(label, make_config(size), 2 if args.quick else repeat, quiet=args.json)
    if args.json:
        print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
