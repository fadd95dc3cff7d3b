"""deploy/dagster/dagster.yaml against a real PostgreSQL and S3 compute logs (issue 10, blocker 3).

The platform's Dagster instance config, with only host and port pointed at a PostgreSQL the
test starts (Debian's server binaries, as the `postgres` user) and the compute-log endpoint at
moto: the instance loads (dagster-postgres, dagster-aws importable and configured), a run
executes with its events in Postgres and its stdout in the `dagster` bucket. Not covered
here, but by the embedded platform test at the end (the embedded platform with its Dagster
storage in this Postgres): a sensor tick and a run the daemon dequeues. moto rather than
SeaweedFS: only object puts and lists are needed and the session's moto is already running.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.helpers import Platform, _connectable, free_port, platform_env, wait_for, write_csv
from tests.s3servers import MotoServer

ROOT = Path(__file__).parent.parent
PG_BINS = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
PASSWORD = "pg-test-password-0123456789"

# `make postgres` (a prerequisite of `make pytest`) installs Debian's server: missing, it fails.
pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("setpriv"),
    reason="needs root and setpriv to run PostgreSQL as its own user",
)


def _as_postgres(args: list[str], **kw: object) -> subprocess.Popen[bytes]:
    pw = pwd.getpwnam("postgres")
    cmd = ["setpriv", "--reuid", str(pw.pw_uid), "--regid", str(pw.pw_gid), "--clear-groups"]
    return subprocess.Popen([*cmd, *args], **kw)  # type: ignore[call-overload]


@pytest.fixture
def postgres() -> Iterator[int]:
    assert PG_BINS, "Debian's postgresql is missing: `make postgres` installs it"
    bin_dir = PG_BINS[-1].parent
    pw = pwd.getpwnam("postgres")
    base = Path(tempfile.mkdtemp(prefix="lakewire-pg-"))
    os.chmod(base, 0o755)
    data, sock = base / "data", base / "sock"
    for d in (data, sock):
        d.mkdir()
        os.chown(d, pw.pw_uid, pw.pw_gid)
    pwfile = base / "pw"
    pwfile.write_text(PASSWORD)
    os.chown(pwfile, pw.pw_uid, pw.pw_gid)
    init = _as_postgres(
        [str(bin_dir / "initdb"), "-D", str(data), "-U", "lakewire", f"--pwfile={pwfile}",
         "--auth-host=scram-sha-256", "--auth-local=trust"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    _, err = init.communicate(timeout=120)
    assert init.returncode == 0, err.decode()[-2000:]
    port = free_port()
    server = _as_postgres(
        [str(bin_dir / "postgres"), "-D", str(data), "-h", "127.0.0.1", "-p", str(port),
         "-k", str(sock)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for(lambda: _connectable(port), timeout=30, what="postgres")
        import psycopg2  # type: ignore[import-untyped]

        def create_db() -> bool:
            try:
                conn = psycopg2.connect(
                    host="127.0.0.1", port=port, user="lakewire", password=PASSWORD,
                    dbname="postgres",
                )  # fmt: skip
            except psycopg2.OperationalError:
                return False
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("CREATE DATABASE dagster OWNER lakewire")
            conn.close()
            return True

        wait_for(create_db, timeout=30, what="the dagster database")
        yield port
    finally:
        server.terminate()
        server.wait(30)
        shutil.rmtree(base, ignore_errors=True)


def test_platform_dagster_instance_on_real_postgres_with_compute_logs_on_s3_moto(
    postgres: int, moto_s3: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dagster import DagsterInstance, DagsterRunStatus, job, op

    config = yaml.safe_load((ROOT / "deploy/dagster/dagster.yaml").read_text())
    db = config["storage"]["postgres"]["postgres_db"]
    assert (db["hostname"], db["port"]) == ("postgres", 5432)  # the compose service
    db["hostname"], db["port"] = "127.0.0.1", postgres
    config["compute_logs"]["config"]["local_dir"] = str(tmp_path / "compute_logs")
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))

    s3 = moto_s3.client()
    s3.create_bucket(Bucket="dagster")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", PASSWORD)
    monkeypatch.setenv("LAKEWIRE_S3_ENDPOINT", moto_s3.endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", moto_s3.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", moto_s3.secret_key)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")

    @op
    def hello() -> int:
        print("hello from the platform")
        return 1

    @job
    def platform_smoke() -> None:
        hello()

    with DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert type(instance.compute_log_manager).__name__ == "S3ComputeLogManager"

        result = platform_smoke.execute_in_process(instance=instance)
        assert result.success
        stored = instance.get_run_by_id(result.run_id)
        assert stored is not None and stored.status == DagsterRunStatus.SUCCESS
        assert instance.all_logs(result.run_id)  # events read back from Postgres

        def uploaded() -> list[str]:
            listed = s3.list_objects_v2(Bucket="dagster", Prefix="compute-logs/")
            return [o["Key"] for o in listed.get("Contents", [])]

        keys = wait_for(uploaded, timeout=30, what="compute logs in the dagster bucket")
        bodies = [s3.get_object(Bucket="dagster", Key=k)["Body"].read() for k in keys]
        assert any(b"hello from the platform" in b for b in bodies), keys


@pytest.mark.platform
def test_the_platform_on_postgres_ticks_its_sensor_and_the_daemon_dequeues_runs(
    postgres: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The embedded platform with Dagster's storage in Postgres, as the compose platform keeps
    it: the sensor's ticks, the queued run the daemon dequeues and launches, its events."""
    from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus

    url = f"postgresql+psycopg2://lakewire:{PASSWORD}@127.0.0.1:{postgres}/dagster"
    data_dir = tmp_path / "data"
    platform = Platform(data_dir, platform_env(data_dir, LAKEWIRE_DAGSTER_POSTGRES_URL=url))
    started = time.time()
    platform.lakewire("up", "--detach")
    try:
        home = data_dir / "dagster"
        assert PASSWORD not in (home / "dagster.yaml").read_text()
        platform.lakewire("put", str(write_csv(tmp_path / "pg.csv", 40)), "landing/pg/a.csv")
        wait_for(lambda: platform.count("delta.default.pg") == 40, 120, "40 rows", 1)
        wait_for(lambda: platform.sensor_ticks_since(started) >= 2, 60, "sensor ticks", 1)
        wait_for(lambda: platform.settled_runs(), 60, "runs to settle", 1)

        monkeypatch.setenv("LAKEWIRE_DAGSTER_POSTGRES_URL", url)
        monkeypatch.setenv("DAGSTER_HOME", str(home))
        with DagsterInstance.get() as instance:
            assert type(instance.run_storage).__name__ == "PostgresRunStorage"
            (run,) = [r for r in instance.get_runs() if r.tags.get("lakewire/table")]
            assert run.status == DagsterRunStatus.SUCCESS
            kinds = {
                rec.event_log_entry.dagster_event_type
                for rec in instance.get_records_for_run(run.run_id).records
            }
            # Submitted to the queue, launched from it by the daemon (STARTING), then run.
            assert {
                DagsterEventType.RUN_ENQUEUED,
                DagsterEventType.RUN_STARTING,
                DagsterEventType.RUN_SUCCESS,
            } <= kinds
    finally:
        platform.lakewire("down", check=False)
