"""docker-compose.yml read as the engine would, since Docker cannot run here (issue 10).

The compose file validates against the Compose Specification's JSON schema; every variable has
a default and is documented; every host path it mounts or builds from exists; every image is
pinned; start order puts NATS and its stream before MinIO and the catalog before Trino and
Dagster; long-running services restart and have healthchecks, one-shot jobs do not restart;
secrets are mounted only as each service's own folder; ports bind to loopback by default.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from lakewire.platform_secrets import SERVICES

ROOT = Path(__file__).parent.parent
SPEC = ROOT.parent / "shared" / "specs" / "compose-spec.json"
ONE_SHOT = {"secrets", "nats-stream", "lakekeeper-migrate", "init", "trino-init"}
VAR_RE = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(:?[-?+][^}]*)?\}")
DIGEST_RE = re.compile(r"@sha256:[0-9a-f]{64}$")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    svcs: dict[str, dict[str, Any]] = compose["services"]
    return svcs


def test_validates_against_the_compose_specification(compose: dict[str, Any]) -> None:
    import jsonschema

    if not SPEC.exists():
        pytest.skip(f"{SPEC} is not on this machine")
    schema = json.loads(SPEC.read_text())
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(compose), key=str)
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_every_variable_has_a_default_and_is_documented() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    found = VAR_RE.findall(text)
    assert found, "expected at least LAKEWIRE_BIND"
    docs = (ROOT / "docs" / "deploy.md").read_text()
    for name, default in found:
        # Credentials never come from variables: the secrets step writes them to files.
        assert default.startswith((":-", "-")), f"${{{name}}} has no default"
        assert name in docs, f"${{{name}}} is not documented in docs/deploy.md"
    # Single `$` only in `${VAR}` form; shell variables inside commands are escaped as `$$`.
    bare = re.findall(r"(?<!\$)\$(?!\$|\{)[A-Za-z_(]", text.replace("$$", ""))
    assert not bare, bare


def _host_paths(svc: dict[str, Any]) -> list[str]:
    out = []
    for vol in svc.get("volumes", []):
        if isinstance(vol, str):
            source = vol.split(":", 1)[0]
            if source.startswith((".", "/")):
                out.append(source)
        elif vol.get("type") == "bind":
            out.append(vol["source"])
    build = svc.get("build")
    if isinstance(build, str):
        out.append(build)
    elif isinstance(build, dict):
        out.append(build.get("context", "."))
    return out


def test_every_mounted_host_path_and_build_context_exists(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, svc in services.items():
        for path in _host_paths(svc):
            assert (ROOT / path).exists(), f"{name}: {path} does not exist in the repository"
            if path.startswith("./") and not path.endswith(".sql"):
                # Mounted config must be in the image's build context or deploy/, never a
                # local state folder.
                assert path.startswith("./deploy/"), f"{name}: mounts {path} from outside deploy/"


def _pinned(image: str) -> bool:
    if DIGEST_RE.search(image):
        return True
    name, _, tag = image.rpartition(":")
    if not name or "/" in tag:
        return False  # no tag at all
    if tag in ("latest", "stable", "main", "edge") or tag.startswith("latest"):
        return False
    # A version: digits somewhere (17.6-bookworm, 2.15.1-alpine, RELEASE.2025-..., v0.13.6, 476)
    return bool(re.search(r"\d", tag))


def test_every_image_is_pinned_in_compose_and_dockerfiles(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, svc in services.items():
        image = svc.get("image")
        assert image, f"{name} has no image"
        if "build" in svc:
            assert image.endswith(":local"), f"{name}: a built image is tagged :local"
            continue
        assert _pinned(image), f"{name}: {image} is not pinned"
    for dockerfile in [ROOT / "Dockerfile", *ROOT.glob("deploy/**/Dockerfile")]:
        for line in dockerfile.read_text().splitlines():
            if line.startswith("FROM "):
                image = line.split()[1]
                assert _pinned(image), f"{dockerfile.relative_to(ROOT)}: {image} is not pinned"
    minio = services["minio"]["image"]
    assert minio.startswith("quay.io/minio/minio:RELEASE."), minio


def _after(services: dict[str, dict[str, Any]], name: str) -> set[str]:
    """Every service that must be up (or done) before ``name`` starts."""
    seen: set[str] = set()
    todo = [name]
    while todo:
        for dep in services[todo.pop()].get("depends_on", {}):
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return seen


def test_start_order(services: dict[str, dict[str, Any]]) -> None:
    for name in services:
        assert name not in _after(services, name), f"{name} depends on itself"
    # NATS and its stream before MinIO publishes; the stream step waits for a healthy NATS.
    assert {"nats", "nats-stream"} <= _after(services, "minio")
    assert services["minio"]["depends_on"]["nats-stream"]["condition"] == (
        "service_completed_successfully"
    )
    assert services["nats-stream"]["depends_on"]["nats"]["condition"] == "service_healthy"
    # The catalog (Lakekeeper, migrated, healthy) and init before Trino and Dagster.
    for name in ("trino", "dagster-code", "dagster-webserver", "dagster-daemon"):
        before = _after(services, name)
        assert {"lakekeeper", "lakekeeper-migrate", "init", "postgres"} <= before, name
    for name in ("dagster-webserver", "dagster-daemon"):
        assert services[name]["depends_on"]["dagster-code"]["condition"] == "service_healthy"
    assert services["trino-init"]["depends_on"]["trino"]["condition"] == "service_healthy"
    assert services["lakekeeper-migrate"]["depends_on"]["postgres"]["condition"] == (
        "service_healthy"
    )
    # Everyone waits for the secrets.
    for name in services:
        if name != "secrets":
            assert "secrets" in _after(services, name) or name == "trino-init", name


def test_restart_policies_and_healthchecks(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) >= ONE_SHOT
    for name, svc in services.items():
        if name in ONE_SHOT:
            assert svc.get("restart") == "no", f"one-shot {name} must not restart"
            assert "healthcheck" not in svc
        else:
            assert svc.get("restart") == "unless-stopped", name
            test = svc.get("healthcheck", {}).get("test")
            assert test and test[0] in ("CMD", "CMD-SHELL"), f"{name} has no healthcheck"
        for dep, cond in svc.get("depends_on", {}).items():
            if cond["condition"] == "service_completed_successfully":
                assert dep in ONE_SHOT, f"{name} waits for {dep} to exit"
            if cond["condition"] == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits on {dep}'s health"
    pg = " ".join(services["postgres"]["healthcheck"]["test"])
    assert "-h 127.0.0.1" in pg


def _secret_mounts(svc: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for vol in svc.get("volumes", []):
        if isinstance(vol, str):
            if vol.split(":", 1)[0] == "secrets":
                out.append({"source": "secrets", "string": vol})
        elif vol.get("source") == "secrets":
            out.append(vol)
    return out


def test_secrets_mounted_only_as_each_services_own_folder(
    services: dict[str, dict[str, Any]],
) -> None:
    folder_of = {
        "nats-stream": "init",
        "lakekeeper-migrate": "lakekeeper",
        "dagster-code": "dagster",
        "dagster-webserver": "dagster",
        "dagster-daemon": "dagster",
        "dagster-dispatch": "dagster",
    }
    for name, svc in services.items():
        mounts = _secret_mounts(svc)
        if name == "secrets":
            assert mounts == [{"source": "secrets", "string": "secrets:/run/lakewire-secrets"}]
            continue
        if name == "trino-init":
            assert mounts == []
            continue
        assert len(mounts) == 1, f"{name} mounts the secrets volume {len(mounts)} times"
        (m,) = mounts
        assert m.get("read_only") is True, name
        folder = m.get("volume", {}).get("subpath")
        assert folder == folder_of.get(name, name), f"{name} mounts secrets folder {folder}"
        assert folder in SERVICES
    used = {folder_of.get(n, n) for n in services} & set(SERVICES)
    assert used == set(SERVICES), f"secret folders nobody mounts: {set(SERVICES) - used}"


def test_published_ports_bind_to_loopback_unless_opened(
    services: dict[str, dict[str, Any]],
) -> None:
    published = {}
    for name, svc in services.items():
        for port in svc.get("ports", []):
            assert isinstance(port, str) and port.startswith("${LAKEWIRE_BIND:-127.0.0.1}:"), (
                f"{name}: {port}"
            )
            published[name] = port
    # Unauthenticated or internal services are never published.
    assert not {"nats", "postgres", "lakekeeper"} & set(published)
    assert {"storage", "dagster-webserver", "trino", "minio", "jupyter"} <= set(published)


def test_writable_state_and_non_root(services: dict[str, dict[str, Any]]) -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^USER 10001", dockerfile, re.M)
    assert "UV_COMPILE_BYTECODE=1" in dockerfile and "compileall" in dockerfile
    for path in ("/var/lib/lakewire", "/opt/dagster/home"):
        assert path in dockerfile.split("chown -R lakewire:lakewire", 1)[1].splitlines()[0]
    assert "COPY --chown=10001:10001 notebooks /home/lakewire/notebooks" in dockerfile
    assert "storage-state:/var/lib/lakewire" in services["storage"]["volumes"]
    assert "notebooks:/home/lakewire/notebooks" in services["jupyter"]["volumes"]
    for name in ("dagster-code", "dagster-webserver", "dagster-daemon", "dagster-dispatch"):
        assert not any(
            isinstance(v, str) and "/opt/dagster/home" in v for v in services[name]["volumes"]
        ), f"{name}: DAGSTER_HOME must stay the image's writable folder"
    minio = services["minio"]
    queue = minio["environment"]["MINIO_NOTIFY_NATS_QUEUE_DIR"]
    assert not queue.startswith("/data"), "MinIO's queue dir must be outside its data drive"
    assert f"minio-events:{queue}" in minio["volumes"]
    ignore = (ROOT / ".dockerignore").read_text().split()
    for entry in (".git", ".venv", ".lakewire", "tests"):
        assert entry in ignore


def _properties(path: Path) -> dict[str, str]:
    """Java properties as Trino reads catalog files (key=value, # comments, no continuations)."""
    props = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", "!")):
            continue
        assert not line.endswith("\\"), f"{path.name}: line continuation"
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: '{line}' is not key=value"
        assert key.strip() not in props, f"{path.name}: {key} twice"
        props[key.strip()] = value.strip()
    return props


def test_trino_catalogs_parse_and_their_env_is_exported(
    services: dict[str, dict[str, Any]],
) -> None:
    catalogs = {
        p.stem: _properties(p) for p in (ROOT / "deploy/trino/catalog").glob("*.properties")
    }
    assert set(catalogs) == {"delta", "hive", "iceberg"}
    assert catalogs["delta"]["connector.name"] == "delta_lake"
    assert catalogs["delta"]["delta.register-table-procedure.enabled"] == "true"
    assert catalogs["iceberg"]["iceberg.rest-catalog.uri"] == "http://lakekeeper:8181/catalog"
    exported = set(
        re.findall(r"export ([A-Z0-9_]+)=|\s([A-Z0-9_]+)=\"", services["trino"]["command"][0])
    )
    names = {a or b for a, b in exported}
    for props in catalogs.values():
        for value in props.values():
            for var in re.findall(r"\$\{ENV:([A-Z0-9_]+)\}", value):
                assert var in names, f"{var} is not exported by trino's command"
    ac = _properties(ROOT / "deploy/trino/access-control.properties")
    assert ac["access-control.name"] == "file"
    rules = json.loads((ROOT / "deploy/trino/rules.json").read_text())
    assert rules["catalogs"][-1] == {"allow": "read-only"}


def test_lakekeeper_entrypoint_reads_its_secrets_and_retries_migrate(tmp_path: Path) -> None:
    import subprocess

    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "postgres_password").write_text("pw")
    (secrets / "lakekeeper_encryption_key").write_text("key")
    calls = tmp_path / "calls"
    fake = tmp_path / "lakekeeper"
    # Fails twice (Postgres still settling), then succeeds; records what it was given.
    fake.write_text(
        "#!/bin/sh\n"
        f'echo "$* $LAKEKEEPER__PG_PASSWORD $LAKEKEEPER__PG_ENCRYPTION_KEY" >> {calls}\n'
        f'[ "$(wc -l < {calls})" -ge 3 ]\n'
    )
    fake.chmod(0o755)
    env = {
        "PATH": "/usr/bin:/bin",
        "LAKEKEEPER_ENTRY_BUSYBOX": "",
        "LAKEKEEPER_ENTRY_BIN": str(fake),
        "LAKEKEEPER_ENTRY_SECRETS": str(secrets),
        "LAKEKEEPER_ENTRY_WAIT": "0",
    }
    script = str(ROOT / "deploy/lakekeeper/entrypoint.sh")
    proc = subprocess.run(["sh", script, "migrate"], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert calls.read_text().splitlines() == ["migrate pw key"] * 3
    assert proc.stderr.count("failed; retrying") == 2
    calls.unlink()
    served = subprocess.run(["sh", script, "serve"], env=env, capture_output=True, text=True)
    assert calls.read_text() == "serve pw key\n"
    assert served.returncode == 1  # the fake's own exit status, passed through by exec
