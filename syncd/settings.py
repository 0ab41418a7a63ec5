"""Loads and validates syncd's own settings file (`config.json5`) into frozen values."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

import json5

from syncd import paths
from syncd.errors import SettingsError
from syncd.localfile import SMALL_LIMIT, UnsafeFile, read_bytes
from syncd.model import Kind, Limits, ModelKind
from syncd.notify.config import NotifyConfig


class RemovePolicy(StrEnum):
    NEVER = "never"
    MANAGED = "managed"
    ALL = "all"


class AliasPolicy(StrEnum):
    DEDUPE = "dedupe"
    KEEP = "keep"


class WhitelistPolicy(StrEnum):
    AUTO = "auto"
    ALWAYS = "always"
    NEVER = "never"


class WriteMode(StrEnum):
    """Where syncd keeps its models: in the target itself, or in an overlay file OpenCode merges."""

    AUTO = "auto"  # in place; the overlay only for a target syncd cannot write
    IN_PLACE = "in-place"
    OVERLAY = "overlay"


@dataclass(frozen=True, slots=True)
class Timeouts:
    """The `timeouts` block, in seconds: connect, read, and a whole provider's fetch."""

    connect: float = 3.0
    read: float = 10.0
    total: float = 30.0


@dataclass(frozen=True, slots=True)
class ProviderOverrides:
    """The `providers.<id>` block as written: None means "not set, use the global value"."""

    interval: float | None = None
    include: tuple[str, ...] | None = None
    exclude: tuple[str, ...] | None = None
    kind: Kind | None = None
    enabled: bool = True
    remove: RemovePolicy | None = None
    grace: int | None = None
    kinds: frozenset[ModelKind] | None = None
    aliases: AliasPolicy | None = None
    whitelist: WhitelistPolicy | None = None


@dataclass(frozen=True, slots=True)
class ProviderPolicy:
    """Everything the planner and scheduler need for one provider, overrides merged over globals."""

    remove: RemovePolicy = RemovePolicy.MANAGED
    grace: int = 2
    kinds: frozenset[ModelKind] = frozenset({ModelKind.CHAT})
    include: tuple[str, ...] = ()  # empty: every ID
    exclude: tuple[str, ...] = ()
    aliases: AliasPolicy = AliasPolicy.DEDUPE
    whitelist: WhitelistPolicy = WhitelistPolicy.AUTO
    interval: float | None = None  # None: derive (local_interval for loopback, else interval)
    kind: Kind | None = None  # None: detect
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class TargetPolicy:
    """A `targets.<path>` block: how that target is written; None means "use the global value"."""

    write: WriteMode | None = None
    overlay: Path | None = None  # None: the default overlay of the target's folder, if any


_NO_PROVIDERS: Mapping[str, ProviderOverrides] = MappingProxyType({})


@dataclass(frozen=True)
class Settings:
    """syncd's settings file (`config.json5`), validated; every field has its default here."""

    configs: tuple[Path, ...] | None = None  # None: OpenCode's global files + $OPENCODE_CONFIG
    detect: bool = True
    interval: float = 900.0
    local_interval: float = 60.0
    remove: RemovePolicy = RemovePolicy.MANAGED
    grace: int = 2
    kinds: frozenset[ModelKind] = frozenset({ModelKind.CHAT})
    aliases: AliasPolicy = AliasPolicy.DEDUPE
    whitelist: WhitelistPolicy = WhitelistPolicy.AUTO
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    catalog: str = "auto"  # "auto" (OpenCode's cache), "off", or an http(s) URL
    force_polling: bool = False
    timeouts: Timeouts = Timeouts()
    max_models: int = 5000
    max_body: int = 32 * 1024 * 1024
    notify: NotifyConfig = NotifyConfig()
    providers: Mapping[str, ProviderOverrides] = field(default_factory=lambda: _NO_PROVIDERS)
    write: WriteMode = WriteMode.AUTO
    targets: Mapping[str, TargetPolicy] = field(default_factory=lambda: MappingProxyType({}))

    def target_policy(self, target: Path) -> tuple[WriteMode, Path | None]:
        """The write mode and named overlay of `target`, matched by its path or its real path."""
        keys = (os.path.abspath(os.path.expanduser(target)), os.path.realpath(target))
        o = next((self.targets[k] for k in keys if k in self.targets), TargetPolicy())
        return o.write or self.write, o.overlay

    def policy(self, provider_id: str) -> ProviderPolicy:
        o = self.providers.get(provider_id, ProviderOverrides())
        return ProviderPolicy(
            remove=o.remove or self.remove,
            grace=o.grace if o.grace is not None else self.grace,
            kinds=o.kinds if o.kinds is not None else self.kinds,
            include=o.include if o.include is not None else self.include,
            exclude=o.exclude if o.exclude is not None else self.exclude,
            aliases=o.aliases or self.aliases,
            whitelist=o.whitelist or self.whitelist,
            interval=o.interval,
            kind=o.kind,
            enabled=o.enabled,
        )

    def limits(self) -> Limits:
        t = self.timeouts
        return Limits(connect=t.connect, read=t.read, total=t.total,
                      max_body=self.max_body, max_models=self.max_models)


