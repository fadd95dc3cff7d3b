"""No key or secret reaches a log (issue 14): a full platform run (`lakewire up --detach`) with
tenants created, used, rotated and refused, then every log file of the data dir is searched for
every key and secret the run had: the admin key, each tenant key (and its secret part alone),
the presign signing key, a presigned link's signature, and every generated secret in ``state/``.

Logs are every file under ``logs/``, every ``*.log``/``*.out``/``*.err`` anywhere in the data
dir (Dagster's run and compute logs included) and the audit log ``state/audit.jsonl``.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.helpers import Platform, csv_bytes, wait_for

pytestmark = pytest.mark.platform

# Generated secrets the platform keeps in state/ (each read as text, one secret per file).
STATE_SECRETS = ("api_key", "presign_key")
LOG_SUFFIXES = {".log", ".out", ".err", ".jsonl"}


def log_files(data_dir: Path) -> list[Path]:
    files = [p for p in (data_dir / "logs").rglob("*") if p.is_file()]
    files += [
        p
        for p in data_dir.rglob("*")
        if p.is_file() and p.suffix in LOG_SUFFIXES and "logs" not in p.relative_to(data_dir).parts
    ]
    return files


def secrets_of(data_dir: Path) -> dict[str, str]:
    state = data_dir / "state"
    found = {name: (state / name).read_text().strip() for name in STATE_SECRETS}
    secrets_dir = state / "secrets"
    if secrets_dir.is_dir():
        found.update({f"secrets/{p.name}": p.read_text().strip() for p in secrets_dir.iterdir()})
    return found


def tenant_secrets(label: str, key: str) -> dict[str, str]:
    """A tenant key and its secret part (``lw.<tenant>.<key id>.<secret>``)."""
    return {label: key, f"{label} secret": key.rsplit(".", 1)[1]}


def test_no_log_of_a_platform_run_holds_a_key_or_secret(platform: Platform) -> None:
    secrets = secrets_of(platform.data_dir)
    admin = {"Authorization": f"Bearer {secrets['api_key']}"}
    api = httpx.Client(base_url=platform.storage_url, timeout=60)

    first = platform.lakewire("tenant", "create", "logs-t", "--name", "Logs").stdout.strip()
    secrets.update(tenant_secrets("first tenant key", first))
    tenant = {"Authorization": f"Bearer {first}"}
    r = api.put(
        "/api/buckets/landing/objects/logs-t/orders/a.csv", content=csv_bytes(3), headers=tenant
    )
    assert r.status_code in (200, 201), r.text
    assert api.get("/api/buckets/landing/objects?prefix=logs-t/", headers=tenant).status_code == 200
    link = api.post(
        "/api/buckets/landing/presign",
        json={"key": "logs-t/orders/a.csv", "expires_in": 300},
        headers=tenant,
    ).json()["url"]
    assert httpx.get(link, timeout=30).status_code == 200
    for name, values in parse_qs(urlsplit(link).query).items():
        if "sig" in name.lower():
            secrets[f"link {name}"] = values[0]
    assert any(label.startswith("link") for label in secrets)

    second = platform.lakewire("tenant", "rotate-key", "logs-t").stdout.strip()
    secrets.update(tenant_secrets("second tenant key", second))
    first_id = first.split(".")[2]
    platform.lakewire("tenant", "revoke-key", "logs-t", first_id)
    assert api.get("/api/buckets", headers=tenant).status_code == 401  # the revoked key
    tenant = {"Authorization": f"Bearer {second}"}
    r = api.put(
        "/api/buckets/landing/objects/logs-t/orders/b.csv", content=csv_bytes(2), headers=tenant
    )
    assert r.status_code in (200, 201), r.text
    assert api.post("/api/buckets", json={"name": "x-bucket"}, headers=tenant).status_code == 403
    r = api.post(
        "/api/sql", json={"statement": "SELECT * FROM delta.default.orders"}, headers=tenant
    )
    assert r.status_code == 403  # not in its schema
    assert (
        api.get("/api/buckets", headers={"Authorization": f"Bearer {uuid.uuid4()}"}).status_code
        == 401
    )
    r = api.post("/api/sql", json={"statement": "SELECT * FROM delta.system.audit"}, headers=admin)
    assert r.status_code == 200, r.text

    # The tenant's files went through the event path into its table (so the pipeline logs, run
    # logs and compute logs of a run that carried the tenant are among the files searched).
    wait_for(lambda: platform.count("delta.logs_t.orders") == 5 or None, 180, "the tenant table")

    files = log_files(platform.data_dir)
    assert any(p.parent.name == "logs" for p in files), files
    audit = next(p for p in files if p.name == "audit.jsonl")
    assert '"principal":"logs-t"' in audit.read_text()  # the search reads what the run logged
    # The link's use is in the service's request log, without its signature (checked below).
    service_log = platform.data_dir / "logs" / "storage-service.log"
    assert service_log in files
    assert "/presigned/landing/logs-t/orders/a.csv" in service_log.read_text()
    leaks = [
        f"{label} in {path.relative_to(platform.data_dir)}"
        for path in files
        for label, secret in secrets.items()
        if secret and secret in path.read_text(errors="replace")
    ]
    assert leaks == []
