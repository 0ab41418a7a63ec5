"""Sinks and the Notifier: real loopback HTTP, real subprocesses, a fake notify-send on PATH."""

from __future__ import annotations

import email.header
import json
import socket
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from syncd.errors import SettingsError
from syncd.model import Skipped
from syncd.notify.events import (
    Batch,
    Event,
    EventType,
    batch_events,
    display_text,
    events_from_report,
)
from syncd.notify.sinks import (
    CommandSink,
    DesktopSink,
    Notifier,
    NotifyConfig,
    WebhookConfig,
    WebhookFormat,
    WebhookSink,
    detect_format,
)
from syncd.report import ProviderReport, Status, TargetReport

PATH = "/home/u/.config/opencode/opencode.jsonc"
# quotes, command substitution, backticks, AppleScript's " and \, a newline, an option look-alike
HOSTILE = "x\"; $(touch PWNED) `touch PWNED2` 'q' \\\" & end tell\n-rf --help"


def _batch(*events: Event) -> Batch:
    (batch,) = batch_events(events or [Event(EventType.ADDED, PATH, "ollama", ("qwen3:8b",))])
    return batch


class _Log:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str, dict[str, object]]] = []

    def __call__(self, level: str, event: str, fields: Any) -> None:
        self.lines.append((level, event, dict(fields)))

    def events(self, name: str) -> list[dict[str, object]]:
        return [f for _, e, f in self.lines if e == name]


# --- settings --------------------------------------------------------------------------------


def test_settings_defaults_and_off() -> None:
    assert NotifyConfig.from_settings(None) == NotifyConfig()
    assert NotifyConfig.from_settings(False) == NotifyConfig.off()
    assert not NotifyConfig.off().desktop


def test_settings_webhooks_are_detected_or_forced() -> None:
    cfg = NotifyConfig.from_settings(
        {
            "webhook": [
                "https://ntfy.sh/my-topic",
                {"url": "http://127.0.0.1:9/hook", "format": "ntfy"},
                "https://hooks.slack.com/services/T/B/x",
            ],
            "command": ["notify-me", "--quiet"],
            "command_timeout": 3,
        }
    )
    assert [h.format for h in cfg.webhooks] == [
        WebhookFormat.NTFY,
        WebhookFormat.NTFY,
        WebhookFormat.SLACK,
    ]
    assert cfg.command == ("notify-me", "--quiet") and cfg.command_timeout == 3


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://ntfy.sh/alerts", WebhookFormat.NTFY),
        ("https://ntfy.example.org/alerts", WebhookFormat.NTFY),
        ("https://ntfy.example.org/api/v1/alerts", WebhookFormat.JSON),
        ("https://discord.com/api/webhooks/1/abc", WebhookFormat.DISCORD),
        ("https://hooks.slack.com/services/T/B/x", WebhookFormat.SLACK),
        ("https://example.com/hook", WebhookFormat.JSON),
    ],
)
def test_webhook_format_from_url(url: str, expected: WebhookFormat) -> None:
    assert detect_format(url) is expected


@pytest.mark.parametrize(
    "raw",
    [
        {"command": "notify-me --quiet"},  # a string would need a shell to split
        {"command": []},
        {"webhook": "file:///etc/passwd"},
        {"webhook": {"url": "https://x.test/h", "format": "xml"}},
        {"desktop": "yes"},
        {"command_timeout": 0},
        {"command_timeout": float("inf")},  # json5 reads Infinity: delivery would never be bounded
        {"command_timeout": float("nan")},
        {"sound": True},
    ],
)
def test_bad_settings_are_refused(raw: dict[str, object]) -> None:
    with pytest.raises(SettingsError, match=r"^notify"):
        NotifyConfig.from_settings(raw)


# --- webhook against a real HTTP server on 127.0.0.1 -----------------------------------------


class _Recorder(BaseHTTPRequestHandler):
    received: list[tuple[str, dict[str, str], bytes]]
    status = 200

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.received.append((self.path, dict(self.headers), body))
        self.send_response(self.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, type[_Recorder]]]:
    handler = type("H", (_Recorder,), {"received": []})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", handler
    httpd.shutdown()
    httpd.server_close()


async def test_webhook_posts_the_batch_as_json(server: tuple[str, type[_Recorder]]) -> None:
    url, handler = server
    batch = _batch()
    async with httpx.AsyncClient() as client:
        await WebhookSink(WebhookConfig(url + "/hook", WebhookFormat.JSON), client).send(batch)
    ((path, headers, body),) = handler.received
    assert path == "/hook" and headers["Content-Type"] == "application/json"
    assert json.loads(body) == batch.to_json()


async def test_webhook_ntfy_form_has_plain_body_and_headers(
    server: tuple[str, type[_Recorder]],
) -> None:
    url, handler = server
    batch = _batch(Event(EventType.UNREACHABLE, PATH, "ollama", (), "refused", "unreachable"))
    async with httpx.AsyncClient() as client:
        await WebhookSink(WebhookConfig(url + "/alerts", WebhookFormat.NTFY), client).send(batch)
    ((_, headers, body),) = handler.received
    assert body.decode() == batch.body
    assert headers["Title"] == batch.title
    assert headers["Priority"] == "high"
    assert "syncd" in headers["Tags"].split(",")


