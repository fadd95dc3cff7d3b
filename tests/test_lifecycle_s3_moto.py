"""Lifecycle on an S3 store (moto's server mode: it accepts the S3 lifecycle API): what the
store enforces is written to its native configuration; incomplete uploads listed and aborted."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from lakehouse.lifecycle import RulesStore, abort_due_uploads, incomplete_uploads, parse_config
from tests.helpers import NatsServer, Service, s3_settings
from tests.s3servers import MotoServer

RULES = {
    "Rules": [
        {
            "ID": "temp",
            "Status": "Enabled",
            "Filter": {"Prefix": "temp/"},
            "Expiration": {"Days": 30},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
        },
        {
            "ID": "old-versions",
            "Status": "Enabled",
            "Filter": {"Prefix": ""},
            "NoncurrentVersionExpiration": {"NoncurrentDays": 10},
        },
        {
            "ID": "warm",
            "Status": "Enabled",
            "Filter": {"Prefix": "checkpoints/"},
            "Transitions": [{"Days": 90, "StorageClass": "WARM"}],
        },
    ]
}


def test_native_rules_and_incomplete_uploads_on_s3_moto(
    tmp_path: Path, nats: NatsServer, moto_s3: MotoServer
) -> None:
    settings = s3_settings(
        tmp_path, nats, moto_s3, s3_notification_arn="arn:aws:sqs:us-east-1:123456789012:q"
    )
    with Service(settings) as svc:
        c = svc.client
        r = c.put("/api/buckets/landing/lifecycle", json=RULES)
        assert r.status_code == 200, r.text
        s3 = moto_s3.client()
        native = s3.get_bucket_lifecycle_configuration(Bucket="landing")["Rules"]
        by_id = {n["ID"]: n for n in native}
        assert set(by_id) == {"temp", "old-versions"}  # transitions to Lakewire tiers stay ours
        assert by_id["temp"]["Expiration"]["Days"] == 30
        assert by_id["temp"]["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] == 7
        assert by_id["old-versions"]["NoncurrentVersionExpiration"]["NoncurrentDays"] == 10
        enforced = {e["ID"]: e for e in c.get("/api/buckets/landing/lifecycle/enforcement").json()}
        assert enforced["warm"] == {"ID": "warm", "store": [], "lakewire": ["Transitions"]}
        assert "AbortIncompleteMultipartUpload" in enforced["temp"]["store"]

        up1 = s3.create_multipart_upload(Bucket="landing", Key="temp/big.bin")["UploadId"]
        up2 = s3.create_multipart_upload(Bucket="landing", Key="keep/big.bin")["UploadId"]
        listed = c.get("/api/buckets/landing/uploads").json()
        assert {(u["key"], u["upload_id"]) for u in listed} == {
            ("temp/big.bin", up1),
            ("keep/big.bin", up2),
        }
        # by rule: only the temp/ upload is covered, and only once it is 7 days old
        store = svc.runtime.store
        config = RulesStore(store).get("landing")
        assert config is not None
        # (moto reports a fixed initiation time, so the clock is set relative to it)
        initiated = incomplete_uploads(store, "landing")[0].initiated
        assert abort_due_uploads(store, "landing", config, initiated + timedelta(days=1)) == []
        later = initiated + timedelta(days=8)
        assert [u.key for u in abort_due_uploads(store, "landing", config, later)] == [
            "temp/big.bin"
        ]
        # by hand
        r = c.delete(
            "/api/buckets/landing/uploads", params={"key": "keep/big.bin", "upload_id": up2}
        )
        assert r.status_code == 204
        assert incomplete_uploads(store, "landing") == []

        assert c.delete("/api/buckets/landing/lifecycle").status_code == 204
        assert "Rules" not in _native_or_empty(s3)


def _native_or_empty(s3: object) -> dict[str, object]:
    try:
        return s3.get_bucket_lifecycle_configuration(Bucket="landing")  # type: ignore[attr-defined]
    except Exception:
        return {}


def test_parse_keeps_s3_shape_for_the_store() -> None:
    from lakehouse.lifecycle import native_rules

    native = native_rules(parse_config(RULES))
    assert [r.rule_id for r in native] == ["temp", "old-versions"]
    assert native[0].rule_filter.prefix == "temp/"


def test_lifecycle_requests_carry_the_lifecycle_user_agent_on_s3_moto(
    tmp_path: Path, nats: NatsServer, moto_s3: MotoServer
) -> None:
    from datetime import UTC, datetime

    from lakehouse.lifecycle import USER_AGENT, Applier, plan
    from lakehouse.objectstore import open_object_store
    from lakehouse.tiers import get_resolved

    settings = s3_settings(tmp_path, nats, moto_s3)
    store = open_object_store(settings)
    store.create_bucket("landing")
    store.put("landing", "checkpoints/c.bin", b"c" * 10)
    store.put("landing", "temp/t.bin", b"t")
    RulesStore(store).put("landing", parse_config(RULES["Rules"][:1] + RULES["Rules"][2:]))
    seen: list[str] = []
    applier = Applier(settings, store)
    applier._s3.meta.events.register(
        "before-send.s3.*", lambda request, **_: seen.append(request.headers["User-Agent"])
    )
    at = datetime.now(UTC) + timedelta(days=100)
    applier.apply(plan(settings, store, "landing", at=at))
    assert seen and all(
        (ua.decode() if isinstance(ua, bytes) else ua).startswith(USER_AGENT) for ua in seen
    )
    assert get_resolved(store, "landing", "checkpoints/c.bin") == b"c" * 10
    assert [o.key for o in store.iter_objects("landing")] == []
