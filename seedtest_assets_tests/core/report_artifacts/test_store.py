"""Report stores: the local folder and S3 over HTTP (moto server), with retries, and a hung
endpoint (accepts, never answers) bounded by the timeouts and the per-file deadline."""

import base64
import hashlib
import socket
import time
import urllib.request
from datetime import date

import boto3
import pytest

from seedtest_assets.core.report_artifacts.store import (
    CONTENT_TYPES,
    LocalReportStore,
    S3ReportStore,
    StoreDeadlineExceeded,
    StoreSettings,
    StoreStopped,
    decode_user_id,
    encode_user_id,
    is_unreachable,
    open_store,
    report_key,
    user_id_from_key,
)
from seedtest_assets_tests.report_helpers import FaultProxy, HungEndpoint

pytestmark = pytest.mark.slow


def test_key_layout():
    assert report_key("reports", date(2026, 11, 16), 42, "pdf") == "reports/2026-11-16/42.pdf"
    assert report_key("/reports/", "2026-11-16", 7, "html") == "reports/2026-11-16/7.html"


def test_integer_ids_keep_todays_keys_and_safe_text_ids_are_verbatim():
    import numpy as np

    for uid in (0, 1, 42, 123, 10**12, -5, np.int64(7)):
        key = report_key("reports", "2026-11-16", uid, "pdf")
        assert key == f"reports/2026-11-16/{int(uid)}.pdf"
        assert user_id_from_key(key) == str(int(uid))
    uuid = "0b7e4a5c-3f1d-4e8a-9c2b-6d5f4a3b2c1d"
    for uid in ("test-user-123", "u-000123", uuid, "A_b-9", "v1.2"):
        assert report_key("reports", "2026-11-16", uid, "html") == f"reports/2026-11-16/{uid}.html"
    assert report_key("r", "w", 42, "pdf") == report_key("r", "w", "42", "pdf")  # one id space


#: Ids that must neither escape the week's folder nor collide with one another.
NASTY_IDS = [
    "../../etc/passwd",
    "..",
    ".",
    "a/b",
    "a%2Fb",
    "a%252Fb",
    "a\\b",
    "/abs",
    "김민서",
    "🙂 emoji",
    "with space",
    " ",
    ".hidden",
    "..hidden",
    "a\x00b",
    "\x00",
    "tab\tnew\nline\x7f",
    "~tilde",
    "a.b.",
    "x" * 1000,
    "x" * 999 + "y",
    "김" * 400,
    "\ud800",  # a lone surrogate (a JSON "\\ud800" escape)
    "Ab",
    "ab",
    "test-user-123",
    "42",
]


def test_nasty_ids_give_unique_safe_keys_that_round_trip():
    keys = {}
    for uid in NASTY_IDS:
        key = report_key("reports", "2026-11-16", uid, "html")
        assert key.startswith("reports/2026-11-16/") and key.endswith(".html")
        name = key.removeprefix("reports/2026-11-16/")
        assert "/" not in name and "\\" not in name and not name.startswith(".")
        assert name.isascii() and name.isprintable() and len(name.encode()) <= 255
        assert key == report_key("reports", "2026-11-16", uid, "html")  # deterministic
        assert key not in keys, (uid, keys.get(key))
        keys[key] = uid
        if len(name) - len(".html") <= 240 and "~" not in name:
            assert user_id_from_key(key) == uid
        else:  # an over-long id: prefix ~ sha256, refused with a clear message
            assert "~" in name and len(name) <= 128 + 1 + 64 + len(".html")
            with pytest.raises(ValueError, match="over-long id"):
                user_id_from_key(key)
    assert encode_user_id("a/b") == "a%2Fb" and encode_user_id("a%2Fb") == "a%252Fb"
    assert encode_user_id(".hidden") == "%2Ehidden" and encode_user_id("김") == "%EA%B9%80"
    assert encode_user_id("a.b") == "a.b" and encode_user_id("a\x00") == "a%00"


