"""Tell systemd how the daemon is doing over `$NOTIFY_SOCKET` (sd_notify, without libsystemd)."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping


def _address(env: Mapping[str, str]) -> str | None:
    addr = env.get("NOTIFY_SOCKET", "")
    if not addr or not (addr.startswith("/") or addr.startswith("@")):
        return None  # unset, or a vsock address we have no use for
    # "@name" is an abstract socket: its real name starts with a NUL byte.
    return "\0" + addr[1:] if addr.startswith("@") else addr


def notify(message: str, env: Mapping[str, str] | None = None) -> bool:
    """Send one datagram such as "READY=1"; False (and nothing sent) outside systemd or on error."""
    addr = _address(os.environ if env is None else env)
    if addr is None:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto(message.encode(), addr)
    except OSError:
        return False  # systemd went away or the socket is not ours: never fatal to the daemon
    return True


def watchdog_period(env: Mapping[str, str] | None = None, pid: int | None = None) -> float | None:
    """Seconds between WATCHDOG=1 pings (half of `$WATCHDOG_USEC`), or None when not asked for."""
    env = os.environ if env is None else env
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    target_pid = env.get("WATCHDOG_PID", "")
    if usec <= 0 or (target_pid and target_pid != str(os.getpid() if pid is None else pid)):
        return None  # the watchdog is meant for another process (e.g. our parent shell)
    return usec / 2_000_000


def reloading_message(monotonic_ns: int | None = None) -> str:
    """RELOADING=1 with the MONOTONIC_USEC that `Type=notify-reload` units require."""
    ns = time.clock_gettime_ns(time.CLOCK_MONOTONIC) if monotonic_ns is None else monotonic_ns
    return f"RELOADING=1\nMONOTONIC_USEC={ns // 1000}"
