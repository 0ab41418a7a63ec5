"""Helper of the crash tests: forks children that run Engine.sync on one target in a loop until killed.

Usage: python reliability_sync_loop.py TARGET   (settings, state dir and home come from the environment)
Commands on stdin, one per line, each answered by one line on stdout:
  go    fork a child that syncs TARGET forever; answers its pid (the caller SIGKILLs it)
  reap  wait for the last child; answers "signal N" or "exit N"
  quit  exit
Importing syncd once and forking keeps each kill cheap (no interpreter start per sync).
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

# What a cycle loads on first use (the editor, a provider kind's module) is loaded here, before
# forking: a child then starts syncing at once, even on a loaded machine.
import syncd.jsonc.edit  # noqa: F401
import syncd.providers.kinds.openai  # noqa: F401
from syncd.engine import Engine
from syncd.settings import load_settings


async def _forever(target: Path) -> None:
    engine = Engine(load_settings(), cli_configs=[str(target)])
    while True:
        await engine.sync(target)


def main() -> None:
    target = Path(sys.argv[1])
    child = 0
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "go":
            child = os.fork()
            if child == 0:
                try:
                    asyncio.run(_forever(target))
                finally:
                    os._exit(70)
            print(child, flush=True)
        elif cmd == "reap":
            _, status = os.waitpid(child, 0)
            sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
            print(f"signal {sig}" if sig else f"exit {os.WEXITSTATUS(status)}", flush=True)
        elif cmd == "quit":
            break


if __name__ == "__main__":
    main()
