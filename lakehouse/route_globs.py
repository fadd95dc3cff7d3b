"""Route globs: gitignore-style matching, and the set algebra the routes analysis needs.

Matching is wcmatch's (``GLOBSTAR | BRACE | DOTGLOB``): ``*`` and ``?`` stay within one path
segment, ``**`` as a whole segment spans zero or more segments, ``[...]`` is a class (``[!...]``
negates) and ``{a,b}`` alternates. ``*`` also matches names that start with a dot (keys are data,
not a file tree to hide things in).

The analysis (is one route's glob covered by others, do two overlap, which keys did ``fnmatch``
route differently) needs more than matching: it needs a key that is in one set of globs and not
in another, or proof that there is none. Each glob is compiled here into a small automaton over
characters; a breadth-first search over the product of those automata and one for valid object
keys (no empty or ``.``/``..`` segments, last segment not hidden) finds the shortest such key. The
automata follow wcmatch's semantics, and a property test checks them against wcmatch itself.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise
from typing import Literal

import bracex
from wcmatch import glob as wcglob

FLAGS = wcglob.GLOBSTAR | wcglob.BRACE | wcglob.DOTGLOB | wcglob.FORCEUNIX | wcglob.CASE
MAX_EXPANSIONS = 256  # brace alternatives one glob may expand to
MAX_SEARCH_STATES = 50_000  # the analysis gives up (and says so) beyond this

Syntax = Literal["glob", "fnmatch"]


class GlobSyntaxError(ValueError):
    pass


@lru_cache(maxsize=1024)
def _matcher(pattern: str) -> wcglob.WcMatcher:
    return wcglob.compile(pattern, flags=FLAGS)


def glob_match(pattern: str, key: str) -> bool:
    """Whether ``key`` matches the route glob ``pattern`` (wcmatch, the semantics above)."""
    return bool(_matcher(pattern).match(key))


# -- tokens --------------------------------------------------------------------------------------
# ("lit", c) one character; ("class", negated, ranges); ("any1",) one character; ("star",) any run
# of characters; ("anystar",) any run including '/'; ("gstar",) zero or more whole segments, each
# with its trailing '/'. In glob syntax "any" never includes '/'; in fnmatch syntax it does.
Token = tuple[object, ...]


@dataclass(frozen=True)
class Pattern:
    tokens: tuple[Token, ...]
    syntax: Syntax


def _parse_class(text: str, i: int, syntax: Syntax) -> tuple[Token, int] | None:
    """The class starting at ``text[i] == '['``, and the index after it; None if unclosed."""
    j = i + 1
    negated = False
    if j < len(text) and (text[j] == "!" or (syntax == "glob" and text[j] == "^")):
        negated = True
        j += 1
    ranges: list[tuple[int, int]] = []
    first = True
    while j < len(text):
        c = text[j]
        if c == "]" and not first:
            return ("class", negated, tuple(ranges)), j + 1
        first = False
        if syntax == "glob" and c == "\\" and j + 1 < len(text):
            j += 1
            c = text[j]
        if c == "/" and syntax == "glob":
            raise GlobSyntaxError(
                "'/' cannot be inside a [...] class (a class matches within one segment)"
            )
        if syntax == "glob" and c == "[" and text.startswith("[:", j):
            raise GlobSyntaxError(
                "POSIX classes such as [[:alpha:]] are not supported in route globs"
            )
        lo = ord(c)
        if j + 2 < len(text) and text[j + 1] == "-" and text[j + 2] != "]":
            hi_c = text[j + 2]
            if syntax == "glob" and hi_c == "\\" and j + 3 < len(text):
                j += 1
                hi_c = text[j + 2]
            ranges.append((lo, ord(hi_c)))
            j += 3
        else:
            ranges.append((lo, lo))
            j += 1
    return None


def _segment_tokens(seg: str, syntax: Syntax) -> list[Token]:
    out: list[Token] = []
    i = 0
    while i < len(seg):
        c = seg[i]
        if c == "*":
            while i + 1 < len(seg) and seg[i + 1] == "*":
                i += 1
            out.append(("anystar",) if syntax == "fnmatch" else ("star",))
            i += 1
        elif c == "?":
            out.append(("any1",))
            i += 1
        elif c == "[":
            parsed = _parse_class(seg, i, syntax)
            if parsed is None:
                out.append(("lit", "["))
                i += 1
            else:
                out.append(parsed[0])
                i = parsed[1]
        elif c == "\\" and syntax == "glob" and i + 1 < len(seg):
            out.append(("lit", seg[i + 1]))
            i += 2
        else:
            out.append(("lit", c))
            i += 1
    return out


def _split_segments(pattern: str) -> list[str]:
    """Split on '/' outside classes and escapes (wcmatch reads an escaped '/' as a separator)."""
    segs, cur, i = [], "", 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            if pattern[i + 1] == "/":
                segs.append(cur)
                cur = ""
            else:
                cur += pattern[i : i + 2]
            i += 2
            continue
        if c == "[":
            parsed = _parse_class(pattern, i, "glob")
            if parsed is not None:
                cur += pattern[i : parsed[1]]
                i = parsed[1]
                continue
        if c == "/":
            segs.append(cur)
            cur = ""
        else:
            cur += c
        i += 1
    segs.append(cur)
    return segs


def expansions(glob: str) -> list[str]:
    """The brace expansions of a glob, as wcmatch expands them."""
    try:
        out = bracex.expand(glob, keep_escapes=True, limit=MAX_EXPANSIONS)
    except Exception as exc:  # bracex raises its own error past the limit
        raise GlobSyntaxError(f"braces expand to more than {MAX_EXPANSIONS} alternatives") from exc
    return list(out) or [glob]


def compile_patterns(glob: str, syntax: Syntax = "glob") -> tuple[Pattern, ...]:
    """The automata of one route glob (one per brace alternative); raises GlobSyntaxError."""
    if syntax == "fnmatch":
        return (Pattern(tuple(_segment_tokens(glob, "fnmatch")), "fnmatch"),)
    return _compile_glob(glob)


@lru_cache(maxsize=1024)
def _compile_glob(glob: str) -> tuple[Pattern, ...]:
    pats = []
    for alt in expansions(glob):
        segs = _split_segments(alt)
        if segs[0] == "":
            raise GlobSyntaxError("a key glob must not start with '/' (keys never do)")
        if any(s == "" for s in segs[1:-1]) or (len(segs) > 1 and segs[-1] == ""):
            raise GlobSyntaxError("empty path segment ('//' or a trailing '/'): keys have none")
        if any(s in (".", "..") for s in segs):
            raise GlobSyntaxError("'.' and '..' segments never occur in keys")
        tokens: list[Token] = []
        for n, seg in enumerate(segs):
            last = n == len(segs) - 1
            if seg == "**":
                tokens.append(("anystar",) if last else ("gstar",))
                continue
            tokens.extend(_segment_tokens(seg, "glob"))
            if not last:
                tokens.append(("lit", "/"))
        pats.append(Pattern(tuple(tokens), "glob"))
    return tuple(pats)


def check_glob(glob: str) -> None:
    """Raise GlobSyntaxError if the glob cannot be a route glob."""
    _compile_glob(glob)


def literal_pattern(prefix: str) -> tuple[Pattern, ...]:
    """Every key that starts with ``prefix``."""
    return (Pattern((*(("lit", c) for c in prefix), ("anystar",)), "glob"),)


def first_segment_is_fixed(glob: str) -> str | None:
    """The first segment if every alternative of the glob starts with the same literal one."""
    firsts = set()
    for pat in _compile_glob(glob):
        seg = []
        for tok in pat.tokens:
            if tok == ("lit", "/"):
                break
            if tok[0] != "lit":
                return None
            seg.append(str(tok[1]))
        else:
            return None  # no folder at all
        firsts.add("".join(seg))
    return firsts.pop() if len(firsts) == 1 else None


# -- the automata --------------------------------------------------------------------------------
State = tuple[int, int, int]  # (pattern index, token position, inside a globstar segment)


def _char_ok(tok: Token, c: str, syntax: Syntax) -> bool:
    kind = tok[0]
    if kind == "lit":
        return c == tok[1]
    if syntax == "glob" and c == "/":
        return False
    if kind == "class":
        negated, ranges = bool(tok[1]), tok[2]
        assert isinstance(ranges, tuple)
        return any(lo <= ord(c) <= hi for lo, hi in ranges) != negated
    return True  # any1, star, anystar


def _closure(pats: Sequence[Pattern], states: Iterable[State]) -> frozenset[State]:
    out = set(states)
    todo = list(out)
    while todo:
        p, i, g = todo.pop()
        toks = pats[p].tokens
        if g == 0 and i < len(toks) and toks[i][0] in ("star", "anystar", "gstar"):
            nxt = (p, i + 1, 0)
            if nxt not in out:
                out.add(nxt)
                todo.append(nxt)
    return frozenset(out)


def _start(pats: Sequence[Pattern]) -> frozenset[State]:
    return _closure(pats, [(p, 0, 0) for p in range(len(pats))])


def _step(pats: Sequence[Pattern], states: frozenset[State], c: str) -> frozenset[State]:
    out: list[State] = []
    for p, i, g in states:
        pat = pats[p]
        if i >= len(pat.tokens):
            continue
        tok = pat.tokens[i]
        kind = tok[0]
        if kind == "gstar":
            if c != "/":
                out.append((p, i, 1))
            elif g == 1:
                out.append((p, i, 0))
        elif kind in ("star", "anystar"):
            if c == "/" and kind == "star" and pat.syntax == "glob":
                continue
            out.append((p, i, 0))
        elif _char_ok(tok, c, pat.syntax):
            out.append((p, i + 1, 0))
    return _closure(pats, out)


def _accepts(pats: Sequence[Pattern], states: frozenset[State]) -> bool:
    return any(i == len(pats[p].tokens) and g == 0 for p, i, g in states)


def nfa_match(pats: Sequence[Pattern], key: str) -> bool:
    """Match with the automata (what the analysis reasons with); tests compare it to wcmatch."""
    states = _start(pats)
    for c in key:
        states = _step(pats, states, c)
        if not states:
            return False
    return _accepts(pats, states)


# Valid keys: 0 segment start, 1 normal segment, 2 ".", 3 "..", 4 longer dot-started segment.
_KEY_ACCEPT = 1


def _key_step(v: int, c: str) -> int | None:
    if c == "/":
        return 0 if v in (1, 4) else None
    if v == 0:
        return 2 if c == "." else 1
    if v == 2:
        return 3 if c == "." else 4
    if v == 3:
        return 4
    return v


def _alphabet(groups: Sequence[Sequence[Pattern]]) -> list[str]:
    """One representative character per class of characters no pattern tells apart."""
    cuts = {
        0x20,
        0x7F,
        0x80,
        0xD800,
        0xE000,
        ord("/"),
        ord("/") + 1,
        ord("\\"),
        ord("\\") + 1,
        0x110000,
    }
    for pats in groups:
        for pat in pats:
            for tok in pat.tokens:
                if tok[0] == "lit":
                    cuts.update((ord(str(tok[1])), ord(str(tok[1])) + 1))
                elif tok[0] == "class":
                    ranges = tok[2]
                    assert isinstance(ranges, tuple)
                    for lo, hi in ranges:
                        cuts.update((lo, hi + 1))
    bounds = sorted(c for c in cuts if 0x20 <= c <= 0x110000)
    reps = []
    for lo, hi in pairwise(bounds):
        if lo == 0x7F or lo == ord("\\") or 0xD800 <= lo < 0xE000:
            continue  # never in a key (control, backslash) or not a character (surrogates)
        pick = next((chr(x) for x in range(max(lo, 0x61), min(hi, 0x7B))), None) or next(
            (chr(x) for x in range(max(lo, 0x30), min(hi, 0x3A))), None
        )
        reps.append(pick or chr(lo))
    # Prefer readable witnesses: letters first, then digits, '.', and the rest.
    reps.sort(key=lambda ch: (not ch.isalpha(), not ch.isdigit(), ch != ".", ch))
    return reps


_Node = tuple[tuple[frozenset[State], ...], int]


class SearchLimit(Exception):
    """The analysis could not decide within MAX_SEARCH_STATES."""


def witness(
    must: Sequence[Sequence[Pattern]], must_not: Sequence[Sequence[Pattern]] = ()
) -> str | None:
    """The shortest valid key every ``must`` group matches and no ``must_not`` group does.

    ``None`` proves there is none. Raises ``SearchLimit`` if the search grows too large.
    """
    groups = [*must, *must_not]
    alphabet = _alphabet(groups)
    start: _Node = (tuple(_start(g) for g in groups), 0)
    parent: dict[_Node, tuple[_Node, str] | None] = {start: None}
    queue = deque([start])
    n_must = len(must)
    while queue:
        node = queue.popleft()
        sets, v = node
        if (
            v == _KEY_ACCEPT
            and all(_accepts(g, s) for g, s in zip(groups[:n_must], sets[:n_must], strict=True))
            and not any(_accepts(g, s) for g, s in zip(groups[n_must:], sets[n_must:], strict=True))
        ):
            chars = []
            cur = node
            while (link := parent[cur]) is not None:
                cur, ch = link
                chars.append(ch)
            return "".join(reversed(chars))
        for c in alphabet:
            nv = _key_step(v, c)
            if nv is None:
                continue
            nsets = tuple(_step(g, s, c) for g, s in zip(groups, sets, strict=True))
            if any(not s for s in nsets[:n_must]):
                continue
            nxt: _Node = (nsets, nv)
            if nxt not in parent:
                if len(parent) >= MAX_SEARCH_STATES:
                    raise SearchLimit("route globs too complex to analyse")
                parent[nxt] = (node, c)
                queue.append(nxt)
    return None
