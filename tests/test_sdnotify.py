"""sd_notify over a real AF_UNIX datagram socket, path and abstract."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from syncd.daemon import sdnotify


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = str(tmp_path / "notify.sock")
    sock.bind(path)
    sock.settimeout(5)
    yield sock, path
    sock.close()


def test_notify_without_socket_sends_nothing_and_says_so() -> None:
    assert sdnotify.notify("READY=1") is False
    assert sdnotify.notify("READY=1", env={"NOTIFY_SOCKET": "vsock:2:1234"}) is False


def test_notify_delivers_message_to_path_socket(listener: tuple[socket.socket, str]) -> None:
    sock, path = listener
    assert sdnotify.notify("READY=1\nSTATUS=3 providers ok", env={"NOTIFY_SOCKET": path})
    assert sock.recv(4096) == b"READY=1\nSTATUS=3 providers ok"


def test_notify_reads_notify_socket_from_environment(
    listener: tuple[socket.socket, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sock, path = listener
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    assert sdnotify.notify("STOPPING=1")
    assert sock.recv(4096) == b"STOPPING=1"


def test_notify_supports_abstract_socket() -> None:
    name = f"syncd-test-{os.getpid()}-{id(object())}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        assert sdnotify.notify("WATCHDOG=1", env={"NOTIFY_SOCKET": "@" + name})
        assert sock.recv(4096) == b"WATCHDOG=1"


def test_notify_to_dead_socket_is_not_fatal(tmp_path: Path) -> None:
    assert sdnotify.notify("READY=1", env={"NOTIFY_SOCKET": str(tmp_path / "gone.sock")}) is False


def test_watchdog_period_is_half_of_watchdog_usec() -> None:
    usec = 3_000_000
    assert sdnotify.watchdog_period({"WATCHDOG_USEC": str(usec)}) == usec / 1e6 / 2


def test_watchdog_period_ignores_watchdog_meant_for_another_pid() -> None:
    env = {"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": str(os.getpid() + 1)}
    assert sdnotify.watchdog_period(env) is None
    env["WATCHDOG_PID"] = str(os.getpid())
    assert sdnotify.watchdog_period(env) == 0.5


@pytest.mark.parametrize("value", ["", "0", "-5", "soon"])
def test_watchdog_period_is_none_when_not_asked_for(value: str) -> None:
    assert sdnotify.watchdog_period({"WATCHDOG_USEC": value}) is None


def test_reloading_message_carries_monotonic_usec() -> None:
    ns = 123_456_789_012
    assert sdnotify.reloading_message(ns) == f"RELOADING=1\nMONOTONIC_USEC={ns // 1000}"
    lines = sdnotify.reloading_message().splitlines()
    assert lines[0] == "RELOADING=1" and int(lines[1].split("=")[1]) > 0