# --- parsing -------------------------------------------------------------------------------------

KeyPath = tuple[str | int, ...]
_E = TypeVar("_E", bound=StrEnum)


class _Bad(Exception):
    """A problem at a key path; turned into a SettingsError with the line by load_settings."""

    def __init__(self, path: KeyPath, msg: str) -> None:
        super().__init__(msg)
        self.path = path
        self.msg = msg


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: object) -> float:
    """Seconds from a number or a string like "90s", "15m", "1h", "1h30m"; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError("expected a duration")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower()
        if re.fullmatch(r"\d+(?:\.\d+)?", text):
            seconds = float(text)
        elif text and re.fullmatch(rf"(?:{_DURATION.pattern}\s*)+", text):
            seconds = sum(float(n) * _UNIT[u] for n, u in _DURATION.findall(text))
        else:
            raise ValueError(f'expected a duration like "90s", "15m" or "1h", got {value!r}')
    else:
        raise ValueError("expected a duration (seconds, or a string like \"15m\")")
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"expected a positive duration, got {value!r}")
    return seconds


def _type_name(v: object) -> str:
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string",
            list: "a list", dict: "an object"}.get(type(v), type(v).__name__)


def _duration(path: KeyPath, v: object) -> float:
    try:
        return parse_duration(v)
    except ValueError as e:
        raise _Bad(path, str(e)) from None


# How often a provider may be asked: more often than every second is a flood of requests; a
# timer past a week is a typo (`1e12` overflowed the scheduler and crash-looped the service).
MIN_INTERVAL, MAX_INTERVAL = 1.0, 7 * 86400.0
MAX_TIMEOUT = 3600.0


def _interval(path: KeyPath, v: object) -> float:
    seconds = _duration(path, v)
    if not MIN_INTERVAL <= seconds <= MAX_INTERVAL:
        raise _Bad(path, f"must be between 1s and 7d, got {v!r}")
    return seconds


def _timeout(path: KeyPath, v: object) -> float:
    seconds = _duration(path, v)
    if seconds > MAX_TIMEOUT:
        raise _Bad(path, f"must be at most 1h, got {v!r}")
    return seconds


def _bool(path: KeyPath, v: object) -> bool:
    if not isinstance(v, bool):
        raise _Bad(path, f"expected true or false, got {_type_name(v)}")
    return v


def _int(path: KeyPath, v: object, minimum: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise _Bad(path, f"expected a whole number, got {_type_name(v)}")
    if v < minimum:
        raise _Bad(path, f"must be at least {minimum}, got {v}")
    return v


def _str(path: KeyPath, v: object) -> str:
    if not isinstance(v, str) or not v:
        raise _Bad(path, f"expected a non-empty string, got {_type_name(v)}")
    return v


def _strs(path: KeyPath, v: object, *, allow_one: bool = False) -> tuple[str, ...]:
    if allow_one and isinstance(v, str):
        return (_str(path, v),)
    if not isinstance(v, list):
        raise _Bad(path, f"expected a list of strings, got {_type_name(v)}")
    return tuple(_str((*path, i), item) for i, item in enumerate(v))


def _enum(cls: type[_E]) -> Callable[[KeyPath, object], _E]:
    def conv(path: KeyPath, v: object) -> _E:
        try:
            return cls(v) if isinstance(v, str) else cls("\0")
        except ValueError:
            allowed = " | ".join(f'"{m.value}"' for m in cls)
            raise _Bad(path, f"expected one of {allowed}, got {v!r}") from None
    return conv


def _kinds(path: KeyPath, v: object) -> frozenset[ModelKind]:
    return frozenset(_enum(ModelKind)((*path, i), s) for i, s in enumerate(_strs(path, v)))


def _catalog(path: KeyPath, v: object) -> str:
    s = _str(path, v)
    if s in ("auto", "off") or s.startswith(("http://", "https://")):
        return s
    raise _Bad(path, f'expected "auto", "off" or an http(s) URL, got {s!r}')


def _object(path: KeyPath, v: object) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise _Bad(path, f"expected an object, got {_type_name(v)}")
    return v


def _fields(path: KeyPath, raw: object, spec: Mapping[str, Callable[[KeyPath, object], Any]],
            ) -> dict[str, Any]:
    """Convert every key of an object with its converter; an unknown key is an error."""
    out: dict[str, Any] = {}
    for key, value in _object(path, raw).items():
        conv = spec.get(key)
        if conv is None:
            known = ", ".join(sorted(spec))
            raise _Bad((*path, key), f"unknown key (known here: {known})")
        out[key] = conv((*path, key), value)
    return out


_PROVIDER_SPEC: dict[str, Callable[[KeyPath, object], Any]] = {
    "interval": _interval,
    "include": _strs,
    "exclude": _strs,
    "kind": _enum(Kind),
    "enabled": _bool,
    "remove": _enum(RemovePolicy),
    "grace": lambda p, v: _int(p, v, 1),
    "kinds": _kinds,
    "aliases": _enum(AliasPolicy),
    "whitelist": _enum(WhitelistPolicy),
}

_TIMEOUT_SPEC: dict[str, Callable[[KeyPath, object], Any]] = {
    "connect": _timeout, "read": _timeout, "total": _timeout,
}


def _notify(path: KeyPath, raw: object) -> NotifyConfig:
    """The `notify` block, validated by the notifications' own config (one validator, one place)."""
    try:
        return NotifyConfig.from_settings(raw)
    except SettingsError as e:
        m = re.match(r"notify\.(\w+)[^:]*: (.*)", str(e))
        raise _Bad((*path, m[1]) if m else path, m[2] if m else str(e)) from None