def test_long_ids_are_kept_whole_up_to_the_cap_and_cut_before_an_escape():
    assert encode_user_id("x" * 240) == "x" * 240
    assert "~" in encode_user_id("x" * 241)
    seg = encode_user_id("x" * 127 + "김" * 100)  # 127 + 900 chars: the cut falls in a %XX
    head = seg.split("~")[0]
    assert head == "x" * 127 and decode_user_id(head) == "x" * 127


def test_bad_ids_and_foreign_keys_are_refused():
    with pytest.raises(ValueError, match="empty"):
        report_key("reports", "2026-11-16", "", "pdf")
    with pytest.raises(TypeError, match="text or an integer"):
        report_key("reports", "2026-11-16", 1.5, "pdf")  # type: ignore[arg-type]
    for key in (
        "reports/2026-11-16/.pdf",
        "reports/2026-11-16/noext",
        "reports/2026-11-16/%41.pdf",  # "A" written as an escape: not what we write
        "reports/2026-11-16/%2f.pdf",  # lower-case hex
        "reports/2026-11-16/%ZZ.pdf",
        "reports/2026-11-16/.hidden.pdf",
        "reports/2026-11-16/a b.pdf",
        "reports/2026-11-16/%FF.pdf",  # not UTF-8
    ):
        with pytest.raises(ValueError):
            user_id_from_key(key)


def test_local_store_writes_and_reads_nasty_ids_inside_its_root(tmp_path):
    root = tmp_path / "store"
    store = LocalReportStore(root)
    for n, uid in enumerate(NASTY_IDS):
        key = report_key("reports", "2026-11-16", uid, "pdf")
        obj = store.put(key, f"body {n}".encode(), CONTENT_TYPES["pdf"])
        assert store.get(key) == f"body {n}".encode()
        assert store.path_for(key).parent == root.resolve() / "reports" / "2026-11-16"
        assert obj.url.startswith(root.resolve().as_uri())
    files = sorted(p.name for p in (root / "reports" / "2026-11-16").iterdir())
    assert len(files) == len(NASTY_IDS)  # one file per id, nothing else, nothing outside
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]


def test_local_store_refuses_keys_outside_its_root(tmp_path):
    store = LocalReportStore(tmp_path / "store")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "link").symlink_to(tmp_path / "elsewhere")
    for key in ("../x.pdf", "/etc/passwd", "a/../../x.pdf", "link/x.pdf", ".", "", "a\x00b"):
        with pytest.raises(ValueError, match=r"escapes the store root|not a valid store key"):
            store.put(key, b"x", "application/pdf")
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_s3_store_writes_and_reads_nasty_ids(moto_endpoint, bucket):
    store = S3ReportStore(s3_settings(moto_endpoint, bucket))
    written = set()
    for n, uid in enumerate(NASTY_IDS):
        key = report_key("reports", "2026-11-16", uid, "html")
        store.put(key, f"<p>{n}</p>".encode(), CONTENT_TYPES["html"])
        assert store.get(key) == f"<p>{n}</p>".encode()
        written.add(key)
    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="ap-northeast-2")
    listed = client.list_objects_v2(Bucket=bucket, Prefix="reports/2026-11-16/")
    assert {o["Key"] for o in listed["Contents"]} == written
    assert listed["KeyCount"] == len(NASTY_IDS)


def test_local_store_writes_atomically_and_returns_file_urls(tmp_path):
    store = open_store(StoreSettings(local_dir=str(tmp_path)))
    assert isinstance(store, LocalReportStore)
    obj = store.put("reports/2026-11-16/1.pdf", b"%PDF-1.7 x", CONTENT_TYPES["pdf"])
    path = tmp_path / "reports/2026-11-16/1.pdf"
    assert path.read_bytes() == b"%PDF-1.7 x"
    assert obj.url == path.as_uri() and obj.size == 10
    assert obj.sha256 == hashlib.sha256(b"%PDF-1.7 x").hexdigest()
    store.put("reports/2026-11-16/1.pdf", b"new", CONTENT_TYPES["pdf"])  # replaces
    assert path.read_bytes() == b"new"
    assert [p.name for p in path.parent.iterdir()] == ["1.pdf"]  # no temp files left
    with pytest.raises(ValueError, match="escapes"):
        store.put("../outside.pdf", b"x", "application/pdf")


