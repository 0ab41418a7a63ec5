"""Golden before/after files for the JSONC patcher, compared byte for byte.

Set SYNCD_REGEN_GOLDEN=1 to rewrite the .after files; review every diff before committing them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from syncd.jsonc import REMOVE, modify_many, parse

GOLDEN = Path(__file__).parent / "golden"
M = {"name": "New Model", "limit": {"context": 32768, "output": 4096}}


def models(pid: str, *rest: str) -> list[str]:
    return ["provider", pid, "models", *rest]


CASES: dict[str, list[tuple[list[Any], Any]]] = {
    "crlf": [(models("ollama", "qwen3"), {"name": "Qwen 3"})],
    "tabs": [(models("lmstudio", "phi"), REMOVE), (models("lmstudio", "gemma"), M)],
    "four_spaces": [(models("vllm", "m2"), M), (["provider", "sglang", "models", "s1"], {"name": "S1"})],
    "bom": [(models("gw", "b"), {"name": "B"})],
    "block_comments": [(models("litellm", "gpt-4o-mini"), REMOVE), (models("litellm", "o3"), {"name": "o3"})],
    "trailing_line_comment": [(models("ollama", "c"), {"name": "C"})],
    "empty_models": [(models("ollama", "llama3"), M), (models("ollama", "mistral"), M)],
    "single_line": [(models("a", "m"), {"name": "M"}), (models("b", "y"), {})],
    "no_models_key": [(models("llamacpp", "local"), {"name": "Local"})],
    "trailing_commas": [(models("x", "b"), REMOVE), (models("x", "c"), {"name": "C"})],
    "comment_last_in_object": [(models("x", "b"), {"name": "B"})],
    "remove_last_keeps_comment_above": [(models("x", "b"), REMOVE)],
    "empty_with_comment": [(models("x", "a"), {"name": "A"})],
    "no_provider": [(models("ollama", "llama3"), {"name": "Llama 3"})],
}


def _read(path: Path) -> str:
    return path.read_bytes().decode("utf-8")


def _expected_data(before: str, changes: list[tuple[list[Any], Any]]) -> Any:
    data = parse(before)
    for path, value in changes:
        cur = data
        for seg in path[:-1]:
            cur = cur.setdefault(seg, {})
        if value is REMOVE:
            del cur[path[-1]]
        else:
            cur[path[-1]] = value
    return data


def test_every_golden_input_has_a_case() -> None:
    names = {p.name.split(".")[0] for p in GOLDEN.glob("*.before.jsonc")}
    assert names == set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_patch_matches_golden_bytes(name: str) -> None:
    before = _read(GOLDEN / f"{name}.before.jsonc")
    after_path = GOLDEN / f"{name}.after.jsonc"
    got = modify_many(before, CASES[name])
    if os.environ.get("SYNCD_REGEN_GOLDEN"):
        after_path.write_bytes(got.encode("utf-8"))
    assert got.encode("utf-8") == after_path.read_bytes()
    assert parse(got) == _expected_data(before, CASES[name])


@pytest.mark.parametrize("name", sorted(CASES))
def test_patch_keeps_line_endings_bom_and_comments(name: str) -> None:
    before = _read(GOLDEN / f"{name}.before.jsonc")
    got = modify_many(before, CASES[name])
    assert got.startswith("\ufeff") == before.startswith("\ufeff")
    assert got.count("\r\n") >= before.count("\r\n")
    if "\r\n" in before:
        assert got.count("\n") == got.count("\r\n")
    for token in ("//", "/*"):
        for line in before.splitlines():
            if token in line and '"b"' not in line and '"phi"' not in line and "mini" not in line:
                assert line[line.index(token):] in got
