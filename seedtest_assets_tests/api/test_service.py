"""``seedtest serve`` as the exam app sees it: a real uvicorn process on loopback, real RSA and
EC keys, a JWKS served over HTTP, on SQLite and on PostgreSQL.

The server runs with the test clock frozen (``SEEDTEST_FROZEN_NOW``) at ``NOW``, so the
seeded attempts ("1 day ago") are inside its window.
"""

import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import dagster as dg
import pytest
from sqlalchemy import select

from seedtest_assets.core.warehouse import make_engine, upgrade
from seedtest_assets.core.warehouse import schema as s
from seedtest_assets_tests.api_servers import (
    AUDIENCE,
    ISSUER,
    JwksServer,
    SigningKey,
    theta_server,
)
from seedtest_assets_tests.clock import NOON
from seedtest_assets_tests.conftest import (
    _require_postgres,
    create_postgres_database,
    drop_postgres_database,
)
from seedtest_assets_tests.online_factories import ITEM_PARAMS, seed_scoring, store_item_params
from seedtest_assets_tests.test_cli_score import add_student_like

NOW = NOON
TEXT_ID = "test-user-123"  # the seed guides' own example
PATH = "/api/seedtest/analysis/irt/update-theta"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def warehouse(request, tmp_path_factory):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('api') / 'warehouse.db'}"
        upgrade(url)
        version = seed_scoring(url, NOW)
        add_student_like(url, TEXT_ID, "1")
        yield url, version
        return
    _require_postgres()
    url = create_postgres_database("seedtest_api")
    upgrade(url)
    version = seed_scoring(url, NOW)
    add_student_like(url, TEXT_ID, "1")
    yield url, version
    drop_postgres_database(url)


@pytest.fixture(scope="module")
def keys():
    return [SigningKey.rsa("rsa-1"), SigningKey.ec("ec-1")]


@pytest.fixture(scope="module")
def jwks(keys):
    server = JwksServer(keys)
    yield server
    server.close()


def service_env(url: str, jwks: JwksServer, home: Path, **extra: str) -> dict[str, str]:
    return {
        "DATABASE_URL": url,
        "JWKS_URL": jwks.url,
        "JWT_AUD": AUDIENCE,
        "JWT_ISS": ISSUER,
        "LOCAL_DEV": "false",
        "SEEDTEST_HOME": str(home),
        "DAGSTER_HOME": str(home / "dagster"),
        "SEEDTEST_FROZEN_NOW": NOW.isoformat(),
        "SEEDTEST_API_BANK_REFRESH_SECONDS": "0.5",
        **extra,
    }


@pytest.fixture(scope="module")
def server(warehouse, jwks, tmp_path_factory):
    url, _ = warehouse
    home = tmp_path_factory.mktemp("serve")
    (home / "dagster").mkdir()
    with theta_server(service_env(url, jwks, home), home) as srv:
        srv.home = home  # type: ignore[attr-defined]
        yield srv


def api_rows(url: str, user_id: str) -> list[dict]:
    engine = make_engine(url)
    with engine.connect() as conn:
        rows = (
            conn.execute(
                select(s.mirt_ability)
                .where(s.mirt_ability.c.user_id == user_id, s.mirt_ability.c.source == "api")
                .order_by(s.mirt_ability.c.fitted_at)
            )
            .mappings()
            .all()
        )
    engine.dispose()
    return [dict(r) for r in rows]


def test_the_seed_guides_call_answers_ok_and_writes_one_api_row(server, warehouse, keys):
    url, version = warehouse
    before = len(api_rows(url, TEXT_ID))
    token = keys[0].token(sub="backend", scope="analysis:run")
    status, body, _ = server.request(
        "POST", PATH, {"user_id": TEXT_ID, "lookback_days": 30}, token=token
    )
    assert status == 200, body
    assert list(body) == ["status", "user_id", "theta", "se", "model", "version", "updated_at"]
    assert body["status"] == "ok" and body["user_id"] == TEXT_ID
    assert body["model"] == "2PL" and body["version"] == version
    assert -1.5 < body["theta"] < 1.5 and 0 < body["se"] < 1.5
    rows = api_rows(url, TEXT_ID)
    assert len(rows) == before + 1
    assert rows[-1]["theta"] == pytest.approx(body["theta"], abs=1e-12)
    assert rows[-1]["fitted_at"].isoformat() + "Z" == body["updated_at"]
    # The unprefixed path is the same route.
    status, body2, _ = server.request(
        "POST", "/analysis/irt/update-theta", {"user_id": "1"}, token=token
    )
    assert status == 200 and body2["status"] == "ok"