def s3_settings(endpoint: str, bucket: str, **kw) -> StoreSettings:
    return StoreSettings(bucket=bucket, endpoint_url=endpoint, region="ap-northeast-2", **kw)


def test_s3_put_sets_content_type_checksum_and_presigned_url(moto_endpoint, bucket):
    body = "<p>김민서</p>".encode()
    key = "reports/2026-11-16/1.html"
    with FaultProxy(moto_endpoint) as proxy:  # forwards everything; records the headers
        store = open_store(s3_settings(proxy.url, bucket, url_expiry_seconds=900))
        assert isinstance(store, S3ReportStore)
        obj = store.put(key, body, CONTENT_TYPES["html"])
        sent = proxy.headers[("PUT", f"/{bucket}/{key}")]
        # A presigned GET URL (not public), with the configured lifetime, that fetches it.
        assert "X-Amz-Signature=" in obj.url and "X-Amz-Expires=900" in obj.url
        with urllib.request.urlopen(obj.url, timeout=10) as resp:
            assert resp.read() == body
    # S3 verifies this checksum and rejects a corrupted body (moto does not check it).
    assert sent["x-amz-checksum-sha256"] == base64.b64encode(hashlib.sha256(body).digest()).decode()
    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="ap-northeast-2")
    head = client.head_object(Bucket=bucket, Key=key)
    assert head["ContentType"] == "text/html; charset=utf-8"
    assert head["ContentLength"] == len(body) == obj.size
    assert head["CacheControl"].startswith("private")
    assert obj.sha256 == hashlib.sha256(body).hexdigest()


def test_s3_rejects_expiry_beyond_sigv4_limit(moto_endpoint, bucket):
    with pytest.raises(ValueError, match="url_expiry_seconds"):
        S3ReportStore(s3_settings(moto_endpoint, bucket, url_expiry_seconds=8 * 24 * 3600))


def test_s3_retries_transient_errors_with_backoff(moto_endpoint, bucket):
    """Two 503 SlowDown answers, then success: the upload goes through on the 3rd attempt."""
    key = "reports/2026-11-16/5.pdf"
    failures = {"left": 2}

    def rule(method, path):
        if method == "PUT" and path.endswith(key) and failures["left"] > 0:
            failures["left"] -= 1
            return 503
        return None

    with FaultProxy(moto_endpoint, rule) as proxy:
        store = open_store(s3_settings(proxy.url, bucket, max_attempts=3))
        obj = store.put(key, b"%PDF", CONTENT_TYPES["pdf"])
        assert proxy.hits[("PUT", f"/{bucket}/{key}")] == 3
    assert obj.size == 4


def test_s3_gives_up_after_max_attempts(moto_endpoint, bucket):
    key = "reports/2026-11-16/6.pdf"
    with FaultProxy(moto_endpoint, lambda m, p: 500 if p.endswith(key) else None) as proxy:
        store = open_store(s3_settings(proxy.url, bucket, max_attempts=2))
        with pytest.raises(Exception, match="InternalError"):
            store.put(key, b"%PDF", CONTENT_TYPES["pdf"])
        assert proxy.hits[("PUT", f"/{bucket}/{key}")] == 2


# --------------------------------------------------------------------------- a hung store
#: Small timeouts for hung-store tests: an attempt may wait 1 + 1 (100-continue) + 1 = 3 s, so
#: a 6 s deadline allows two attempts on a silent socket (~2 s each) and refuses the third.
FAST = {"connect_timeout": 1.0, "read_timeout": 1.0, "file_deadline": 6.0}


