"""Keys and prefixes, generated (hypothesis) on both backends: every key either round-trips
through the API or is refused with a 4xx and a message; no prefix lists anything outside the
bucket; nothing outside the service's data dir ever changes."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from urllib.parse import quote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import Service

# Characters that have broken key handling somewhere: separators, dots, control characters,
# URL syntax, multi-byte letters, the staging marker.
ALPHABET = st.sampled_from(
    [*"ab/.-_ #%?&+=~", "..", "\t", "\x7f", "\n", "é", "報", "😀", "\\", "#1", "x" * 120]
)
KEYS = st.lists(ALPHABET, min_size=1, max_size=24).map("".join)
PREFIXES = st.lists(ALPHABET, min_size=0, max_size=12).map("".join)
EXAMPLES = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _url(key: str) -> str:
    # Dots are sent escaped, so no client folds "a/../b" into "b" before the service sees it.
    return quote(key, safe="/").replace(".", "%2E")


def _tree(root: Path, *skip: Path) -> dict[str, float]:
    """Every path under ``root`` but the skipped trees, with its mtime."""
    out: dict[str, float] = {}
    for dirpath, dirs, files in os.walk(root):
        if any(Path(dirpath).is_relative_to(s) for s in skip):
            dirs.clear()
            continue
        for name in dirs + files:
            path = os.path.join(dirpath, name)
            out[path] = os.lstat(path).st_mtime
    return out


@EXAMPLES
@given(key=KEYS, body=st.binary(max_size=64))
def test_every_key_round_trips_or_is_a_4xx(service: Service, key: str, body: bytes) -> None:
    data_dir = service.settings.resolved_data_dir
    around = data_dir.parent  # the test's temp dir: the data dir and the nats-server's store
    nats_store = around / "nats"
    before = _tree(around, data_dir, nats_store)
    c = service.client
    put = c.put(f"/api/buckets/datasets/objects/{_url(key)}", content=body)
    assert put.status_code < 500, (key, put.text)
    if put.status_code == 201:
        got = c.get(f"/api/buckets/datasets/objects/{_url(key)}")
        assert got.status_code == 200, (key, got.text)
        assert got.content == body
        assert got.headers["etag"].strip('"') == hashlib.md5(body).hexdigest()
        listed = c.get("/api/buckets/datasets/objects", params={"prefix": key, "delimiter": ""})
        assert listed.status_code == 200, (key, listed.text)
        assert key in [o["key"] for o in listed.json()["objects"]]
        assert c.delete(f"/api/buckets/datasets/objects/{_url(key)}").status_code == 204
    else:
        assert 400 <= put.status_code < 500 and put.json()["detail"], (key, put.text)
    assert _tree(around, data_dir, nats_store) == before


@EXAMPLES
@given(prefix=PREFIXES, delimiter=st.sampled_from(["/", "", "-", "é"]))
def test_no_prefix_lists_outside_the_bucket(service: Service, prefix: str, delimiter: str) -> None:
    c = service.client
    c.put("/api/buckets/datasets/objects/inside/known.csv", content=b"1")
    resp = c.get("/api/buckets/datasets/objects", params={"prefix": prefix, "delimiter": delimiter})
    assert resp.status_code in (200, 422), (prefix, resp.text)
    if resp.status_code == 200:
        page = resp.json()
        for name in page["folders"] + [o["key"] for o in page["objects"]]:
            assert name.startswith(prefix)
            assert name.startswith("inside/"), (prefix, name)  # the bucket's only content
