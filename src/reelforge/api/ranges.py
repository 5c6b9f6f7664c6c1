"""HTTP ``Range`` requests (RFC 9110 §14) for videos streamed from object storage.

Only a single byte range is honoured: that is what video players and download tools
send. Anything else (other units, several ranges, malformed syntax) is ignored, which
RFC 9110 allows: the server then answers 200 with the whole representation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SPEC = re.compile(r"(\d*)-(\d*)", re.ASCII)


class RangeNotSatisfiable(Exception):
    """The range lies beyond the object: answer 416 with ``Content-Range: bytes */size``."""

    def __init__(self, size: int) -> None:
        super().__init__(f"range not satisfiable for {size} bytes")
        self.size = size


@dataclass(frozen=True)
class ByteRange:
    """Bytes ``start`` to ``end`` of an object of ``size`` bytes, both ends inclusive."""

    start: int
    end: int
    size: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    @property
    def content_range(self) -> str:
        return f"bytes {self.start}-{self.end}/{self.size}"


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The byte range a ``Range`` header asks of an object of ``size`` bytes.

    Returns ``None`` when the whole object should be sent (no header, or one to ignore);
    raises ``RangeNotSatisfiable`` when the range starts at or beyond the end (or asks
    for a zero-length suffix). Ends past the object are clipped, as RFC 9110 requires.
    """
    if header is None:
        return None
    unit, sep, spec = header.partition("=")
    if not sep or unit.strip().lower() != "bytes" or "," in spec:
        return None
    match = _SPEC.fullmatch(spec.strip())
    if match is None:
        return None
    first, last = match.groups()
    try:
        start = int(first) if first else None
        end = int(last) if last else None
    except ValueError:  # more digits than Python converts: no real range looks like this
        return None
    if start is None:
        if end is None:
            return None
        if end == 0 or size == 0:
            raise RangeNotSatisfiable(size)
        return ByteRange(max(0, size - end), size - 1, size)
    if end is not None and end < start:
        return None
    if start >= size:
        raise RangeNotSatisfiable(size)
    return ByteRange(start, size - 1 if end is None else min(end, size - 1), size)