def test_settings_bound_every_attempt_by_the_file_deadline():
    st = StoreSettings()
    assert (st.connect_timeout, st.read_timeout, st.max_attempts) == (3.0, 10.0, 3)
    assert (st.file_deadline, st.breaker_failures) == (30.0, 3)
    assert st.attempt_seconds == 14.0
    with pytest.raises(ValueError, match="file_deadline"):
        StoreSettings(connect_timeout=3, read_timeout=10, file_deadline=13)
    for bad in ({"max_attempts": 0}, {"read_timeout": 0}, {"breaker_failures": 0}):
        with pytest.raises(ValueError):
            StoreSettings(**bad)
    assert StoreSettings(bucket="b", endpoint_url="http://x:9").target() == "http://x:9"
    assert StoreSettings(bucket="b").target() == "https://s3.ap-northeast-2.amazonaws.com"


def test_s3_put_to_a_hung_endpoint_ends_within_the_file_deadline(aws_env):
    """A socket that accepts and never answers: two attempts, then the deadline refuses a
    third (max_attempts would allow 5); the error says so and counts as "did not answer"."""
    with HungEndpoint() as hung:
        store = open_store(s3_settings(hung.url, "reports", max_attempts=5, **FAST))
        t0 = time.perf_counter()
        with pytest.raises(StoreDeadlineExceeded, match="6 s deadline: 2 attempt") as err:
            store.put("reports/2026-11-16/1.pdf", b"%PDF" * 1000, CONTENT_TYPES["pdf"])
        elapsed = time.perf_counter() - t0
        assert hung.accepted == 2
    assert elapsed <= FAST["file_deadline"] + 0.5, elapsed
    assert "ReadTimeoutError" in str(err.value) and hung.url in str(err.value)
    assert is_unreachable(err.value)


def test_s3_get_from_a_hung_endpoint_is_bounded_too(aws_env):
    """A read (what the checks do) has no 100-continue wait: 3 attempts of ~1 s fit."""
    with HungEndpoint() as hung:
        store = open_store(s3_settings(hung.url, "reports", **FAST))
        t0 = time.perf_counter()
        with pytest.raises(Exception, match="Read timeout") as err:
            store.get("reports/2026-11-16/1.html")
        assert time.perf_counter() - t0 <= FAST["file_deadline"] + 0.5
        assert hung.accepted == 3
    assert is_unreachable(err.value)


def test_should_stop_ends_a_call_at_its_next_retry(aws_env):
    """The batch stopped (store judged down elsewhere): an upload in flight does not retry."""
    with HungEndpoint() as hung:
        store = open_store(
            s3_settings(hung.url, "reports", **FAST), should_stop=lambda: "store judged down"
        )
        with pytest.raises(StoreStopped, match=r"store judged down; PUT .* after 1 attempt"):
            store.put("reports/2026-11-16/1.pdf", b"%PDF", CONTENT_TYPES["pdf"])
        assert hung.accepted == 1


def test_answers_are_not_unreachable_but_refused_connections_are(moto_endpoint, bucket):
    key = "reports/2026-11-16/7.pdf"
    with FaultProxy(moto_endpoint, lambda m, p: 403 if p.endswith(key) else None) as proxy:
        store = open_store(s3_settings(proxy.url, bucket, **FAST))
        with pytest.raises(Exception) as err:
            store.put(key, b"%PDF", CONTENT_TYPES["pdf"])
    assert not is_unreachable(err.value)  # the store answered: a 403 on one key
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    with pytest.raises(Exception) as err:
        open_store(s3_settings(closed, bucket, **FAST)).put(key, b"%PDF", CONTENT_TYPES["pdf"])
    assert is_unreachable(err.value)
    assert not is_unreachable(OSError("disk full")) and not is_unreachable(ValueError())
