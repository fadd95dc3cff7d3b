"""Route globs: the semantics people expect (gitignore-style), and the automata the analysis
reasons with agree with the matcher itself."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lakehouse.objectstore import InvalidName, validate_key
from lakehouse.route_globs import (
    GlobSyntaxError,
    check_glob,
    compile_patterns,
    glob_match,
    nfa_match,
    witness,
)

# (glob, key, matches?)
CASES = [
    # '**' spans zero or more whole segments
    ("orders/**/*.csv", "orders/2024.csv", True),  # zero segments: the bug of issue 18
    ("orders/**/*.csv", "orders/2024/01/02.csv", True),
    ("orders/**/*.csv", "orders/2024/x.json", False),
    ("orders/**/*.csv", "sales/orders/x.csv", False),
    ("**/*.csv", "x.csv", True),
    ("**/*.csv", "a/b/c/x.csv", True),
    ("a/**/b", "a/b", True),
    ("a/**/b", "a/x/y/b", True),
    ("orders/**", "orders/a", True),
    ("orders/**", "orders/a/b.csv", True),
    ("orders/**", "orders", False),
    ("**", "anything/at/all.csv", True),
    # the catch-all: a first folder, then any depth
    ("*/**", "shop/a.csv", True),
    ("*/**", "shop/2024/01/a.parquet", True),
    ("*/**", "loose.csv", False),
    # '*' and '?' stay within one segment
    ("*/*.csv", "shop/a.csv", True),
    ("*/*.csv", "shop/2024/a.csv", False),  # fnmatch said True
    ("*", "a/b", False),
    ("a*", "abc", True),
    ("a?c", "abc", True),
    ("a?c", "a/c", False),
    ("a**b", "a/b", False),  # '**' inside a segment is just '*'
    ("a**b", "axxb", True),
    ("***", "a/b", False),
    # braces
    ("{orders,sales}/*.csv", "sales/x.csv", True),
    ("{orders,sales}/*.csv", "users/x.csv", False),
    ("*/*.{csv,tsv}", "a/x.tsv", True),
    ("*/*.{csv,tsv}", "a/x.json", False),
    ("a/{b,c/**}/d", "a/c/x/y/d", True),
    ("{a}", "{a}", True),  # one alternative is literal, as in bash
    # classes
    ("[ab]/*", "a/x", True),
    ("[ab]/*", "c/x", False),
    ("[!a]/*", "b/x", True),
    ("[!a]/*", "a/x", False),
    ("[^a]/*", "a/x", False),
    ("day=[0-9][0-9]/*", "day=07/x.csv", True),
    ("day=[0-9][0-9]/*", "day=7x/x.csv", False),
    ("[]a]x", "]x", True),
    # escapes, dots, case
    ("\\*/x", "*/x", True),
    ("\\*/x", "a/x", False),
    ("*/*", ".cache/x.csv", True),  # "*" matches dot names
    ("*/**", ".tmp/x.csv", True),
    ("*.CSV", "a.csv", False),  # case-sensitive, as keys are
]


@pytest.mark.parametrize(("glob", "key", "expected"), CASES)
def test_glob_semantics(glob: str, key: str, expected: bool) -> None:
    assert glob_match(glob, key) is expected
    assert nfa_match(compile_patterns(glob), key) is expected  # the analysis agrees


@pytest.mark.parametrize(
    ("glob", "message"),
    [
        ("/orders/*", "must not start with '/'"),
        ("orders//x", "empty path segment"),
        ("orders/", "empty path segment"),
        ("a/../b", "'.' and '..'"),
        ("a[/]b", "'/' cannot be inside"),
        ("[[:alpha:]]/*", "POSIX classes"),
        (
            "{" + ",".join(str(i) for i in range(20)) + "}/{" + ",".join("abcdefghijklmnopq") + "}",
            "alternatives",
        ),
    ],
)
def test_glob_syntax_errors(glob: str, message: str) -> None:
    with pytest.raises(GlobSyntaxError, match=message):
        check_glob(glob)


GLOBS = [g for g, _, _ in CASES] + ["*/x/**/y*", "{a,b*}/**/[!x]?", "a/*/**/c"]


@settings(max_examples=300, deadline=None)
@given(
    glob=st.sampled_from(GLOBS),
    key=st.lists(
        st.text(alphabet="ab.xc*[]{}=0", min_size=1, max_size=4), min_size=1, max_size=4
    ).map("/".join),
)
def test_automata_agree_with_wcmatch(glob: str, key: str) -> None:
    try:
        validate_key(key)
    except InvalidName:
        return
    assert nfa_match(compile_patterns(glob), key) == glob_match(glob, key)


def test_witness_finds_keys_or_proves_there_are_none() -> None:
    pats = compile_patterns
    assert witness([pats("orders/**/*.csv")], [pats("orders/*/*.csv")]) == "orders/a.csv"
    assert witness([pats("*/*.csv")], [pats("*/**")]) is None  # covered
    both = witness([pats("*/*.csv"), pats("orders/**")])
    assert both is not None and glob_match("*/*.csv", both) and glob_match("orders/**", both)
    # the union of two globs covers a braced one
    assert witness([pats("a/*.{csv,json}")], [pats("a/*.csv"), pats("a/*.json")]) is None
    # fnmatch read '*' across '/': a key only the old rules matched
    old_only = witness([pats("*/*.csv", "fnmatch")], [pats("*/*.csv")])
    assert old_only is not None and old_only.count("/") >= 2
    # only valid keys are witnesses: no empty segment, no hidden last segment
    assert witness([pats("a/**")], [pats("a/*")]) == "a/a/a"
