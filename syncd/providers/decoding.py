"""Decodes one Content-Encoding layer (gzip or deflate) piece by piece, never past a hard limit."""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator

from syncd.errors import BadResponse

ACCEPT_ENCODING = "gzip, deflate"  # what syncd asks for: the two the standard library decodes
STEP = 64 * 1024  # the most decoded bytes one call hands out, however dense the input


def codings(values: Iterable[str]) -> list[str]:
    """The Content-Encoding layers of an answer, outermost last; `identity` is no layer."""
    found = [c.strip().lower() for value in values for c in value.split(",")]
    return [c for c in found if c and c != "identity"]


class BodyDecoder:
    """Turns the bytes on the wire into the answer's bytes, refusing more than `cap` of them.

    Only one layer is decoded: `gzip, gzip` (a 3 KiB body that unpacks to gigabytes) is refused
    before a byte is read, and a single bomb is stopped at `cap` because zlib is never asked
    for more than STEP bytes at a time.
    """

    def __init__(self, header_values: Iterable[str], cap: int) -> None:
        layers = codings(header_values)
        if len(layers) > 1:
            raise BadResponse(f"answered with stacked encodings (Content-Encoding: {', '.join(layers)}); "
                              "syncd decodes one layer")
        self._coding = layers[0] if layers else "identity"
        if self._coding not in ("identity", "gzip", "x-gzip", "deflate"):
            raise BadResponse(f"answered with Content-Encoding {self._coding!r}, which syncd did not "
                              f"ask for (it accepts {ACCEPT_ENCODING})")
        self._cap = cap
        self._size = 0
        self._zlib: zlib._Decompress | None = None
        self._raw_deflate_tried = False
        self._pending = b""  # a deflate body's first bytes, kept until its framing is known
        if self._coding in ("gzip", "x-gzip"):
            self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)

    def feed(self, data: bytes) -> Iterator[bytes]:
        """The decoded bytes of the next wire piece, in pieces of at most STEP bytes."""
        if self._coding == "identity":
            self._count(len(data))
            if data:
                yield data
            return
        if self._zlib is None:  # deflate: zlib-wrapped as the RFC says, or raw as some servers send
            self._zlib = zlib.decompressobj()
        if self._coding == "deflate" and self._size == 0 and not self._raw_deflate_tried:
            self._pending += data  # all of it, until the framing is known (the first output)
        yield from self._inflate(data)

    def finish(self) -> Iterator[bytes]:
        """What the decoder still holds once the wire is done; a cut-off gzip body is an error."""
        if self._zlib is None:
            return
        yield from self._inflate(b"")
        while True:
            out = self._zlib.flush(STEP)
            if not out:
                break
            self._count(len(out))
            yield out
        if not self._zlib.eof:
            raise BadResponse(f"answered with a truncated {self._coding} body")

    def _inflate(self, data: bytes) -> Iterator[bytes]:
        assert self._zlib is not None
        while data and not self._zlib.eof:
            try:
                out = self._zlib.decompress(data, STEP)
            except zlib.error as exc:
                if self._coding == "deflate" and not self._raw_deflate_tried and self._size == 0:
                    self._raw_deflate_tried = True
                    self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
                    data, self._pending = self._pending, b""
                    continue
                raise BadResponse(f"answered with a corrupt {self._coding} body ({exc})") from None
            data = self._zlib.unconsumed_tail
            if out:
                self._pending = b""
                self._count(len(out))
                yield out

    def _count(self, size: int) -> None:
        self._size += size
        if self._size > self._cap:
            raise BadResponse(f"response is over the {self._cap}-byte limit (decoded)")