def test_latest_theta_reads_the_newest_row(server, keys):
    token = keys[1].token(sub=TEXT_ID, scope="exam:write")  # ES256, own student
    _, posted, _ = server.request("POST", PATH, {"user_id": TEXT_ID}, token=token)
    status, body, _ = server.request("GET", f"/analysis/irt/theta/{TEXT_ID}", token=token)
    assert status == 200
    assert (body["theta"], body["updated_at"], body["source"]) == (
        posted["theta"],
        posted["updated_at"],
        "api",
    )
    admin = keys[0].token(sub="backend", scope="analysis:run")
    status, body, _ = server.request("GET", "/analysis/irt/theta/nobody", token=admin)
    assert status == 404 and body["status"] == "not_found"


def test_nothing_to_score_is_a_noop(server, keys, warehouse):
    token = keys[0].token(sub="backend", scope="analysis:run")
    for user, days in (("3", 84), ("2", 30), ("4", 84), ("nobody", 84)):
        status, body, _ = server.request(
            "POST", PATH, {"user_id": user, "lookback_days": days}, token=token
        )
        assert status == 200 and body["status"] == "noop", body
        assert body["user_id"] == user and "theta not updated" in body["message"]
        assert api_rows(warehouse[0], user) == []


def _alg_none_token() -> str:
    import base64

    def b64(d):
        return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()

    claims = {"sub": "1", "aud": AUDIENCE, "iss": ISSUER, "exp": int(time.time()) + 60,
              "scope": "analysis:run"}  # fmt: skip
    return f"{b64({'alg': 'none', 'kid': 'rsa-1'})}.{b64(claims)}."


@pytest.mark.parametrize(
    ("case", "status", "error"),
    [
        ("missing", 401, "invalid_request"),
        ("garbage", 401, "invalid_token"),
        ("expired", 401, "invalid_token"),
        ("audience", 401, "invalid_token"),
        ("issuer", 401, "invalid_token"),
        ("alg_none", 401, "invalid_token"),
        ("unknown_kid", 401, "invalid_token"),
        ("forged", 401, "invalid_token"),
        ("no_scope", 403, "insufficient_scope"),
        ("other_student", 403, "insufficient_scope"),
    ],
)
def test_token_cases(server, keys, warehouse, case, status, error):
    k = keys[0]
    token = {
        "missing": None,
        "garbage": "not-a-jwt",
        "expired": k.token("1", expires_in=-120),
        "audience": k.token("1", aud="another-api"),
        "issuer": k.token("1", iss="https://elsewhere/"),
        "alg_none": _alg_none_token(),
        "unknown_kid": SigningKey.rsa("never-published").token("1"),
        "forged": SigningKey.rsa("rsa-1").token("1"),
        "no_scope": k.token("1", scope="profile"),
        "other_student": k.token("2", scope="exam:write"),
    }[case]
    before = len(api_rows(warehouse[0], "1"))
    got, body, headers = server.request("POST", PATH, {"user_id": "1"}, token=token)
    assert (got, body["status"], body["error"]) == (status, "error", error)
    assert f'error="{error}"' in headers["www-authenticate"]
    assert len(api_rows(warehouse[0], "1")) == before  # nothing written


def test_exam_write_may_update_its_own_student(server, keys):
    token = keys[0].token(sub="1", scope="exam:write")
    status, body, _ = server.request("POST", PATH, {"user_id": "1"}, token=token)
    assert status == 200 and body["status"] == "ok"


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({}, "user_id"),
        ({"user_id": 123}, "user_id"),
        ({"user_id": ""}, "user_id"),
        ({"user_id": "a" * 256}, "user_id"),
        ({"user_id": "bad\x00id"}, "user_id"),
        ({"user_id": "1", "lookback_days": 0}, "lookback_days"),
        ({"user_id": "1", "lookback_days": 367}, "lookback_days"),
        ({"user_id": "1", "lookback_days": "30"}, "lookback_days"),
        ({"user_id": "1", "session_id": 5}, "session_id"),
    ],
)
def test_invalid_bodies_are_422_with_the_field_named(server, keys, body, where):
    token = keys[0].token(sub="backend", scope="analysis:run")
    status, answer, _ = server.request("POST", PATH, body, token=token)
    assert status == 422 and answer["status"] == "error"
    assert answer["message"].startswith(where), answer


def test_not_json_and_too_large(server, keys):
    token = keys[0].token(sub="backend", scope="analysis:run")
    status, answer, _ = server.request("POST", PATH, raw=b"{not json", token=token)
    assert status == 422
    status, answer, _ = server.request("POST", PATH, raw=b" " * 20_000, token=token)
    assert status == 413 and answer["error"] == "too_large"


