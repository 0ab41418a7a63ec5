"""The daemon says a "did you mean" once per mistake, not on every save (issue 13, item 8)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from syncd.jsonc import REMOVE
from tests.test_daemon_e2e import (  # noqa: F401  (the daemon fixture and its helpers)
    DaemonProc,
    Factory,
    daemon,
    edit,
    ev,
    fake_provider,
    save_by_rename,
    settings_file,
    target,
)


def test_a_did_you_mean_is_said_once_and_again_only_after_it_was_fixed(
    isolated_home: Path, fake_provider: Factory, daemon: Callable[..., DaemonProc],  # noqa: F811
) -> None:
    ol = fake_provider("ollama")
    cfg = target(isolated_home, {"ollama": ol})
    d = daemon(settings_file(isolated_home, [cfg], local_interval="1h"))
    d.ready()
    at = d.mark()

    def typo_warning(line: dict[str, object]) -> bool:
        return line.get("level") == "warning" and "qwen3-coder:32b" in str(line.get("event"))

    edit(cfg, ["provider", "ollama", "models", "qwen3-coder:32b"], {"name": "typo"})
    d.wait(typo_warning, since=at)
    for n in range(3):  # saves that leave the typo as it is
        save_by_rename(cfg, cfg.read_text().replace("keep this comment", f"keep this comment {n}"))
        d.wait(ev("target revalidated"), since=at, n=n + 2)
    assert d.count(typo_warning, since=at) == 1

    edit(cfg, ["provider", "ollama", "models", "qwen3-coder:32b"], REMOVE)  # fixed ...
    d.wait(ev("target revalidated"), since=at, n=5)
    edit(cfg, ["provider", "ollama", "models", "qwen3-coder:32b"], {"name": "again"})  # ... and back
    d.wait(typo_warning, since=at, n=2)
    assert d.stop() == 0
