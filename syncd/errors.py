"""The one error tree of syncd; third-party errors are translated into it at the edges.

    SyncdError                 every error syncd raises on purpose; str() is one line
    ├── UsageError             a wrong flag or argument                      (exit 2)
    ├── SettingsError          syncd's own settings file is wrong (key, line)
    ├── StateError             the state file is corrupt or from a newer syncd
    ├── TargetError            an OpenCode config cannot be read or written
    │   └── TargetParseError   ... because it is not valid JSONC (path:line:col)
    ├── PatchError             a computed patch did not verify; nothing written
    └── FetchError             a provider could not be listed (one provider only)
        ├── Unreachable        connection refused, DNS, TLS
        ├── FetchTimeout       connect, read or whole-provider budget exceeded
        ├── AuthFailed         401/403, or a 400 whose body says the key is wrong
        ├── RateLimited        429/529; .retry_after in seconds when the server said
        ├── ServerFailed       5xx
        └── BadResponse        HTML, non-JSON, truncated, wrong shape, too big, error body

The CLI is the only place these become exit codes and printed lines.
"""

from __future__ import annotations


class SyncdError(Exception):
    """Base class: the message is one line that says what happened and, where it can, what to do."""


class UsageError(SyncdError):
    pass


class SettingsError(SyncdError):
    pass


class StateError(SyncdError):
    pass


class TargetError(SyncdError):
    def __init__(self, path: str, msg: str) -> None:
        super().__init__(f"{path}: {msg}")
        self.path = path
        self.msg = msg


class TargetParseError(TargetError):
    def __init__(self, path: str, line: int, col: int, msg: str) -> None:
        SyncdError.__init__(self, f"{path}:{line}:{col}: {msg}")
        self.path = path
        self.line = line
        self.col = col
        self.msg = msg


class PatchError(SyncdError):
    pass


class FetchError(SyncdError):
    """A provider's model list could not be had; `reason` is one line, free of secrets."""

    label = "failed"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Unreachable(FetchError):
    label = "unreachable"


class FetchTimeout(FetchError):
    label = "timeout"


class AuthFailed(FetchError):
    label = "auth"


class RateLimited(FetchError):
    label = "rate-limited"

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class ServerFailed(FetchError):
    label = "server-error"

    def __init__(self, reason: str, status: int = 500) -> None:
        super().__init__(reason)
        self.status = status


class BadResponse(FetchError):
    label = "bad-response"

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.status = status  # the HTTP status of a 3xx/4xx answer, when that was the problem
