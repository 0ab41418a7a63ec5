"""The JSONC engine against 120 real OpenCode configs: round-trip law, errors, and minimal model edits."""

from __future__ import annotations

import csv
import difflib
from pathlib import Path

import pyjson5
import pytest

from syncd.jsonc import REMOVE, JsoncError, modify, parse

NEW_MODEL = {"name": "Syncd Test Model", "limit": {"context": 32768, "output": 4096}}


def _read(path: Path) -> str:
    return path.read_bytes().decode("utf-8")


def _files(corpus: Path, lo: int, hi: int) -> list[Path]:
    return [p for p in sorted(corpus.iterdir()) if p.name[:3].isdigit() and lo <= int(p.name[:3]) <= hi]


def _custom_providers(corpus: Path) -> list[tuple[str, str]]:
    with (corpus / "MANIFEST.tsv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    return [(r["file"], pid) for r in rows if r["parses"] == "yes"
            for pid in r["custom_providers"].split(",") if pid]


def char_diff(before: str, after: str) -> list[tuple[str, str, str]]:
    """(tag, old, new) chunks of a character-level diff, computed line-first to stay fast."""
    a, b = before.splitlines(keepends=True), after.splitlines(keepends=True)
    chunks: list[tuple[str, str, str]] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        old, new = "".join(a[i1:i2]), "".join(b[j1:j2])
        if tag == "replace":
            sm = difflib.SequenceMatcher(None, old, new, autojunk=False)
            chunks += [(t, old[x1:x2], new[y1:y2]) for t, x1, x2, y1, y2 in sm.get_opcodes() if t != "equal"]
        elif tag != "equal":
            chunks.append((tag, old, new))
    return chunks


def test_every_parseable_file_parses_to_the_independent_parsers_data(corpus: Path) -> None:
    files = _files(corpus, 1, 111)
    assert len(files) == 111
    for path in files:
        text = _read(path)
        assert parse(text) == pyjson5.decode(text.removeprefix("\ufeff")), path.name


def test_every_broken_file_names_a_line_inside_the_file(corpus: Path) -> None:
    files = _files(corpus, 112, 120)
    assert len(files) == 9
    for path in files:
        text = _read(path)
        with pytest.raises(JsoncError) as info:
            parse(text)
        lines = len(text.splitlines()) or 1
        assert 1 <= info.value.line <= lines, path.name
        assert info.value.col >= 1 and info.value.msg, path.name
        assert str(info.value).startswith(f"{info.value.line}:{info.value.col}: ")


def test_removing_a_key_keeps_every_other_byte_of_every_file(corpus: Path) -> None:
    for path in _files(corpus, 1, 111):
        text = _read(path)
        data = parse(text)
        if not isinstance(data, dict) or not data:
            continue
        key = list(data)[-1]
        after = modify(text, [key], REMOVE)
        assert all(tag == "delete" for tag, _, _ in char_diff(text, after)), path.name
        assert after.startswith("\ufeff") == text.startswith("\ufeff")


def test_adding_a_model_to_each_custom_provider_only_adds_its_lines(corpus: Path) -> None:
    cases = _custom_providers(corpus)
    assert cases
    for name, pid in cases:
        text = _read(corpus / name)
        after = modify(text, ["provider", pid, "models", "syncd-test-model"], NEW_MODEL)
        expected = pyjson5.decode(text.removeprefix("\ufeff"))
        expected["provider"][pid].setdefault("models", {})["syncd-test-model"] = NEW_MODEL
        assert pyjson5.decode(after.removeprefix("\ufeff")) == expected, name
        chunks = char_diff(text, after)
        # Pure insertions, except an inline '{ }' that becomes multi-line may lose its inner space.
        assert all(tag == "insert" or old.strip() == "" for tag, old, _ in chunks), (name, chunks)
        inserted = "".join(new for _, _, new in chunks)
        assert "syncd-test-model" in inserted and inserted.count('"') == after.count('"') - text.count('"')
        if "\r\n" in text:
            assert "\n" not in inserted.replace("\r\n", ""), name


def test_removing_a_model_of_each_custom_provider_deletes_only_its_lines(corpus: Path) -> None:
    for name, pid in _custom_providers(corpus):
        text = _read(corpus / name)
        models = parse(text)["provider"][pid].get("models") or {}
        if not models:
            continue
        victim = list(models)[len(models) // 2]
        after = modify(text, ["provider", pid, "models", victim], REMOVE)
        expected = pyjson5.decode(text.removeprefix("\ufeff"))
        del expected["provider"][pid]["models"][victim]
        assert pyjson5.decode(after.removeprefix("\ufeff")) == expected, name
        assert _is_line_removal(text, after, victim, models[victim]), name


def _is_line_removal(before: str, after: str, key: str, value: object) -> bool:
    """`after` is `before` minus whole lines that hold exactly the member `key`, plus at most one
    comma taken off another line."""
    a, b = before.splitlines(keepends=True), after.splitlines(keepends=True)
    drop = len(a) - len(b)
    needle = f'"{key}"'
    for i, line in enumerate(a):
        if needle not in line or drop <= 0:
            continue
        kept = a[:i] + a[i + drop :]
        diff = [(x, y) for x, y in zip(kept, b, strict=True) if x != y]
        if len(diff) > 1 or any(x.replace(",", "", 1) != y for x, y in diff):
            continue
        try:
            member = parse("{" + "".join(a[i : i + drop]) + "}")
        except JsoncError:
            continue
        if member == {key: value}:
            return True
    return False
