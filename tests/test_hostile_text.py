"""What a hostile server says never drives a terminal, never breaks a run, and never shows a secret.

The CLI runs in a subprocess, as a user runs it; servers are tests/hostile.py stdlib servers.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import unicodedata
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
import structlog

from syncd import jsonc
from syncd.logs import configure_logging
from syncd.model import FetchResult, Kind, ProviderSpec
from syncd.providers.discover import fetch_models
from syncd.providers.fetch import make_client
from syncd.text import escape, first_unsafe, id_problem, json_safe
from tests.hostile import Reply, Request, Servers, json_reply

UNSAFE = "\u009b\u0085\u202e\u2066\u200b\u2028\u2029\ufeff\x1b\x07"


@pytest.fixture
def servers() -> Iterator[Servers]:
    made = Servers()
    yield made
    made.close()


def syncd(*args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    full = {**os.environ, "SYNCD_DETECT_PORTS": "0,0,0", **(env or {})}
    return subprocess.run([sys.executable, "-m", "syncd", *args], capture_output=True, env=full,
                          timeout=120, check=False)


def target(tmp_path: Path, **urls: str) -> Path:
    path = tmp_path / "opencode.json"
    path.write_text(json.dumps({"provider": {
        pid: {"npm": "@ai-sdk/openai-compatible", "options": {"baseURL": url}, "models": {}}
        for pid, url in urls.items()}}, indent=2))
    return path


def assert_inert(out: bytes) -> str:
    """The output is UTF-8 and holds no character that could drive a terminal."""
    text = out.decode("utf-8")
    assert first_unsafe(text.replace("\n", "")) is None, ascii(text)
    return text


# -- 4. a lone surrogate or an invisible character costs its model only ------------------------

HOSTILE_IDS = ["bad\ud800", "evil\u202etxt.exe", "zero\u200bwidth", "line\u2028sep", "csi\u009b2J",
               "tag\U000e0041"]


def test_unsafe_ids_and_names_refuse_their_model_and_the_rest_syncs(
    servers: Servers, tmp_path: Path
) -> None:
    items = [{"id": "good-model"}, *({"id": i} for i in HOSTILE_IDS),
             {"id": "fine-id", "name": "Name\ud800"}]
    body = json.dumps({"data": items}).encode()  # ensure_ascii: "\ud800" travels as an escape
    server = servers(lambda r: Reply(body=body))
    healthy = servers(lambda r: json_reply({"data": [{"id": "other-model"}]}))
    cfg = target(tmp_path, hostile=server.url + "/v1", healthy=healthy.url + "/v1")
    out = syncd("once", "--config", str(cfg), "--no-notify")
    text = " ".join(assert_inert(out.stdout).split())  # unwrapped
    assert out.returncode == 0, out.stderr
    models = jsonc.parse(cfg.read_text())["provider"]
    assert list(models["hostile"]["models"]) == ["good-model"]
    assert list(models["healthy"]["models"]) == ["other-model"]
    for reason in ("lone surrogate (U+D800)", "bidi format character (U+202E)", "(U+200B)",
                   "line separator (U+2028)", "control character (U+009B)", "(U+E0041)"):
        assert reason in text, text
    status = syncd("status", "--json")
    assert status.returncode == 0 and json.loads(assert_inert(status.stdout))["providers"]


def test_every_unsafe_category_is_refused_in_an_id_and_escaped_in_display() -> None:
    for char in UNSAFE + "\ud800\x00\x7f":
        assert id_problem(f"a{char}b") is not None
        assert char not in escape(f"a{char}b") and first_unsafe(escape(f"a{char}b")) is None
    for fine in ("qwen3-coder:30b", "Qwen3 思考 Ünïcode", "emoji-😀", "a b", "x/y@z"):
        assert id_problem(fine) is None and escape(fine) == fine
    doc = json.dumps({"e": "a\u202eb\U000e0041\ud800"}, ensure_ascii=False)
    assert json.loads(json_safe(doc)) == json.loads(doc) and first_unsafe(json_safe(doc)) is None


def test_the_sanitizer_agrees_with_the_unicode_database() -> None:
    unsafe = {"Cc", "Cf", "Cs", "Zl", "Zp"}
    for code in range(0x110000):
        char = chr(code)
        assert (first_unsafe(char) is not None) == (unicodedata.category(char) in unsafe), hex(code)


# -- 5. terminal injection in error texts --------------------------------------------------------

def test_an_error_text_full_of_terminal_controls_reaches_no_output_raw(
    servers: Servers, tmp_path: Path
) -> None:
    message = f"boom {UNSAFE} \ud800 end"
    server = servers(lambda r: Reply(500, body=json.dumps({"error": {"message": message}}).encode()))
    cfg = target(tmp_path, hostile=server.url + "/v1")
    once = syncd("once", "--config", str(cfg), "--no-notify")
    as_json = syncd("once", "--config", str(cfg), "--no-notify", "--json")
    outputs = [once, as_json, syncd("status"), syncd("status", "--json"),
               syncd("doctor", "--config", str(cfg)), syncd("doctor", "--config", str(cfg), "--json")]
    for out in outputs:
        assert out.returncode in (0, 1), out.stderr
        assert_inert(out.stdout)
        assert_inert(out.stderr)
    error = json.loads(as_json.stdout)["targets"][0]["providers"][0]["error"]
    assert "boom" in error and "\\u202e" in error and "\\x9b" in error and "end" in error


def test_log_lines_escape_what_a_server_sent(capsys: pytest.CaptureFixture[str]) -> None:
    for fmt in ("console", "json"):
        stream = io.StringIO()
        configure_logging(fmt, 0, stream)
        structlog.get_logger("t").warning("provider failed", error=f"x{UNSAFE}\ud800y")
        assert_inert(stream.getvalue().encode("utf-8"))
        assert "\\u202e" in stream.getvalue()


# -- 6. userinfo and query values of a baseURL are secrets --------------------------------------

USER, PASSWORD, QUERY = "tok3n-user-9f8e7d", "pa55-word-1c2b3a", "q-secret-0a9b8c7d"


def echo(request: Request) -> Reply:
    """A gateway that quotes back everything it was sent, as some do in their errors."""
    said = json.dumps({"path": request.path, "headers": request.headers})
    return json_reply({"error": {"message": f"unauthorized: {said}"}}, 401)


def leaked(text: str) -> list[str]:
    return [s for s in (USER, PASSWORD, QUERY) if s in text]


def test_userinfo_and_query_values_appear_in_no_output(servers: Servers, tmp_path: Path) -> None:
    server = servers(echo)
    url = f"http://{USER}:{PASSWORD}@127.0.0.1:{server.port}/v1?key={QUERY}"
    cfg = target(tmp_path, gw=url)
    runs = [syncd("once", "--config", str(cfg), "--no-notify"),
            syncd("once", "--config", str(cfg), "--no-notify", "--json"),
            syncd("status"), syncd("status", "--json"),
            syncd("doctor", "--config", str(cfg)), syncd("doctor", "--config", str(cfg), "--json")]
    assert server.requests and QUERY in server.requests[0].path  # they did go where they belong
    for out in runs:
        for stream in (out.stdout, out.stderr):
            assert leaked(stream.decode()) == [], stream.decode()
    assert "unauthorized" in runs[1].stdout.decode()


async def test_httpx_request_logging_never_shows_them(servers: Servers) -> None:
    server = servers(lambda r: json_reply({"data": [{"id": "m"}]}))
    stream = io.StringIO()
    configure_logging("json", 2, stream)  # -vv: httpx logs every request line
    spec = ProviderSpec(id="gw", base_url=f"http://{USER}:{PASSWORD}@127.0.0.1:{server.port}/v1"
                        f"?key={QUERY}", kind=Kind.OPENAI)
    async with make_client() as client:
        result = await fetch_models(spec, client)
    assert isinstance(result, FetchResult)
    logged = stream.getvalue()
    assert "HTTP Request" in logged  # the line is there ...
    assert leaked(logged) == []  # ... without them
