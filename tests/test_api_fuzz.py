"""A property-based fuzz of the HTTP API from its own OpenAPI schema (schemathesis), issue 14.

Every operation the schema lists is called with generated paths, queries and bodies, once with
the admin key and once with a tenant's key, against the service in its own process: no answer is
a 5xx, and a refused call (any 4xx) leaves every object of every bucket (tenants, routes and
rules in the system bucket included) byte for byte as it was. Few examples per operation keep it
under a minute; the point is breadth (every endpoint, both principals), not depth.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.core.result import Ok

from tests.helpers import API_KEY, ServiceProcess, service_process

EXAMPLES = 4  # per operation and principal


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    with service_process(tmp_path_factory.mktemp("fuzz")) as proc:
        yield proc


def snapshot(data_dir: Path) -> dict[str, str]:
    """Every file of every bucket (local backend: a folder per bucket; the system bucket holds
    tenants and routes) and the notification rules, by content hash."""
    files = [*sorted((data_dir / "storage").rglob("*")), data_dir / "state" / "notifications.json"]
    return {
        str(p.relative_to(data_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in files
        if p.is_file()
    }


def test_no_5xx_and_no_change_on_a_refused_call(running: ServiceProcess) -> None:
    admin = {"Authorization": f"Bearer {API_KEY}"}
    with httpx.Client(base_url=running.url, headers=admin, timeout=30) as api:
        r = api.post("/api/tenants", json={"id": "fuzz-t"})
        assert r.status_code == 201, r.text
        tenant = {"Authorization": f"Bearer {r.json()['key']}"}
        for key, headers in (("fuzz-t/x.csv", tenant), ("shared.csv", admin)):
            r = api.put(
                f"/api/buckets/landing/objects/{key}", content=b"a,b\n1,2\n", headers=headers
            )
            assert r.status_code == 201, r.text
    schema = schemathesis.openapi.from_url(f"{running.url}/openapi.json")
    results = list(schema.get_all_operations())
    operations = [r.ok() for r in results if isinstance(r, Ok)]
    assert len(operations) == len(results)  # the service's schema is valid throughout
    assert len(operations) > 20
    failures: list[str] = []
    statuses: Counter[tuple[str, int]] = Counter()
    with requests.Session() as session:  # closed at the end: the service stops at once
        for operation in operations:
            for who, headers in (("admin", admin), ("tenant", tenant)):
                fuzz(
                    operation,
                    who,
                    headers,
                    running.url,
                    running.data_dir,
                    session,
                    failures,
                    statuses,
                )
    assert failures == []
    # The keys were used as such: the admin was let in, the tenant both let in and refused.
    assert statuses["admin", 2] and statuses["tenant", 2] and statuses["tenant", 4]
    assert sum(statuses.values()) >= len(operations) * 2


def fuzz(
    operation: schemathesis.APIOperation,
    who: str,
    headers: dict[str, str],
    base_url: str,
    data_dir: Path,
    session: requests.Session,
    failures: list[str],
    statuses: Counter[tuple[str, int]],
) -> None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def call(case: schemathesis.Case) -> None:
        before = snapshot(data_dir)
        resp = case.call(base_url=base_url, session=session, headers=headers, timeout=30)
        statuses[who, resp.status_code // 100] += 1
        what = f"{who} {case.method} {case.formatted_path} -> {resp.status_code}"
        if resp.status_code >= 500:
            failures.append(f"{what}: {resp.text[:200]}")
        elif resp.status_code >= 400 and snapshot(data_dir) != before:
            failures.append(f"{what} changed the store")

    call()
