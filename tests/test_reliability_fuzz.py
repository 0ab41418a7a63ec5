"""Fuzzing: mutated corpus files and random bytes into jsonc.parse and through `syncd once`."""

from __future__ import annotations

import json
import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fakes import FakeProvider
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability_kit import once_cmd, syncd_cli

from syncd import jsonc
from syncd.errors import PatchError

GRAMMAR = '{}[],:"/*\\\n\r\t ' + "0123456789eE+-.truefalsenul" + "\ufeff\u2028"
CLI_RUNS = 12


def corpus_texts(folder: Path) -> list[str]:
    return [p.read_text(encoding="utf-8", errors="replace")
            for p in sorted(folder.iterdir()) if p.suffix in (".json", ".jsonc")]


def mutate(text: str, rng: random.Random, rounds: int) -> str:
    """Byte-level damage an editor, a bad merge or a truncated write could do."""
    for _ in range(rounds):
        if not text:
            text = rng.choice(GRAMMAR)
            continue
        i = rng.randrange(len(text))
        j = min(len(text), i + rng.randrange(1, 40))
        op = rng.randrange(5)
        if op == 0:
            text = text[:i] + text[j:]  # a span deleted
        elif op == 1:
            text = text[:i] + text[i:j] + text[i:]  # a span duplicated
        elif op == 2:
            text = text[:i] + rng.choice(GRAMMAR) + text[i:]  # one grammar character inserted
        elif op == 3:
            text = text[:i] + rng.choice(GRAMMAR) + text[i + 1:]  # one character replaced
        else:
            text = text[:i]  # truncated
    return text


def parse_or_jsonc_error(text: str) -> object | None:
    """Parse; the only failure allowed is a JsoncError whose line:col lies inside the text."""
    try:
        return jsonc.parse(text)
    except jsonc.JsoncError as exc:
        lines = len(text.splitlines()) or 1
        assert 1 <= exc.line <= lines + 1 and exc.col >= 1, (exc.line, exc.col, lines)
        assert str(exc).startswith(f"{exc.line}:{exc.col}: ")
        return None


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=600))
def test_random_bytes_parse_or_raise_jsonc_error(data: bytes) -> None:
    parse_or_jsonc_error(data.decode("utf-8", errors="replace"))
    parse_or_jsonc_error(data.decode("latin-1"))


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet=st.sampled_from(GRAMMAR), max_size=300))
def test_grammar_soup_parses_or_raises_jsonc_error(text: str) -> None:
    value = parse_or_jsonc_error(text)
    if value is not None:  # what parses is plain JSON data
        json.dumps(value)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(index=st.integers(min_value=0), seed=st.integers(), rounds=st.integers(1, 6))
def test_mutated_corpus_files_parse_or_raise_jsonc_error(
    corpus: Path, index: int, seed: int, rounds: int
) -> None:
    texts = corpus_texts(corpus)
    text = mutate(texts[index % len(texts)], random.Random(seed), rounds)
    value = parse_or_jsonc_error(text)
    if isinstance(value, dict):  # a patch on what parses either works and parses back, or refuses
        try:
            patched = jsonc.modify(text, ["provider", "fuzz", "models", "m"], {"name": "M"})
        except PatchError:
            return
        assert jsonc.parse(patched)["provider"]["fuzz"]["models"]["m"] == {"name": "M"}


def with_fake_provider(text: str, base_url: str) -> str:
    """The corpus file with a provider syncd can reach (when it parses), so that a run may write."""
    try:
        return jsonc.modify(text, ["provider", "fuzzfake"], {
            "npm": "@ai-sdk/openai-compatible", "options": {"baseURL": base_url}, "models": {}})
    except (jsonc.JsoncError, PatchError):
        return text


@pytest.mark.slow
def test_syncd_once_on_mutated_files_never_writes_an_unparseable_file(
    corpus: Path, tmp_path: Path, fake_openai: FakeProvider
) -> None:
    rng = random.Random(20)
    texts = corpus_texts(corpus)
    cases: list[tuple[Path, bytes]] = []
    for n in range(CLI_RUNS):
        base = with_fake_provider(rng.choice(texts), fake_openai.base_url)
        text = base if n % 4 == 0 else mutate(base, rng, rng.randrange(1, 4))
        folder = tmp_path / f"case{n}"
        folder.mkdir()
        target = folder / "opencode.jsonc"
        target.write_bytes(text.encode("utf-8", errors="surrogatepass"))
        cases.append((target, target.read_bytes()))

    def run(case: tuple[Path, bytes]) -> tuple[Path, bytes, int, str, str]:
        out = syncd_cli(*once_cmd(case[0], "--provider", "fuzzfake", "--json"))
        return case[0], case[1], out.returncode, out.stdout, out.stderr

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(run, cases))
    outcomes = {"refused": 0, "written": 0, "unchanged": 0}
    for target, before, code, stdout, stderr in results:
        assert code in (0, 1), stderr  # never an internal error (3)
        assert "Traceback" not in stderr
        doc = json.loads(stdout)
        after = target.read_bytes()
        if parse_or_jsonc_error(before.decode("utf-8", errors="replace")) is None:
            assert after == before, "an unparseable target was touched"
            error = doc["targets"][0]["error"]
            assert error and str(target) in error
            outcomes["refused"] += 1
        else:
            assert parse_or_jsonc_error(after.decode("utf-8")) is not None
            outcomes["written" if after != before else "unchanged"] += 1
    assert outcomes["refused"] and outcomes["written"], outcomes
    print(f"syncd once on {CLI_RUNS} fuzzed files: {outcomes}")
