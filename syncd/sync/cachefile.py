"""The fetch cache's file in the state dir: read once, written only when what it holds changed."""

from __future__ import annotations

import json
from pathlib import Path

from syncd.localfile import DATA_LIMIT, read_bytes
from syncd.providers.discover import FetchCache
from syncd.sync.store import atomic_write_bytes


class CacheFile:
    """A cache that cannot be read starts empty, and one that cannot be saved is rebuilt next time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._on_disk: bytes | None = None

    def load(self) -> FetchCache:
        try:
            raw = read_bytes(self.path, DATA_LIMIT)
            cache = FetchCache.from_json(json.loads(raw))
        except (OSError, ValueError, RecursionError):
            return FetchCache()
        self._on_disk = raw
        return cache

    def save(self, cache: FetchCache) -> None:
        data = json.dumps(cache.to_json()).encode()
        if data == self._on_disk:
            return  # unchanged: a no-op run writes (and fsyncs) nothing
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            atomic_write_bytes(self.path, data, mode=0o600)
            self._on_disk = data
        except OSError:
            pass
