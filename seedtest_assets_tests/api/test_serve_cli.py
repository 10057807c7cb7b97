"""``seedtest serve`` refuses settings it must not run with, and LOCAL_DEV as documented."""

import pytest

from seedtest_assets_tests.api_servers import theta_server
from seedtest_assets_tests.online_factories import seed_scoring
from seedtest_assets_tests.test_cli import one_error_line, run_cli

PATH = "/analysis/irt/update-theta"


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "example.org"])
def test_local_dev_is_refused_off_loopback(sqlite_url, tmp_path, host):
    env = {"DATABASE_URL": sqlite_url, "SEEDTEST_HOME": str(tmp_path), "LOCAL_DEV": "true"}
    proc = run_cli("serve", "--host", host, "--port", "0", env=env)
    assert proc.returncode == 2
    assert "LOCAL_DEV=true skips token verification and is refused" in one_error_line(proc)


def test_without_local_dev_the_jwks_settings_are_required(sqlite_url, tmp_path):
    env = {
        "DATABASE_URL": sqlite_url,
        "SEEDTEST_HOME": str(tmp_path),
        "LOCAL_DEV": None,
        "JWKS_URL": None,
        "JWT_AUD": "seedtest-api",
        "JWT_ISS": None,
    }
    proc = run_cli("serve", env=env)
    assert proc.returncode == 2
    assert one_error_line(proc).endswith(
        "JWKS_URL, JWT_ISS not set: the service verifies every token against the JWKS, "
        "audience and issuer (LOCAL_DEV=true skips that, on loopback only)"
    )


def test_a_missing_warehouse_is_exit_4(tmp_path):
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'none.db'}", "LOCAL_DEV": "true"}
    proc = run_cli("serve", env={**env, "SEEDTEST_HOME": str(tmp_path)})
    assert proc.returncode == 4, proc.stderr


def test_local_dev_on_loopback_serves_without_tokens_and_warns(sqlite_url, tmp_path, clock):
    seed_scoring(sqlite_url, clock.now)
    env = {
        "DATABASE_URL": sqlite_url,
        "SEEDTEST_HOME": str(tmp_path),
        "LOCAL_DEV": "true",
        "DAGSTER_HOME": "",
        **clock.env(),
    }
    with theta_server(env, tmp_path) as srv:
        status, body, _ = srv.request("POST", PATH, {"user_id": "1"})
        assert status == 200 and body["status"] == "ok"
        assert srv.request("GET", "/readyz")[1]["dagster_events"] is False
        log = srv.log_text()
    assert "LOCAL_DEV=true: tokens are NOT verified" in log
    # The service's small frames run on one polars thread (seedtest_assets/console.py).
    assert "polars on 1 thread(s) per worker" in log