async def test_webhook_ntfy_title_survives_non_ascii(server: tuple[str, type[_Recorder]]) -> None:
    url, handler = server
    batch = _batch(Event(EventType.ADDED, "/home/u/café-app/opencode.json", "ollama", ("m",)))
    async with httpx.AsyncClient() as client:
        await WebhookSink(WebhookConfig(url + "/t", WebhookFormat.NTFY), client).send(batch)
    title = handler.received[0][1]["Title"]
    assert title.isascii()
    ((raw, charset),) = email.header.decode_header(title)
    assert isinstance(raw, bytes) and raw.decode(charset) == batch.title


@pytest.mark.parametrize(
    ("fmt", "key"), [(WebhookFormat.SLACK, "text"), (WebhookFormat.DISCORD, "content")]
)
async def test_webhook_chat_shapes(
    server: tuple[str, type[_Recorder]], fmt: WebhookFormat, key: str
) -> None:
    url, handler = server
    batch = _batch()
    async with httpx.AsyncClient() as client:
        await WebhookSink(WebhookConfig(url + "/x", fmt), client).send(batch)
    assert json.loads(handler.received[0][2]) == {key: f"{batch.title}\n{batch.body}"}


async def test_failing_and_hanging_webhooks_are_logged_not_raised(
    server: tuple[str, type[_Recorder]],
) -> None:
    url, handler = server
    handler.status = 500
    hang = socket.socket()
    hang.bind(("127.0.0.1", 0))
    hang.listen()  # accepts, never answers
    log = _Log()
    async with httpx.AsyncClient() as client:
        broken = WebhookSink(WebhookConfig(url + "/secret-token", WebhookFormat.JSON), client)
        silent = WebhookSink(
            WebhookConfig(f"http://127.0.0.1:{hang.getsockname()[1]}/t", WebhookFormat.JSON), client
        )
        silent.timeout = 0.3
        notifier = Notifier(NotifyConfig.off(), logger=log, sinks=[broken, silent])
        await notifier.notify([Event(EventType.ADDED, PATH, "ollama", ("m",))])
    hang.close()
    failures = log.events("notify.sink_failed")
    assert sorted(str(f["error"]) for f in failures) == ["HTTP 500", "ReadTimeout"]
    assert all("secret-token" not in json.dumps(f) for f in failures)


# --- command sink ----------------------------------------------------------------------------


