"""Benchmark: fetch_many over 50 fake providers answering after 200 ms, vs the slowest and the serial sum."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from syncd.model import FetchResult, Kind, Limits, ProviderSpec  # noqa: E402
from syncd.providers.discover import fetch_many, fetch_models, make_client  # noqa: E402
from tests.fakes import FakeProvider  # noqa: E402

COUNT = 50
DELAY = 0.2
LIMITS = Limits(connect=3, read=10, total=30)


async def main(count: int = COUNT, as_json: bool = False) -> int:
    fakes = [FakeProvider("openai") for _ in range(count)]
    try:
        for fake in fakes:
            fake.delay = DELAY
        specs = [ProviderSpec(id=f"p{i}", base_url=f.base_url, kind=Kind.OPENAI)
                 for i, f in enumerate(fakes)]
        async with make_client(LIMITS) as client:
            singles = []
            for spec in specs:
                started = time.perf_counter()
                await fetch_models(spec, client, limits=LIMITS)
                singles.append(time.perf_counter() - started)
            started = time.perf_counter()
            results = await fetch_many(specs, client, limits=LIMITS)
            together = time.perf_counter() - started
    finally:
        for fake in fakes:
            fake.close()
    ok = sum(isinstance(r, FetchResult) for r in results)
    slowest, serial = max(singles), sum(singles)
    ratio = together / slowest
    if as_json:
        print(json.dumps([
            {"figure": f"fetch_many: {count} providers delayed {DELAY * 1000:.0f} ms, vs the slowest",
             "target": "<= 1.5x", "measured": round(ratio, 2), "unit": "x", "ratio": None,
             "note": f"{together * 1000:.0f} ms; serial sum {serial * 1000:.0f} ms; {ok} ok"}]))
    else:
        print(f"providers: {count} ({ok} ok), each delayed {DELAY * 1000:.0f} ms")
        print(f"slowest single provider: {slowest * 1000:.0f} ms")
        print(f"serial sum:              {serial * 1000:.0f} ms")
        print(f"fetch_many (concurrent): {together * 1000:.0f} ms  = {ratio:.2f}x the slowest "
              "(target <= 1.5x)")
    return 0 if ok == count and ratio <= 1.5 else 1


if __name__ == "__main__":
    _ap = argparse.ArgumentParser(description=__doc__)
    _ap.add_argument("--json", action="store_true", help="print rows {figure, target, measured, unit, ratio}")
    _ap.add_argument("--quick", action="store_true", help="10 providers instead of 50")
    _args = _ap.parse_args()
    raise SystemExit(asyncio.run(main(10 if _args.quick else COUNT, _args.json)))
