"""Time JSONC parse and parse+modify+verify on generated OpenCode configs, and how the cost grows.

Fixed sizes: 5 KB and 1 MB configs (medians). Growth (issue 15): parse and add-one-model at 100 KB,
1 MB and 10 MB, an unterminated `/*` repeated 4k / 8k / 16k times, a flat object of 80k / 160k /
320k small values, and one append to a 1M-element multi-line array. Growth figures use the best of
several runs (the least disturbed by other work on the machine) and are printed as ratios: time at
10x the input over time at 1x (linear: 10x; target <= 12x).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from syncd.jsonc import REMOVE, JsoncError, modify, modify_many, parse  # noqa: E402
from syncd.jsonc.clean import clean  # noqa: E402


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


ENTRY = {"name": "New", "limit": {"context": 32768, "output": 4096}}
GROWTH_TARGET = 12.0  # per 10x of input: linear with noise
ADD_10MB_TARGET_MS = 2000.0


def best_s(fn: Callable[[], object], repeat: int) -> float:
    return best_ms(fn, repeat)[0] / 1000


def failing_parse(text: str) -> Callable[[], object]:
    def run() -> None:
        try:
            parse(text)
        except JsoncError:
            return
        raise AssertionError("the broken text parsed")
    return run


def growth_row(label: str, t_small: float, t_big: float, factor: float) -> dict[str, object]:
    """time(big) / time(small), scaled to a 10x step when the inputs differ by `factor`."""
    per10 = (t_big / t_small) ** (math.log(10) / math.log(factor)) if t_small > 0 else float("inf")
    return {"figure": f"JSONC growth per 10x input: {label}", "target": f"<= {GROWTH_TARGET:g}x",
            "measured": round(per10, 2), "unit": "x", "ratio": None,
            "verdict": "met" if per10 <= GROWTH_TARGET else "missed",
            "note": f"{t_small * 1000:.1f} ms -> {t_big * 1000:.1f} ms at {factor:g}x the input"}


def growth(quick: bool, quiet: bool) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    out = (lambda *a: None) if quiet else print
    sizes = (100_000, 1_000_000) if quick else (100_000, 1_000_000, 10_000_000)
    reps = 2 if quick else 5
    parse_t, add_t, loads_t = [], [], []
    for size in sizes:
        text = make_config(size)
        path = ["provider", "prov0", "models", "new"]
        parse_t.append(best_s(lambda text=text: parse(text), reps))
        add_t.append(best_s(lambda text=text, path=path: modify(text, path, ENTRY), reps))
        label = f"{size // 1_000_000} MB" if size >= 1_000_000 else f"{size // 1000} KB"
        out(f"growth {label:>6}: parse {parse_t[-1] * 1000:9.1f} ms   add one model "
            f"{add_t[-1] * 1000:9.1f} ms  (best of {reps})")
        rows.append({"figure": f"JSONC {label}: parse (best of {reps})", "target": "",
                     "measured": round(parse_t[-1] * 1000, 2), "unit": "ms", "ratio": None})
        add_target = f"<= {ADD_10MB_TARGET_MS:g} ms" if size == 10_000_000 else ""
        rows.append({"figure": f"JSONC {label}: add one model (best of {reps})", "target": add_target,
                     "measured": round(add_t[-1] * 1000, 2), "unit": "ms", "ratio": None,
                     **({"verdict": "met" if add_t[-1] * 1000 <= ADD_10MB_TARGET_MS else "missed"}
                        if add_target else {})})
        # the floor: CPython's own C decoder on the same text without its comments, which builds
        # the same objects (at 10 MB, about a million of them)
        plain = json.dumps(json.loads(clean(text).json))
        loads_t.append(best_s(lambda plain=plain: json.loads(plain), reps))
    for i in range(1, len(sizes)):
        span = f"{sizes[i - 1] // 1000:,} KB -> {sizes[i] // 1000:,} KB"
        rows.append(growth_row(f"parse, {span}", parse_t[i - 1], parse_t[i], 10))
        rows.append(growth_row(f"add one model, {span}", add_t[i - 1], add_t[i], 10))
        ref = growth_row(f"json.loads of the same data (reference, no target), {span}",
                         loads_t[i - 1], loads_t[i], 10)
        rows.append({**ref, "target": "", "verdict": ""})

    counts = (4_000, 8_000) if quick else (4_000, 8_000, 16_000)
    broken_t = []
    for n in counts:
        text = '{\n  "a": 1,\n' + "  /* open\n" * n + "}\n"
        broken_t.append(best_s(failing_parse(text), reps * 4))
        out(f"unterminated /* x {n:>6,}: error after {broken_t[-1] * 1000:8.2f} ms")
    rows.append(growth_row(f"unterminated /* x {counts[0]:,} -> {counts[-1]:,}", broken_t[0],
                           broken_t[-1], counts[-1] / counts[0]))

    flat = (20_000, 40_000) if quick else (80_000, 160_000, 320_000)
    flat_t = []
    for n in flat:
        text = "{\n  \"values\": {\n" + ",\n".join(f'    "k{i}": {i}' for i in range(n)) + "\n  }\n}\n"
        flat_t.append(best_s(lambda text=text: modify(text, ["values", "new"], 1), max(2, reps // 2)))
        out(f"flat object of {n:>7,} values: add one {flat_t[-1] * 1000:8.1f} ms")
    rows.append(growth_row(f"add to a flat object, {flat[0]:,} -> {flat[-1]:,} values", flat_t[0],
                           flat_t[-1], flat[-1] / flat[0]))

    n = 100_000 if quick else 1_000_000
    text = "{\n  \"list\": [\n" + ",\n".join(f"    {i}" for i in range(n)) + "\n  ]\n}\n"
    t = best_s(lambda: modify(text, ["list", n], n), 2)
    out(f"append to a {n:,}-element multi-line array: {t * 1000:.1f} ms")
    rows.append({"figure": f"JSONC: append to a {n:,}-element multi-line array (best of 2)",
                 "target": "", "measured": round(t * 1000, 1), "unit": "ms", "ratio": None})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--json", action="store_true", help="print rows {figure, target, measured, unit, ratio}")
    ap.add_argument("--quick", action="store_true", help="fewer repetitions (for the smoke test)")
    args = ap.parse_args()
    rows: list[dict[str, object]] = []
    for label, size, repeat in (("5 KB", 5_000, 200), ("1 MB", 1_000_000, 5)):
        rows += bench(label, make_config(size), 2 if args.quick else repeat, quiet=args.json)
    rows += growth(args.quick, quiet=args.json)
    if args.json:
        print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
