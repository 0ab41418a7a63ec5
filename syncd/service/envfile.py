"""The service's environment file (`~/.config/syncd/env`, 0600) that the unit and `syncd run` read.

The format is the part of systemd's EnvironmentFile= grammar both readers agree on: `NAME=value`
lines, `#`/`;` comments, values bare, in single quotes (literal) or in double quotes (backslash
escapes). syncd writes single quotes, or double quotes when the value holds a single quote.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
from collections.abc import Iterable, Mapping, MutableMapping
from pathlib import Path

from syncd.errors import SyncdError
from syncd.localfile import SMALL_LIMIT, read_bytes

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NEEDS_ESCAPE = '"\\`$'
HEADER = ("# Variables for syncd's background service, recorded by `syncd service install`.\n"
          "# The systemd unit reads this file (EnvironmentFile=); so does `syncd run`. Keep it 0600.\n")


def _unquote(raw: str) -> str:
    raw = raw.strip()
    if len(raw) >= 2 and raw[0] == raw[-1] == "'":
        return raw[1:-1]
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        out, body, i = [], raw[1:-1], 0
        while i < len(body):
            if body[i] == "\\" and i + 1 < len(body) and body[i + 1] in _NEEDS_ESCAPE:
                out.append(body[i + 1])
                i += 2
            else:
                out.append(body[i])
                i += 1
        return "".join(out)
    return re.sub(r"\\(.)", r"\1", raw)


def _lines(text: str) -> list[str]:
    # systemd ends lines at \n and \r only (str.splitlines also splits at \x1e, \u2028, ...)
    lines = re.split(r"\r\n|[\n\r]", text)
    return lines[:-1] if lines[-1] == "" else lines


def parse(text: str) -> dict[str, str]:
    """The variables of an environment file; lines that are not `NAME=value` are skipped."""
    out: dict[str, str] = {}
    for line in _lines(text):
        stripped = line.lstrip()
        if not stripped or stripped[0] in "#;" or "=" not in stripped:
            continue
        name, value = stripped.split("=", 1)
        if NAME.fullmatch(name.strip()):
            out[name.strip()] = _unquote(value)
    return out


def line_for(name: str, value: str) -> str:
    """`NAME='value'` as both readers parse it back; ValueError for what one line cannot hold."""
    if not NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not an environment variable name")
    if any(c in value for c in "\n\r\0"):
        raise ValueError(f"the value of {name} spans lines; an environment file cannot hold it")
    if "'" not in value:
        return f"{name}='{value}'"
    escaped = "".join("\\" + c if c in _NEEDS_ESCAPE else c for c in value)
    return f'{name}="{escaped}"'


def read_env_file(path: Path) -> dict[str, str]:
    """The file's variables; {} when it does not exist; SyncdError when it cannot be read."""
    try:
        return parse(read_bytes(path, SMALL_LIMIT).decode("utf-8"))  # a named pipe: refused
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise SyncdError(f"{path}: cannot read the service's environment file: {exc}") from None


def loose_mode(path: Path) -> int | None:
    """The file's permission bits when others than its owner may read it, else None."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return None
    return mode if mode & 0o077 else None


def record(path: Path, values: Mapping[str, str]) -> bool:
    """Set `values` in the file (other lines stay as they are), atomically, mode 0600.

    Returns whether the file changed. Raises ValueError for a value one line cannot hold and
    SyncdError when the file cannot be read or written; the file is then as it was.
    """
    lines = {name: line_for(name, value) for name, value in values.items()}
    try:
        old = read_bytes(path, SMALL_LIMIT).decode("utf-8")
    except FileNotFoundError:
        old = HEADER
    except (OSError, UnicodeDecodeError) as exc:
        raise SyncdError(f"{path}: cannot read the service's environment file: {exc}") from None
    kept: list[str] = []
    for line in _lines(old):
        comment = line.lstrip().startswith(("#", ";"))
        name = line.split("=", 1)[0].strip() if "=" in line and not comment else ""
        kept.append(lines.pop(name) if name in lines else line)
    new = "\n".join([*kept, *lines.values()]) + "\n"
    if new == old and loose_mode(path) is None:
        return False
    try:
        _write_private(path, new)
    except OSError as exc:
        raise SyncdError(f"{path}: cannot write the service's environment file: "
                         f"{exc.strerror or exc}") from None
    return True


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        try:
            os.fchmod(fd, 0o600)  # whatever the umask: the file holds keys
            view = memoryview(text.encode("utf-8"))
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def load_into(environ: MutableMapping[str, str], path: Path) -> list[str]:
    """Add the file's variables that `environ` lacks (for `syncd run` under launchd); their names."""
    values = read_env_file(path)
    added = [name for name in values if name not in environ]
    for name in added:
        environ[name] = values[name]
    return added


def names(values: Iterable[str]) -> str:
    return ", ".join(sorted(set(values)))
