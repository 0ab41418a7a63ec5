"""Log setup: the format chosen by terminal or flag, verbosity, and secrets never in a line."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from syncd import logs


@pytest.fixture(autouse=True)
def _reset_secrets() -> Iterator[None]:
    yield
    logs._secrets.clear()
    structlog.reset_defaults()


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _json_lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line]


def test_auto_format_is_json_when_not_a_terminal() -> None:
    out = io.StringIO()
    logs.configure_logging("auto", 0, out)
    structlog.get_logger().info("provider synced", provider="ollama", added=2)
    [line] = _json_lines(out)
    assert line["event"] == "provider synced" and line["added"] == 2 and line["level"] == "info"


def test_auto_format_is_console_on_a_terminal() -> None:
    out = _Tty()
    logs.configure_logging("auto", 0, out)
    structlog.get_logger().info("provider synced", provider="ollama")
    text = out.getvalue()
    assert "provider synced" in text and "ollama" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text.splitlines()[0])


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="auto, json, console"):
        logs.configure_logging("xml", 0, io.StringIO())


@pytest.mark.parametrize(("verbosity", "shown"), [(-2, {"error"}), (-1, {"warning", "error"}),
                                                  (0, {"info", "warning", "error"}),
                                                  (1, {"debug", "info", "warning", "error"})])
def test_verbosity_filters_levels(verbosity: int, shown: set[str]) -> None:
    out = io.StringIO()
    logs.configure_logging("json", verbosity, out)
    log = structlog.get_logger()
    for level in ("debug", "info", "warning", "error"):
        getattr(log, level)(level)
    assert {line["event"] for line in _json_lines(out)} == shown


def test_secret_fields_urls_and_bearer_tokens_are_masked() -> None:
    out = io.StringIO()
    logs.configure_logging("json", 0, out)
    structlog.get_logger().info(
        "fetch",
        api_key="sk-live-1",
        apiKey="sk-live-2",
        headers={"Authorization": "Bearer sk-live-3", "X-Title": "syncd"},
        url="https://bob:hunter2hunter@gw.example/v1?api_key=sk-live-4",
        note="sent Authorization: Bearer sk-live-5",
    )
    text = out.getvalue()
    for n in range(1, 6):
        assert f"sk-live-{n}" not in text
    assert "hunter2hunter" not in text
    [line] = _json_lines(out)
    assert line["headers"] == {"Authorization": logs.MASK, "X-Title": "syncd"}
    assert str(line["url"]).startswith("https://bob:***@gw.example/v1")


def test_registered_secret_is_scrubbed_from_any_text() -> None:
    out = io.StringIO()
    logs.configure_logging("json", 0, out)
    key = "gw-key-0123456789"
    logs.register_secret(key)
    structlog.get_logger().warning(f"server echoed {key}", reply=[f"x{key}x"], code=401)
    assert key not in out.getvalue()
    assert _json_lines(out)[0]["code"] == 401


def test_short_values_are_not_registered_as_secrets() -> None:
    logs.register_secret("ab")
    assert logs.scrub("tab stops") == "tab stops"


def test_exception_lines_have_no_locals_and_no_secrets() -> None:
    out = io.StringIO()
    logs.configure_logging("console", 0, out)
    logs.register_secret("registered-key-999")

    def fail(token_value: str) -> None:
        unrelated_local = "local-value-777"
        assert unrelated_local
        raise RuntimeError("refused " + token_value)

    try:
        fail("registered-key-999")
    except RuntimeError:
        structlog.get_logger().exception("cycle failed")
    text = out.getvalue()
    assert "RuntimeError: refused ***" in text
    assert "local-value-777" not in text and "registered-key-999" not in text


def test_stdlib_loggers_are_scrubbed_too() -> None:
    out = io.StringIO()
    logs.configure_logging("json", 0, out)
    logs.register_secret("stdlib-secret-42")
    logging.getLogger("syncd.test").warning("header was %s", "stdlib-secret-42")
    assert "stdlib-secret-42" not in out.getvalue()
    assert _json_lines(out)[0]["logger"] == "syncd.test"


@pytest.mark.parametrize("key", ["api_key", "apiKey", "X-Api-Key", "authorization", "key",
                                 "access_token", "password", "client_secret"])
def test_secret_key_names_are_recognised(key: str) -> None:
    assert logs.is_secret_key(key)


@pytest.mark.parametrize("key", ["provider", "max_tokens", "keys_seen", "served", "url"])
def test_ordinary_key_names_are_left_alone(key: str) -> None:
    assert not logs.is_secret_key(key)
