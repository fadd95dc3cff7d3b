"""One way to keep measured figures in a hand-written page: only the block between a start and
an end marker is rewritten, so the prose around it survives every run and the numbers in it
are never typed in by hand (``docs/performance.md``, ``docs/reliability.md``)."""

from __future__ import annotations

from pathlib import Path

END = "<!-- generated:end -->"


def rewrite_block(page: Path, start: str, block: str, skeleton: str) -> Path:
    """Replace the marked block of ``page`` with ``block`` (which carries both markers);
    a missing page starts from ``skeleton``, a page without markers gets them appended."""
    text = page.read_text() if page.exists() else skeleton
    if start not in text or END not in text:
        text = text.rstrip() + "\n\n" + start + "\n" + END + "\n"
    head, rest = text.split(start, 1)
    _, tail = rest.split(END, 1)
    page.write_text(head + block + tail)
    return page