def _script(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(f"#!{sys.executable}\nimport sys, json, os\n{body}\n")
    path.chmod(0o755)
    return path


async def test_command_gets_the_batch_as_json_on_stdin(tmp_path: Path) -> None:
    out = tmp_path / "stdin.json"
    cmd = _script(tmp_path, "rec", f"open({str(out)!r}, 'w').write(sys.stdin.read())")
    batch = _batch(Event(EventType.ADDED, PATH, "ollama", (HOSTILE,)))
    await CommandSink([str(cmd), "--flag"], timeout=10).send(batch)
    assert json.loads(out.read_text()) == batch.to_json()


async def test_command_failure_and_timeout_are_logged(tmp_path: Path) -> None:
    failing = _script(tmp_path, "fail", "sys.stderr.write('no route to pager\\n'); sys.exit(3)")
    slow = _script(tmp_path, "slow", "import time; time.sleep(60)")
    log = _Log()
    sinks = [CommandSink([str(failing)]), CommandSink([str(slow)], timeout=0.5)]
    await Notifier(NotifyConfig.off(), logger=log, sinks=sinks).notify(list(_batch().events))
    errors = sorted(str(f["error"]) for f in log.events("notify.sink_failed"))
    assert errors == [f"{failing} exited 3: no route to pager", f"{slow} timed out after 0.5s"]


# --- desktop sink ----------------------------------------------------------------------------


@pytest.fixture
def fake_notify_send(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A notify-send on PATH that appends its argv as one JSON line; a session bus that 'exists'."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    record = tmp_path / "argv.jsonl"
    body = f"open({str(record)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')"
    _script(bindir, "notify-send", body)
    _script(bindir, "osascript", body)
    monkeypatch.setenv("PATH", str(bindir))
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent")
    monkeypatch.chdir(tmp_path)
    return record


def _calls(record: Path) -> list[list[str]]:
    return [json.loads(x) for x in record.read_text().splitlines()] if record.exists() else []


async def test_hostile_model_name_reaches_notify_send_verbatim(fake_notify_send: Path) -> None:
    report = TargetReport(
        PATH,
        providers=(
            ProviderReport(
                "ollama",
                Status.OK,
                added=('q"$(id)`id`\\', "gemma4:e4b"),
                suspicious=(Skipped(HOSTILE, "control character"),),
            ),
        ),
    )
    log = _Log()
    notifier = Notifier(NotifyConfig(desktop=True), logger=log)
    assert [s.name for s in notifier.sinks] == ["desktop"]
    await notifier.notify(events_from_report(report))
    ((*opts, title, body),) = _calls(fake_notify_send)
    assert opts[-1] == "--" and "--urgency=normal" in opts
    (batch,) = batch_events(events_from_report(report))
    assert (title, body) == (batch.title, batch.body)
    assert 'q"$(id)`id`\\' in body  # verbatim, and nothing ran:
    assert not list(fake_notify_send.parent.glob("PWNED*"))
    assert display_text(HOSTILE) in body and "\n" not in body  # the suspicious ID, escaped


async def test_osascript_gets_text_as_arguments_never_in_the_script(fake_notify_send: Path) -> None:
    sink = DesktopSink(platform="darwin")
    assert sink.probe()
    batch = Batch(PATH, (), HOSTILE + " title", HOSTILE)
    await sink.send(batch)
    ((*args, body, title),) = _calls(fake_notify_send)
    assert (body, title) == (HOSTILE, HOSTILE + " title")
    script = [a for i, a in enumerate(args) if i % 2]
    assert all(f == "-e" for f in args[::2])
    assert script[1] == "display notification (item 1 of argv) with title (item 2 of argv)"
    assert not any("PWNED" in line for line in script)
    assert not list(fake_notify_send.parent.glob("PWNED*"))


async def test_failing_notify_send_switches_desktop_off_with_one_line(
    fake_notify_send: Path,
) -> None:
    bindir = fake_notify_send.parent / "bin"
    err = "GDBus.Error:org.freedesktop.DBus.Error.ServiceUnknown"
    counter = fake_notify_send.parent / "tries"
    _script(
        bindir,
        "notify-send",
        f"open({str(counter)!r}, 'a').write('x'); sys.stderr.write({err!r}); sys.exit(1)",
    )
    log = _Log()
    notifier = Notifier(NotifyConfig(desktop=True), logger=log)
    for _ in range(3):
        await notifier.notify(list(_batch().events))
    assert counter.read_text() == "x"  # tried once, then off
    (off,) = log.events("notify.sink_off")
    assert err in str(off["reason"])
    assert log.events("notify.sink_failed") == [] and notifier.sinks == []


def test_headless_box_turns_desktop_off_quietly(
    fake_notify_send: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(fake_notify_send.parent / "no-runtime"))
    log = _Log()
    notifier = Notifier(NotifyConfig(desktop=True), logger=log)
    assert notifier.sinks == []
    assert log.events("notify.desktop_off") == [{"reason": "no session bus"}]
    monkeypatch.setenv("PATH", str(fake_notify_send.parent / "empty"))
    assert not DesktopSink().probe()


# --- the notifier ----------------------------------------------------------------------------


class _Memory:
    name = "memory"
    timeout = 1.0

    def __init__(self) -> None:
        self.got: list[Batch] = []

    async def send(self, batch: Batch) -> None:
        self.got.append(batch)


async def test_every_event_is_logged_even_without_sinks() -> None:
    log = _Log()
    notifier = Notifier(NotifyConfig.off(), logger=log)
    assert notifier.sinks == []
    events = [
        Event(EventType.ADDED, PATH, "ollama", ("a", "b")),
        Event(EventType.UNREACHABLE, PATH, "lm", (), "refused", "unreachable"),
    ]
    await notifier.notify(events)
    assert [(lvl, name) for lvl, name, _ in log.lines] == [
        ("info", "event.added"),
        ("error", "event.unreachable"),
    ]
    assert log.lines[0][2]["models"] == ["a", "b"]


async def test_notifier_rate_limits_errors_over_simulated_time() -> None:
    now = [0.0]
    sink = _Memory()
    notifier = Notifier(NotifyConfig.off(), logger=_Log(), sinks=[sink], clock=lambda: now[0])
    down = Event(EventType.UNREACHABLE, PATH, "ollama", (), "refused", "unreachable")
    for t in (0.0, 60.0, 600.0, 1799.0, 1801.0):
        now[0] = t
        await notifier.notify([down])
    assert len(sink.got) == 2


async def test_one_message_per_target_to_every_sink() -> None:
    a, b = _Memory(), _Memory()
    notifier = Notifier(NotifyConfig.off(), logger=_Log(), sinks=[a, b])
    events = [
        Event(EventType.ADDED, PATH, "ollama", ("m1",)),
        Event(EventType.REMOVED, PATH, "lm", ("m2",)),
        Event(EventType.ADDED, "/proj/opencode.json", "ollama", ("m3",)),
    ]
    await notifier.notify(events)
    assert [x.target for x in a.got] == [PATH, "/proj/opencode.json"]
    assert a.got == b.got


async def test_submit_delivers_in_the_background_and_aclose_waits() -> None:
    sink = _Memory()
    notifier = Notifier(NotifyConfig.off(), logger=_Log(), sinks=[sink])
    notifier.submit([Event(EventType.ADDED, PATH, "ollama", ("m",))])
    assert sink.got == []  # nothing awaited yet: the caller's loop went on
    await notifier.aclose()
    assert len(sink.got) == 1