def test_concurrent_updates_of_one_student_lose_and_double_nothing(server, keys, warehouse):
    url = warehouse[0]
    token = keys[0].token(sub="backend", scope="analysis:run")
    before = len(api_rows(url, "1"))
    start = threading.Barrier(16)

    def call(_):
        start.wait()
        return server.request("POST", PATH, {"user_id": "1", "session_id": "s-1"}, token=token)

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(call, range(16)))
    assert all(st == 200 and b["status"] == "ok" for st, b, _ in answers), answers
    rows = api_rows(url, "1")[before:]
    assert len(rows) == 16  # one row per answer: none lost, none doubled
    stamps = sorted(b["updated_at"] for _, b, _ in answers)
    assert stamps == [r["fitted_at"].isoformat() + "Z" for r in rows]  # each answer its row
    assert len(set(stamps)) == 16


def test_health_ready_and_metrics(server, keys):
    assert server.request("GET", "/healthz")[:2] == (200, {"status": "ok"})
    status, ready, _ = server.request("GET", "/readyz")
    assert status == 200 and ready["status"] == "ok" and ready["items"] == len(ITEM_PARAMS)
    token = keys[0].token(sub="backend", scope="analysis:run")
    server.request("POST", PATH, {"user_id": "3"}, token=token)  # a noop
    _, metrics, _ = server.request("GET", "/metrics")
    text = metrics["_text"]
    values = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in text.splitlines()
        if line.startswith("theta_update_total")
    }
    assert values['theta_update_total{status="ok"}'] >= 1
    assert values['theta_update_total{status="noop"}'] >= 1
    assert f'theta_item_bank_info{{model="2PL",version="{ready["item_bank"]}"}} 1.0' in text
    assert "theta_update_duration_seconds_bucket" in text


def test_a_new_calibration_is_used_without_a_restart(server, keys, warehouse):
    url, version = warehouse
    week = datetime.fromisoformat(version.split("@")[1]).date()
    newer = store_item_params(
        url,
        week.replace(day=week.day)
        if False
        else week + (NOW.date() - NOW.date()) + __import__("datetime").timedelta(days=7),
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if server.request("GET", "/readyz")[1]["item_bank"] == newer:
            break
        time.sleep(0.2)
    assert server.request("GET", "/readyz")[1]["item_bank"] == newer
    token = keys[0].token(sub="backend", scope="analysis:run")
    status, body, _ = server.request("POST", PATH, {"user_id": "1"}, token=token)
    assert status == 200 and body["version"] == newer


def test_each_update_is_the_students_materialization_in_dagster(server, keys):
    token = keys[0].token(sub="backend", scope="analysis:run")
    _, body, _ = server.request("POST", PATH, {"user_id": TEXT_ID, "session_id": "session456"},
                                token=token)  # fmt: skip
    instance = dg.DagsterInstance.from_config(str(server.home / "dagster"))
    try:
        key = dg.AssetKey(["student", "mirt_ability"])
        deadline, found = time.monotonic() + 20, None
        while time.monotonic() < deadline and found is None:
            records = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=key, asset_partitions=[TEXT_ID]), limit=1
            ).records
            mat = records[0].asset_materialization if records else None
            if mat is not None and mat.metadata["updated_at"].value == body["updated_at"]:
                found = mat
            time.sleep(0.2)
        assert found is not None, "no student/mirt_ability event for the update"
        assert found.metadata["theta"].value == pytest.approx(body["theta"])
        assert found.metadata["source"].value == "api"
        assert found.metadata["session_id"].value == "session456"
        assert TEXT_ID in instance.get_dynamic_partitions("users")
    finally:
        instance.dispose()


def test_tokens_are_never_logged(server, keys):
    token = keys[0].token(sub="backend", scope="analysis:run")
    server.request("POST", PATH, {"user_id": "1"}, token=token)
    server.request("POST", PATH, {"user_id": "1"}, token=token + "x")
    log = server.log_text()
    assert token not in log and token.split(".")[2] not in log


def test_key_rotation_without_restart(server, jwks, keys, warehouse):
    rotated = SigningKey.rsa("rsa-rotated")
    time.sleep(1.1)  # past the JWKS refetch limit an earlier unknown kid may have used
    jwks.publish([rotated, *keys])
    try:
        status, body, _ = server.request(
            "POST", PATH, {"user_id": "1"}, token=rotated.token("backend")
        )
        assert status == 200 and body["status"] == "ok"
    finally:
        jwks.publish(keys)


def test_switched_off_answers_noop_and_writes_nothing(warehouse, jwks, keys, tmp_path):
    url = warehouse[0]
    env = service_env(url, jwks, tmp_path, ENABLE_IRT_ONLINE_UPDATE="false")
    before = len(api_rows(url, "1"))
    with theta_server(env, tmp_path) as srv:
        status, body, _ = srv.request(
            "POST", PATH, {"user_id": "1"}, token=keys[0].token("backend")
        )
        assert status == 200 and body["status"] == "noop"
        assert "ENABLE_IRT_ONLINE_UPDATE=false" in body["message"]
        assert srv.request("GET", "/readyz")[1]["online_updates"] is False
    assert len(api_rows(url, "1")) == before


