"""Object tags and lifecycle tag filters (issue 12), on the local backend and on SeaweedFS.

Tags are real: extended attributes on the local backend's files, S3 object tagging on
SeaweedFS. Objects age through the injectable clock (``plan(..., at=...)``), never by waiting.
SeaweedFS also takes the bucket's native lifecycle configuration, written with the ``minio`` SDK.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lakehouse.lifecycle import (
    LifecycleError,
    RulesStore,
    apply,
    parse_config,
    plan,
)
from lakehouse.objectstore import InvalidTags, ObjectStore
from lakehouse.settings import Settings
from tests.helpers import NatsServer, Service, s3_settings
from tests.s3servers import SeaweedFS

DAY = timedelta(days=1)

TAGGED = [
    {
        "ID": "scratch",
        "Status": "Enabled",
        "Filter": {"Tag": {"Key": "kind", "Value": "scratch"}},
        "Expiration": {"Days": 7},
    },
    {
        "ID": "raw-logs",
        "Status": "Enabled",
        "Filter": {
            "And": {
                "Prefix": "logs/",
                "Tags": [{"Key": "kind", "Value": "raw"}, {"Key": "team", "Value": "ops"}],
            }
        },
        "Transitions": [{"Days": 30, "StorageClass": "WARM"}],
    },
    {
        "ID": "warm-raw-expire",
        "Status": "Enabled",
        "Filter": {"Tag": {"Key": "kind", "Value": "raw"}},
        "Expiration": {"Days": 90},
    },
]


def test_local_tags_live_on_the_file_and_follow_s3_limits(store: ObjectStore) -> None:
    info = store.put("landing", "a.csv", b"x,y\n")
    assert store.get_tags("landing", "a.csv") == {}
    store.set_tags("landing", "a.csv", {"kind": "raw", "team": ""})
    assert store.get_tags("landing", "a.csv") == {"kind": "raw", "team": ""}
    assert store.head("landing", "a.csv").etag == info.etag  # the bytes' identity is untouched
    with pytest.raises(InvalidTags, match="at most 10"):
        store.set_tags("landing", "a.csv", {f"k{i}": "v" for i in range(11)})
    with pytest.raises(InvalidTags, match="1 to 128"):
        store.set_tags("landing", "a.csv", {"k" * 129: "v"})
    store.put("landing", "a.csv", b"new")  # an overwrite is a new object: no tags, as on S3
    assert store.get_tags("landing", "a.csv") == {}
    store.set_tags("landing", "a.csv", {"kind": "raw"})
    store.set_tags("landing", "a.csv", {})
    assert store.get_tags("landing", "a.csv") == {}


def test_a_tag_filter_with_abort_of_uploads_is_refused_naming_rule_and_field() -> None:
    rule = {
        "ID": "no-tags-on-uploads",
        "Status": "Enabled",
        "Filter": {"And": {"Prefix": "tmp/", "Tags": [{"Key": "k", "Value": "v"}]}},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
    }
    with pytest.raises(LifecycleError) as exc:
        parse_config([rule])
    assert exc.value.issues[0]["rule"] == "no-tags-on-uploads"
    assert "tag filter" in exc.value.issues[0]["message"]
    bad_tag = {"ID": "t", "Status": "Enabled", "Filter": {"Tag": {"Key": ""}}}
    with pytest.raises(LifecycleError, match=r"rule 't' field Filter\.Tag\.Key"):
        parse_config([{**bad_tag, "Expiration": {"Days": 1}}])


def _check_tag_filters(settings: Settings, store: ObjectStore) -> None:
    """Shared by both backends: the same objects, tags and clock give the same plan."""
    store.put("landing", "tmp/a.bin", b"a")
    store.put("landing", "tmp/b.bin", b"b")
    store.put("landing", "logs/raw.log", b"raw log")
    store.put("landing", "logs/half.log", b"half")
    store.put("landing", "other/raw.log", b"raw elsewhere")
    store.set_tags("landing", "tmp/a.bin", {"kind": "scratch"})
    store.set_tags("landing", "logs/raw.log", {"kind": "raw", "team": "ops"})
    store.set_tags("landing", "logs/half.log", {"kind": "raw"})  # And needs both tags
    store.set_tags("landing", "other/raw.log", {"kind": "raw", "team": "ops"})  # not logs/
    RulesStore(store).put("landing", parse_config(TAGGED))
    t0 = datetime.now(UTC)

    def planned(at: datetime) -> set[tuple[str, str, str]]:
        return {(a.key, a.action, a.rule) for a in plan(settings, store, "landing", at=at)}

    assert planned(t0 + 2 * DAY) == set()
    assert planned(t0 + 8 * DAY) == {("tmp/a.bin", "expire", "scratch")}
    at = t0 + 31 * DAY
    assert planned(at) == {
        ("tmp/a.bin", "expire", "scratch"),
        ("logs/raw.log", "transition", "raw-logs"),
    }
    apply(settings, store, plan(settings, store, "landing", at=at), clock=lambda: at)
    # the tags went with the object to its tier, so the tag-filtered expiry still finds it
    tier_key = "landing/logs/raw.log"
    assert store.get_tags("archive-warm", tier_key) == {"kind": "raw", "team": "ops"}
    later = {
        (a.key, a.action, a.current_class)
        for a in plan(settings, store, "landing", at=t0 + 91 * DAY)
    }
    assert later == {
        ("logs/raw.log", "expire", "WARM"),
        ("logs/half.log", "expire", "STANDARD"),
        ("other/raw.log", "expire", "STANDARD"),
    }
    assert [o.key for o in store.iter_objects("landing", "tmp/")] == ["tmp/b.bin"]


def test_tag_filters_plan_and_travel_with_a_transition_local(
    tmp_path: Path, store: ObjectStore
) -> None:
    _check_tag_filters(Settings(data_dir=tmp_path / "data"), store)


def test_tagging_api_sets_gets_and_refuses_bad_sets(service: Service) -> None:
    c = service.client
    url = "/api/buckets/landing/objects/logs/raw.log"
    assert c.put(url, content=b"raw").status_code == 201
    assert c.get(f"{url}?tagging").json() == {"TagSet": []}
    body = {"TagSet": [{"Key": "kind", "Value": "raw"}, {"Key": "team", "Value": "ops"}]}
    assert c.put(f"{url}?tagging", json=body).status_code == 204
    assert c.get(f"{url}?tagging").json() == body
    assert c.get(url).content == b"raw"  # ?tagging changed the tags, never the object
    dup = {"TagSet": [{"Key": "kind", "Value": "a"}, {"Key": "kind", "Value": "b"}]}
    r = c.put(f"{url}?tagging", json=dup)
    assert r.status_code == 422 and "TagSet.1.Key" in r.text
    r = c.put(f"{url}?tagging", json={"TagSet": [{"Key": "k", "Val": "v"}]})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "TagSet.0.Val"
    many = {"TagSet": [{"Key": f"k{i}", "Value": ""} for i in range(11)]}
    assert c.put(f"{url}?tagging", json=many).status_code == 422
    missing = "/api/buckets/landing/objects/nope.txt?tagging"
    assert c.put(missing, json=body).status_code == 404
    assert c.delete(f"{url}?tagging").status_code == 204
    assert c.get(f"{url}?tagging").json() == {"TagSet": []}
    assert c.get(url).status_code == 200  # DELETE ?tagging keeps the object

    rules = {"Rules": TAGGED[:1]}
    assert c.put("/api/buckets/landing/lifecycle", json=rules).status_code == 200
    c.put("/api/buckets/landing/objects/s.tmp", content=b"s")
    c.put(
        "/api/buckets/landing/objects/s.tmp?tagging",
        json={"TagSet": [{"Key": "kind", "Value": "scratch"}]},
    )
    at = (datetime.now(UTC) + 8 * DAY).isoformat()
    planned = c.get("/api/buckets/landing/lifecycle/plan", params={"at": at}).json()
    assert [(p["object"], p["rule"]) for p in planned] == [("landing/s.tmp", "scratch")]


def test_tags_and_native_lifecycle_via_minio_sdk_on_s3_seaweedfs(
    tmp_path: Path, nats: NatsServer, seaweed_s3: SeaweedFS
) -> None:
    settings = s3_settings(tmp_path, nats, seaweed_s3)
    native_rules = {
        "Rules": [
            {
                "ID": "temp",
                "Status": "Enabled",
                "Filter": {"Prefix": "temp/"},
                "Expiration": {"Days": 30},
                "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
            },
            {
                "ID": "scratch",
                "Status": "Enabled",
                "Filter": {"Tag": {"Key": "kind", "Value": "scratch"}},
                "Expiration": {"Days": 7},
            },
            {
                "ID": "big",
                "Status": "Enabled",
                "Filter": {"ObjectSizeGreaterThan": 1000},
                "Expiration": {"Days": 3},
            },
            {
                "ID": "warm",
                "Status": "Enabled",
                "Filter": {"Prefix": "checkpoints/"},
                "Transitions": [{"Days": 90, "StorageClass": "WARM"}],
            },
        ]
    }
    with Service(settings) as svc:
        c = svc.client
        r = c.put("/api/buckets/landing/lifecycle", json=native_rules)
        assert r.status_code == 200, r.text
        s3 = seaweed_s3.client()
        native = {
            n["ID"]: n for n in s3.get_bucket_lifecycle_configuration(Bucket="landing")["Rules"]
        }
        # a size filter is not in the store's lifecycle the SDK writes; transitions are Lakewire's
        assert set(native) == {"temp", "scratch"}
        assert native["temp"]["Expiration"]["Days"] == 30
        assert native["scratch"]["Filter"]["Tag"] == {"Key": "kind", "Value": "scratch"}
        enforced = {e["ID"]: e for e in c.get("/api/buckets/landing/lifecycle/enforcement").json()}
        assert enforced["temp"]["store"] == ["Expiration", "AbortIncompleteMultipartUpload"]
        assert enforced["big"] == {"ID": "big", "store": [], "lakewire": ["Expiration"]}
        assert enforced["warm"] == {"ID": "warm", "store": [], "lakewire": ["Transitions"]}

        url = "/api/buckets/landing/objects/x.bin"
        c.put(url, content=b"x")
        tagging = {"TagSet": [{"Key": "kind", "Value": "scratch"}]}
        assert c.put(f"{url}?tagging", json=tagging).status_code == 204
        assert s3.get_object_tagging(Bucket="landing", Key="x.bin")["TagSet"] == tagging["TagSet"]
        assert c.get(f"{url}?tagging").json() == tagging

        assert c.delete("/api/buckets/landing/lifecycle").status_code == 204
        with pytest.raises(s3.exceptions.ClientError):
            s3.get_bucket_lifecycle_configuration(Bucket="landing")

    store = svc.runtime.store
    for b in ("archive-warm", "archive-cold"):
        if not store.bucket_exists(b):
            store.create_bucket(b)
    for k in list(store.iter_objects("landing")):
        store.delete("landing", k.key)
    _check_tag_filters(settings, store)


NONCURRENT = [
    {
        "ID": "old-checkpoints",
        "Status": "Enabled",
        "Filter": {"Prefix": "ckpt/"},
        "NoncurrentVersionTransitions": [
            {"NoncurrentDays": 30, "StorageClass": "WARM", "NewerNoncurrentVersions": 1},
            {"NoncurrentDays": 90, "StorageClass": "COLD"},
        ],
    }
]


def test_noncurrent_versions_move_to_tiers_and_resume_on_s3_seaweedfs(
    tmp_path: Path, nats: NatsServer, seaweed_s3: SeaweedFS
) -> None:
    from lakehouse.objectstore import open_object_store
    from lakehouse.tiers import version_tier_key

    settings = s3_settings(tmp_path, nats, seaweed_s3)
    store = open_object_store(settings)
    store.create_bucket("landing")
    store.set_versioning("landing", True)
    for body in (b"one", b"two", b"three"):
        store.put("landing", "ckpt/a.bin", body)
    store.put("landing", "other/b.bin", b"b1")
    store.put("landing", "other/b.bin", b"b2")  # a noncurrent version no rule covers
    v3, v2, v1 = store.list_versions("landing", "ckpt/a.bin")
    RulesStore(store).put("landing", parse_config(NONCURRENT))
    t0 = datetime.now(UTC)

    assert plan(settings, store, "landing", at=t0 + 10 * DAY) == []
    at = t0 + 40 * DAY
    (act,) = plan(settings, store, "landing", at=at)  # v2 is the 1 newer noncurrent kept
    assert (act.version_id, act.storage_class) == (v1.version_id, "WARM")
    with pytest.raises(InterruptedError):  # killed after the copy, before the delete
        apply(settings, store, [act], clock=lambda: at, stop_after=2)
    (resumed,) = plan(settings, store, "landing", at=at)
    assert (resumed.rule, resumed.version_id) == ("(resume)", v1.version_id)
    outcome = apply(settings, store, [resumed], clock=lambda: at)
    assert outcome.transitioned == 1
    warm_key = version_tier_key("landing", "ckpt/a.bin", v1.version_id)
    assert store.get_bytes("archive-warm", warm_key) == b"one"
    left = [v.version_id for v in store.list_versions("landing", "ckpt/a.bin")]
    assert left == [v3.version_id, v2.version_id]  # v1 is in exactly one place: its tier
    assert store.get_bytes("landing", "ckpt/a.bin") == b"three"
    assert plan(settings, store, "landing", at=at) == []

    later = t0 + 100 * DAY  # both noncurrent versions are due COLD, v1 from its WARM tier
    actions = plan(settings, store, "landing", at=later)
    assert {(a.version_id, a.current_class, a.storage_class) for a in actions} == {
        (v1.version_id, "WARM", "COLD"),
        (v2.version_id, "STANDARD", "COLD"),
    }
    apply(settings, store, actions, clock=lambda: later)
    assert store.get_bytes("archive-cold", warm_key) == b"one"
    assert [o.key for o in store.iter_objects("archive-warm")] == []
    cold_v2 = version_tier_key("landing", "ckpt/a.bin", v2.version_id)
    assert store.get_bytes("archive-cold", cold_v2) == b"two"
    assert [v.version_id for v in store.list_versions("landing", "ckpt/a.bin")] == [v3.version_id]
    assert len(store.list_versions("landing", "other/b.bin")) == 2
    assert plan(settings, store, "landing", at=later) == []

    # the API still lists the tiered versions (with their class) and restores one from its tier
    with Service(settings) as svc:
        c = svc.client
        listed = c.get("/api/buckets/landing/versions", params={"key": "ckpt/a.bin"}).json()
        classes = {v["version_id"]: v["storage_class"] for v in listed["versions"]}
        assert classes == {v3.version_id: "STANDARD", v2.version_id: "COLD", v1.version_id: "COLD"}
        restore = {"key": "ckpt/a.bin", "version_id": v1.version_id}
        r = c.post("/api/buckets/landing/versions/restore", json=restore)
        assert r.status_code == 200 and r.json()["size"] == 3, r.text
        assert c.get("/api/buckets/landing/objects/ckpt/a.bin").content == b"one"
        gone = {"key": "ckpt/a.bin", "version_id": "no-such-version"}
        assert c.post("/api/buckets/landing/versions/restore", json=gone).status_code == 404