def _providers(path: KeyPath, raw: object) -> Mapping[str, ProviderOverrides]:
    return MappingProxyType({
        pid: ProviderOverrides(**_fields((*path, pid), block, _PROVIDER_SPEC))
        for pid, block in _object(path, raw).items()
    })


def _configs(path: KeyPath, raw: object) -> tuple[Path, ...]:
    return tuple(Path(s).expanduser() for s in _strs(path, raw))


def _file(path: KeyPath, v: object) -> Path:
    p = Path(_str(path, v)).expanduser()
    if not p.is_absolute():
        raise _Bad(path, f"expected an absolute path (or one starting with ~), got {v!r}")
    return p


_TARGET_SPEC: dict[str, Callable[[KeyPath, object], Any]] = {"write": _enum(WriteMode), "overlay": _file}


def _targets(path: KeyPath, raw: object) -> Mapping[str, TargetPolicy]:
    """`targets: {"~/path/opencode.json": {write, overlay}}`, keyed by absolute path."""
    out: dict[str, TargetPolicy] = {}
    for name, block in _object(path, raw).items():
        key = os.path.abspath(_file((*path, name), name))
        o = out[key] = TargetPolicy(**_fields((*path, name), block, _TARGET_SPEC))
        if o.overlay is not None and os.path.abspath(o.overlay) == key:
            raise _Bad((*path, name, "overlay"), "the overlay must be another file than the target")
    return MappingProxyType(out)