def test_events_use_dagsters_batched_write_and_the_ui_reads_them(tmp_path):
    """The service writes its runless materializations through Dagster's batched path (the
    internal API it needs exists in the pinned Dagster); they read back like the public
    call's, one per student."""
    from seedtest_assets.api.events import DagsterEvents

    instance = dg.DagsterInstance.local_temp(str(tmp_path))
    try:
        sink = DagsterEvents(instance)
        sink.start()
        sink.submit({f"s-{i}": {"theta": float(i), "source": "api"} for i in range(25)})
        sink.stop()
        assert (sink.recorded, sink.failed, sink.path) == (25, 0, "batched")
        key = dg.AssetKey(["student", "mirt_ability"])
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, asset_partitions=["s-7"]), limit=5
        ).records
        assert len(records) == 1
        assert records[0].asset_materialization.metadata["theta"].value == 7.0
        assert set(instance.get_dynamic_partitions("users")) == {f"s-{i}" for i in range(25)}
    finally:
        instance.dispose()


def test_events_arriving_close_together_are_written_in_one_batch(tmp_path):
    """What arrives within the linger of a batch's first event is one storage write (each
    write is a new connection to a PostgreSQL instance); stopping writes at once."""
    from seedtest_assets.api.events import DagsterEvents

    instance = dg.DagsterInstance.local_temp(str(tmp_path))
    try:
        sink = DagsterEvents(instance, linger_seconds=30)
        sink.start()
        started = time.monotonic()
        for burst in range(5):
            sink.submit({f"s-{burst}-{i}": {"theta": 0.0} for i in range(5)})
            time.sleep(0.05)
        sink.stop()
        assert time.monotonic() - started < 20  # stop() did not wait out the linger
        assert (sink.recorded, sink.writes) == (25, 1)
        hurried = DagsterEvents(instance, linger_seconds=0)
        hurried.start()
        writer = hurried._writer
        assert writer is not None
        for burst in range(3):
            hurried.submit({f"t-{burst}": {"theta": 0.0}})
            deadline = time.monotonic() + 30
            while writer.recorded <= burst and time.monotonic() < deadline:
                time.sleep(0.02)  # each written before the next arrives
        hurried.stop()
        assert (hurried.recorded, hurried.writes) == (3, 3)
    finally:
        instance.dispose()


def test_the_services_events_writer_is_a_process_of_its_own(tmp_path, monkeypatch):
    """Without an instance object the writer is a process on DAGSTER_HOME's instance (off the
    worker's GIL); its counters come back at stop; once it has died, events are counted as
    failed and nothing blocks."""
    from seedtest_assets.api.events import DagsterEvents

    home = tmp_path / "dagster"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    sink = DagsterEvents(linger_seconds=30)
    sink.start()
    assert sink._worker is not None and sink._worker.pid != os.getpid()  # type: ignore[union-attr]
    sink.submit({f"p-{i}": {"theta": float(i), "source": "api"} for i in range(12)})
    sink.stop(timeout=60)
    assert (sink.recorded, sink.failed, sink.writes, sink.path) == (12, 0, 1, "batched")
    instance = dg.DagsterInstance.from_config(str(home))
    try:
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(
                asset_key=dg.AssetKey(["student", "mirt_ability"]), asset_partitions=["p-3"]
            ),
            limit=5,
        ).records
        assert [r.asset_materialization.metadata["theta"].value for r in records] == [3.0]
    finally:
        instance.dispose()

    dead = DagsterEvents()
    dead.start()
    worker = dead._worker
    worker.kill()  # type: ignore[union-attr]
    worker.join(30)
    dead.submit({"q-1": {"theta": 0.0}, "q-2": {"theta": 0.0}})
    dead.stop(timeout=5)
    assert dead.failed == 2 and dead.recorded == 0


def _running(pid: int) -> bool:
    """The process exists and is not a zombie (exited, waiting to be reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2 :].split()[0] != "Z"


def test_the_events_writer_stops_when_its_worker_is_killed(tmp_path):
    """A worker killed outright (no stop()) leaves no writer process behind."""
    import subprocess
    import sys

    home = tmp_path / "dagster"
    home.mkdir()
    script = (
        "import os\n"
        "from seedtest_assets.api.events import DagsterEvents\n"
        "sink = DagsterEvents()\n"
        "sink.start()\n"
        "print(sink._worker.pid, flush=True)\n"
        "os._exit(0)\n"  # like SIGKILL: no atexit, no stop()
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "DAGSTER_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    pid = int(out.split()[0])
    deadline = time.monotonic() + 60
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _running(pid), f"writer process {pid} outlived its worker"
