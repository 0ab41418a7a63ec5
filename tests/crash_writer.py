"""Helper for the crash test: flips a target between two texts with write_target until killed.

Usage: python crash_writer.py TARGET STATE_DIR TEXT_A_FILE TEXT_B_FILE
Prints "ready" once its first write has landed, then writes forever.
"""

from __future__ import annotations

import sys
from pathlib import Path

from syncd.sync.store import write_target


def main() -> None:
    target, state_dir = Path(sys.argv[1]), Path(sys.argv[2])
    text_a = Path(sys.argv[3]).read_text(encoding="utf-8")
    text_b = Path(sys.argv[4]).read_text(encoding="utf-8")

    def flip(text: str) -> str:
        return text_b if text == text_a else text_a

    write_target(target, flip, state_dir=state_dir, keep_backups=3)
    print("ready", flush=True)
    while True:
        write_target(target, flip, state_dir=state_dir, keep_backups=3)


if __name__ == "__main__":
    main()