_SPEC: dict[str, Callable[[KeyPath, object], Any]] = {
    "configs": _configs,
    "detect": _bool,
    "interval": _interval,
    "local_interval": _interval,
    "remove": _enum(RemovePolicy),
    "grace": lambda p, v: _int(p, v, 1),
    "kinds": _kinds,
    "aliases": _enum(AliasPolicy),
    "whitelist": _enum(WhitelistPolicy),
    "include": _strs,
    "exclude": _strs,
    "catalog": _catalog,
    "force_polling": _bool,
    "timeouts": lambda p, v: Timeouts(**_fields(p, v, _TIMEOUT_SPEC)),
    "max_models": lambda p, v: _int(p, v, 1),
    "max_body": lambda p, v: _int(p, v, 1024),
    "notify": _notify,
    "providers": _providers,
    "write": _enum(WriteMode),
    "targets": _targets,
}


def parse_settings(text: str) -> Settings:
    """Settings from the text of a settings file; SettingsError without a file name on error."""
    try:
        raw = json5.loads(text, allow_duplicate_keys=False)
    except RecursionError:
        raise SettingsError("line 1: nested too deeply to read; settings are a few levels deep "
                            "at most") from None
    except ValueError as e:
        # json5 says "<string>:LINE Unexpected ..." for syntax errors; keep only the useful part
        m = re.match(r"<string>:(\d+)\s*(.*)", str(e))
        if m:
            raise SettingsError(f"line {m[1]}: {m[2]}") from None
        dup = re.match(r'Duplicate key "(.*)" found', str(e))
        line = _duplicate_line(text, dup[1]) if dup else 1
        raise SettingsError(f"line {line}: {e}") from None
    try:
        return Settings(**_fields((), raw, _SPEC))
    except _Bad as bad:
        where = _dotted(bad.path) or "(top level)"
        line = find_line(text, bad.path)
        raise SettingsError(f"line {line}: {where}: {bad.msg}") from None


def load_settings(path: Path | None = None) -> Settings:
    """The settings in `path` (default: paths.settings_file()); defaults when it is missing."""
    path = path or paths.settings_file()
    try:
        text = read_bytes(path, SMALL_LIMIT).decode("utf-8")
    except FileNotFoundError:
        return Settings()
    except OSError as e:
        raise SettingsError(f"{path}: cannot read the settings file: it {e.strerror}"
                            if isinstance(e, UnsafeFile) else
                            f"{path}: cannot read the settings file: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise SettingsError(f"{path}: cannot read the settings file: not UTF-8 text "
                            f"(bad byte at offset {e.start})") from None
    try:
        return parse_settings(text)
    except SettingsError as e:
        raise SettingsError(f"{path}:{str(e).removeprefix('line ')}") from None


def _dotted(path: KeyPath) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _key_pattern(key: str) -> re.Pattern[str]:
    k = re.escape(key)
    return re.compile(rf"""(?:"{k}"|'{k}'|(?<![\w$]){k}(?![\w$]))\s*:""")


def _duplicate_line(text: str, key: str) -> int:
    hits = [m.start() for m in _key_pattern(key).finditer(text)]
    return text.count("\n", 0, hits[1]) + 1 if len(hits) > 1 else 1


def find_line(text: str, path: KeyPath) -> int:
    """1-based line of the key at `path`, found by scanning for each key token in turn.

    json5 keeps no positions, so this is a heuristic: it finds the first occurrence of each key
    (quoted or bare, followed by `:`) after the previous one, skipping `//` comment lines. List
    indices point at the list's key.
    """
    pos = 0
    for part in path:
        if isinstance(part, int):
            break
        for m in _key_pattern(part).finditer(text, pos):
            line_start = text.rfind("\n", 0, m.start()) + 1
            if "//" in text[line_start:m.start()]:
                continue
            pos = m.end()
            break
        else:
            break
    return text.count("\n", 0, max(pos - 1, 0)) + 1
