"""HTTP ``Range`` for downloads: one byte range, as S3 and MinIO serve it."""

from __future__ import annotations

import re

from lakehouse.objectstore import InvalidRange

_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``[start, end)`` of the one range asked for, or None to send the whole object.

    A header we do not understand (several ranges, another unit) is ignored as RFC 9110
    allows; a well-formed range that lies outside the object raises ``InvalidRange`` (416).
    """
    if not header:
        return None
    m = _RANGE_RE.match(header.strip())
    if m is None:
        return None
    first, last = m.groups()
    if not first and not last:
        return None
    if not first:  # suffix: the last N bytes
        n = int(last)
        if n == 0 or size == 0:
            raise InvalidRange(f"range {header!r} is empty for an object of {size} bytes", size)
        return max(size - n, 0), size
    start = int(first)
    end = size if not last else min(int(last) + 1, size)
    if start >= size or (last and int(last) < start):
        raise InvalidRange(f"range {header!r} is outside an object of {size} bytes", size)
    return start, end
