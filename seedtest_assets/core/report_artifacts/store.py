"""Where rendered reports go: a local folder (default) or S3 (no Dagster).

Key layout, the same for both: ``{prefix}/{week_start}/{user_id}.{ext}``, e.g.
``reports/2026-11-16/123.pdf``; re-rendering a week overwrites the same keys. The id part is
:func:`encode_user_id`: an integer's digits or a text id percent-encoded (safe, injective,
reversible by :func:`user_id_from_key`); see docs/reports.md, "Store keys".

S3 (when a bucket is configured):

- ``boto3`` client with botocore's ``standard`` retry mode: exponential backoff with jitter on
  transient errors (throttling, HTTP 500/502/503/504, connection and read timeouts), at most
  ``max_attempts`` attempts per request. That is the SDK's own, maintained retry policy, so we
  add no retry layer of our own on top (a second layer would multiply the attempts).
- Bounded time per file: each attempt waits at most ``connect_timeout`` to connect and
  ``read_timeout`` per socket read, and a ``before-send`` hook refuses to *start* an attempt
  (a retry) that could not end, at those timeouts, within ``file_deadline`` seconds of the
  call's start: retries x timeouts never exceed the deadline. The same hook ends a call at its
  next retry when ``should_stop`` says the batch has stopped (store judged down, time budget
  spent). An attempt on a silent store lasts at most ``connect_timeout`` + 1 s (botocore's
  wait for "100 Continue" on uploads) + ``read_timeout`` (:attr:`StoreSettings.attempt_seconds`).
  A hung endpoint (accepts, never answers) thus costs at most ``file_deadline`` per file;
  with the defaults (3 s, 10 s, 3 attempts, 30 s) 22 s: two attempts of 11 s, the third
  refused (it could run to 36 s).
- :func:`is_unreachable` tells "the store did not answer" (connection failures, timeouts,
  the deadline) from "the store answered no" (403, 404, 500 ...): only the first kind counts
  towards the batch's circuit breaker (``breaker_failures``).
- Every object is written with its content type and a SHA-256 checksum that S3 verifies
  (``ChecksumSHA256``): a corrupted upload fails instead of being recorded.
- The returned URL is a presigned GET URL valid for ``url_expiry_seconds`` (SigV4 allows at
  most 7 days), never a public URL; :meth:`S3ReportStore.presigned_url` issues a fresh one
  for an existing key.
- Credentials come from boto3's usual chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``
  in the environment, a profile, or an instance/pod role); they are never passed in config or
  logged. ``endpoint_url`` points at an S3-compatible server (moto, MinIO).
"""

from __future__ import annotations

import base64
import hashlib
import numbers
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Protocol

CONTENT_TYPES = {"html": "text/html; charset=utf-8", "pdf": "application/pdf"}
#: botocore sends uploads with "Expect: 100-continue" and waits up to 1 s for the go-ahead
#: (then sends anyway): part of the longest an attempt may take on a silent store.
EXPECT_CONTINUE_SECONDS = 1.0
#: SigV4 presigned URLs live at most 7 days.
MAX_URL_EXPIRY_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True)
class StoredObject:
    """An object written to a store: its key, URL, size (bytes) and SHA-256 (hex)."""

    key: str
    url: str
    size: int
    sha256: str


@dataclass(frozen=True)
class StoreSettings:
    """Everything a worker process needs to open the store (picklable, no secrets).

    Attributes:
        bucket: S3 bucket; empty -> the local folder ``local_dir``.
        local_dir: root of the local store (keys are paths below it).
        region: AWS region of the bucket.
        endpoint_url: S3-compatible endpoint (moto, MinIO); empty -> AWS.
        prefix: first part of every key.
        url_expiry_seconds: lifetime of presigned URLs (1 s .. 7 days).
        max_attempts: attempts per S3 request, first try included (botocore standard mode).
        connect_timeout: seconds to open a connection (per attempt).
        read_timeout: seconds to wait for the next bytes of an answer (per socket read).
        file_deadline: seconds one file's upload or download may take, retries included: no
            attempt starts that could not end (at the timeouts above) by then. At least one
            attempt: ``connect_timeout + read_timeout`` + 1 s (:attr:`attempt_seconds`).
        breaker_failures: the batch judges the store down after this many consecutive files
            failed because the store did not answer (:func:`is_unreachable`), and fails the
            remaining students without attempting them.
    """

    bucket: str = ""
    local_dir: str = ""
    region: str = "ap-northeast-2"
    endpoint_url: str = ""
    prefix: str = "reports"
    url_expiry_seconds: int = MAX_URL_EXPIRY_SECONDS
    max_attempts: int = 3
    connect_timeout: float = 3.0
    read_timeout: float = 10.0
    file_deadline: float = 30.0
    breaker_failures: int = 3

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")
        if self.connect_timeout <= 0 or self.read_timeout <= 0:
            raise ValueError(
                f"connect_timeout and read_timeout must be > 0, got "
                f"{self.connect_timeout}, {self.read_timeout}"
            )
        if self.file_deadline < self.attempt_seconds:
            raise ValueError(
                f"file_deadline ({self.file_deadline:g} s) must be at least one attempt: "
                f"connect_timeout + read_timeout + {EXPECT_CONTINUE_SECONDS:g} s "
                f"({self.attempt_seconds:g} s)"
            )
        if self.breaker_failures < 1:
            raise ValueError(f"breaker_failures must be >= 1, got {self.breaker_failures}")

    @property
    def kind(self) -> str:
        """``"s3"`` or ``"local"``."""
        return "s3" if self.bucket else "local"

    @property
    def attempt_seconds(self) -> float:
        """The longest one attempt may wait on a silent store: connect timeout, the
        100-continue wait of an upload, read timeout."""
        return self.connect_timeout + EXPECT_CONTINUE_SECONDS + self.read_timeout

    def target(self) -> str:
        """Where requests go, for messages: the endpoint URL, AWS's S3 host, or the folder."""
        if self.kind == "local":
            return str(Path(self.local_dir) / self.prefix)
        return self.endpoint_url or f"https://s3.{self.region}.amazonaws.com"


#: Characters a key segment keeps as they are (RFC 3986 "unreserved" minus ``~``); ``.`` is
#: kept except as the first character (no hidden files, no ``.``/``..`` path segments).
_SAFE_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.")
#: Longest encoded id kept whole (ASCII characters). Longer ones become
#: ``{first 128 chars}~{sha256 hex}`` (at most 193 characters). Either way the segment plus an
#: extension stays under the 255-byte file-name limit of common filesystems (ext4, APFS, NTFS),
#: and a key far under S3's 1,024-byte limit.
MAX_ID_SEGMENT = 240
#: Separates the kept prefix from the hash of an over-long id. Never produced by the
#: percent-encoding (``~`` is encoded as ``%7E``), so hashed and plain segments never collide.
_HASH_MARK = "~"
_PLAIN_SEGMENT = re.compile(r"(?:[A-Za-z0-9_-]|%[0-9A-F]{2})(?:[A-Za-z0-9_.-]|%[0-9A-F]{2})*")


def encode_user_id(user_id: int | str) -> str:
    """The key segment of a student id: safe in any path or S3 key, injective, reversible.

    - An integer is its decimal text (``42`` -> ``"42"``, exactly today's keys); so is a
      numpy or other integral number. The id space is text: ``42`` and ``"42"`` are the same
      student (the tables will switch to text ids) and share one key.
    - A string keeps ``[A-Za-z0-9_-]`` and ``.`` (not first); every other character is
      percent-encoded as its UTF-8 bytes, upper-case hex, ``%`` itself included
      (``"a/b"`` -> ``"a%2Fb"``, ``"a%2Fb"`` -> ``"a%252Fb"``, ``".x"`` -> ``"%2Ex"``,
      ``"김"`` -> ``"%EA%B9%80"``). Case is kept (S3 keys are case-sensitive; see
      docs/reports.md for case-insensitive local folders).
    - An encoding longer than :data:`MAX_ID_SEGMENT` becomes its first 128 characters (cut
      before a partial ``%XX``), ``~`` and the SHA-256 (hex) of the id's UTF-8 bytes: still
      one key per id (``~`` marks it apart from every plain segment; two long ids share a key
      only on a SHA-256 collision), but not reversible from the key alone.

    Raises ``ValueError`` for an empty id and ``TypeError`` for anything but text or an
    integer.
    """
    if isinstance(user_id, str):
        if not user_id:
            raise ValueError("a student id cannot be empty")
        raw = user_id.encode("utf-8", "surrogatepass")
        out = []
        for i, byte in enumerate(raw):
            char = chr(byte)
            if byte < 0x80 and char in _SAFE_ID_CHARS and not (i == 0 and char == "."):
                out.append(char)
            else:
                out.append(f"%{byte:02X}")
        segment = "".join(out)
        if len(segment) <= MAX_ID_SEGMENT:
            return segment
        head = segment[:128]
        cut = head.rfind("%", len(head) - 2)  # do not end inside a "%XX"
        if cut != -1:
            head = head[:cut]
        return f"{head}{_HASH_MARK}{hashlib.sha256(raw).hexdigest()}"
    if isinstance(user_id, numbers.Integral):
        return str(int(user_id))
    raise TypeError(f"a student id is text or an integer, got {type(user_id).__name__}")


def decode_user_id(segment: str) -> str:
    """The id whose key segment is ``segment`` (:func:`encode_user_id` reversed), as text.

    Raises ``ValueError`` for a segment :func:`encode_user_id` does not produce, and for the
    hashed segment of an over-long id (its tail is a hash: look the id up by key in
    ``report_artifacts``)."""
    if _HASH_MARK in segment:
        raise ValueError(
            f"key segment {segment[:60]!r}... is an over-long id's prefix and hash: the id "
            "cannot be read back from the key (look it up by key in report_artifacts)"
        )
    if not _PLAIN_SEGMENT.fullmatch(segment):
        raise ValueError(f"not a student id key segment: {segment[:80]!r}")
    raw = bytearray()
    i = 0
    while i < len(segment):
        if segment[i] == "%":
            raw.append(int(segment[i + 1 : i + 3], 16))
            i += 3
        else:
            raw.append(ord(segment[i]))
            i += 1
    try:
        user_id = bytes(raw).decode("utf-8", "surrogatepass")
    except UnicodeDecodeError as exc:
        raise ValueError(f"key segment {segment[:80]!r} is not UTF-8: {exc}") from None
    if encode_user_id(user_id) != segment:  # e.g. "%41" for "A": not what we write
        raise ValueError(f"key segment {segment[:80]!r} is not in canonical form")
    return user_id


def report_key(prefix: str, week_start: date | str, user_id: int | str, ext: str) -> str:
    """The object key of one report file: ``{prefix}/{week}/{segment}.{ext}``, where the
    segment is :func:`encode_user_id` (an integer id: its decimal digits, as always)."""
    week = week_start.isoformat() if isinstance(week_start, date) else str(week_start)
    return f"{prefix.strip('/')}/{week}/{encode_user_id(user_id)}.{ext}"


def user_id_from_key(key: str) -> str:
    """The student id (as text) of a key made by :func:`report_key`: its last path segment
    without the extension, decoded. ``report_key(p, w, 42, "pdf")`` gives ``"42"``.

    Raises ``ValueError`` for a key :func:`report_key` does not make, or one of an
    over-long id (:func:`encode_user_id`)."""
    name = key.rsplit("/", 1)[-1]
    segment, dot, ext = name.rpartition(".")
    if not dot or not segment or not ext:
        raise ValueError(f"not a report key (no '{{id}}.{{ext}}' file name): {key[:120]!r}")
    return decode_user_id(segment)


class ReportStore(Protocol):
    """Writes report files and hands out URLs for them."""

    def put(self, key: str, body: bytes, content_type: str) -> StoredObject:
        """Write ``body`` under ``key`` (replacing it); raises on failure."""
        ...

    def get(self, key: str) -> bytes:
        """The stored bytes of ``key`` (what a reader downloads); raises if missing."""
        ...


class StoreDeadlineExceeded(Exception):
    """A file's upload or download ran out of its ``file_deadline`` (a "did not answer")."""


class StoreStopped(Exception):
    """A call given up at a retry because the batch stopped (store down or budget spent)."""


def is_unreachable(exc: BaseException) -> bool:
    """True when ``exc`` means the store did not answer: connection refused or reset, DNS,
    TLS, connect or read timeout, the per-file deadline, or a call given up because the
    store was judged down. False for answers (``ClientError``: 403, 404, 500 ...) and for
    everything else (a local disk error, a bug)."""
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from botocore.exceptions import HTTPClientError

    return isinstance(
        exc, BotoConnectionError | HTTPClientError | StoreDeadlineExceeded | StoreStopped
    )


def sha256_hex(body: bytes) -> str:
    """The SHA-256 of ``body`` as 64 hex digits (what ``report_artifacts.sha256`` holds)."""
    return hashlib.sha256(body).hexdigest()


class LocalReportStore:
    """Reports as files under a root folder; URLs are ``file://`` URIs."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()

    def path_for(self, key: str) -> Path:
        """The file of ``key``: resolved (``..`` and symlinks followed) and verified to lie
        strictly below the root, whatever the key holds (keys are ours, but a file is never
        read or written outside the root). Raises ``ValueError`` otherwise."""
        if not key or "\0" in key:
            raise ValueError(f"not a valid store key (empty or NUL): {key[:120]!r}")
        try:
            path = (self.root / key).resolve()
        except (OSError, RuntimeError) as exc:  # e.g. a name too long, a symlink loop
            raise ValueError(f"not a valid store key: {key[:120]!r}: {exc}") from None
        if self.root not in path.parents:
            raise ValueError(f"key escapes the store root {str(self.root)!r}: {key[:120]!r}")
        return path

    def put(self, key: str, body: bytes, content_type: str) -> StoredObject:
        path = self.path_for(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename: a reader never sees a half-written report.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(body)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return StoredObject(key, path.as_uri(), len(body), sha256_hex(body))

    def get(self, key: str) -> bytes:
        return self.path_for(key).read_bytes()


class _Call:
    """One put/get in flight: when it started, attempts sent, what the last one got."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.start = time.monotonic()
        self.attempts = 0
        self.last = ""


class S3ReportStore:
    """Reports as S3 objects; URLs are presigned GET URLs.

    ``should_stop``: called before each retry; a reason (str) ends the call there with
    :class:`StoreStopped` (the batch's breaker or time budget), None lets it retry.
    """

    def __init__(
        self,
        settings: StoreSettings,
        client=None,
        should_stop: Callable[[], str | None] | None = None,
    ) -> None:
        if not settings.bucket:
            raise ValueError("S3ReportStore needs a bucket")
        if not 1 <= settings.url_expiry_seconds <= MAX_URL_EXPIRY_SECONDS:
            raise ValueError(
                f"url_expiry_seconds must be in [1, {MAX_URL_EXPIRY_SECONDS}] (SigV4 limit)"
            )
        self.settings = settings
        self.client = client if client is not None else make_s3_client(settings)
        self.should_stop = should_stop
        self._local = threading.local()  # the call in flight, per thread
        events = self.client.meta.events
        events.register("before-send.s3", self._before_attempt)
        events.register("needs-retry.s3", self._after_attempt)

    # ------------------------------------------------------------- the per-file deadline
    def _before_attempt(self, **kwargs) -> None:
        """botocore ``before-send``: each attempt, after any backoff; raising ends the call
        (our exceptions are not retryable)."""
        call: _Call | None = getattr(self._local, "call", None)
        if call is None:
            return None
        if call.attempts:  # a retry: is there time for it, and is the batch still on?
            elapsed = time.monotonic() - call.start
            stop = self.should_stop() if self.should_stop is not None else None
            if stop:
                raise StoreStopped(
                    f"{stop}; {call.what} given up after {call.attempts} attempt(s) in "
                    f"{elapsed:.1f} s, last: {call.last}"
                )
            if elapsed + self.settings.attempt_seconds > self.settings.file_deadline:
                raise StoreDeadlineExceeded(
                    f"{call.what} to {self.settings.target()} not done within its "
                    f"{self.settings.file_deadline:g} s deadline: {call.attempts} attempt(s) in "
                    f"{elapsed:.1f} s, no time for another (each may wait "
                    f"{self.settings.attempt_seconds:g} s); last: {call.last}"
                )
        call.attempts += 1
        return None

    def _after_attempt(self, response=None, caught_exception=None, **kwargs) -> None:
        """botocore ``needs-retry``: remember what the attempt got (decides nothing)."""
        call: _Call | None = getattr(self._local, "call", None)
        if call is None:
            return None
        if caught_exception is not None:
            call.last = f"{type(caught_exception).__name__}: {caught_exception}"
        elif response is not None:
            status = getattr(response[0], "status_code", "?")
            code = (response[1] or {}).get("Error", {}).get("Code", "")
            call.last = f"HTTP {status} {code}".strip()
        return None

    def _call(self, what: str, fn: Callable, **params):
        self._local.call = _Call(what)
        try:
            return fn(**params)
        finally:
            self._local.call = None

    # ------------------------------------------------------------- the store
    def put(self, key: str, body: bytes, content_type: str) -> StoredObject:
        digest = hashlib.sha256(body).digest()
        self._call(
            f"PUT {key}",
            self.client.put_object,
            Bucket=self.settings.bucket,
            Key=key,
            Body=body,
            ContentType=content_type,
            ChecksumSHA256=base64.b64encode(digest).decode("ascii"),
            # Reports are personal: caches must not share them.
            CacheControl="private, max-age=3600",
        )
        return StoredObject(key, self.presigned_url(key), len(body), digest.hex())

    def presigned_url(self, key: str, expiry_seconds: int | None = None) -> str:
        """A presigned GET URL for ``key`` (default lifetime: the store's setting)."""
        return self.client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.settings.bucket, "Key": key},
            ExpiresIn=int(expiry_seconds or self.settings.url_expiry_seconds),
        )

    def get(self, key: str) -> bytes:
        """The object's bytes, within the per-file deadline (retries refused past it; each
        socket read of the body waits at most ``read_timeout``)."""
        resp = self._call(
            f"GET {key}", self.client.get_object, Bucket=self.settings.bucket, Key=key
        )
        return resp["Body"].read()


def make_s3_client(settings: StoreSettings):
    """A boto3 S3 client with retries, timeouts and SigV4 (credentials from boto3's chain)."""
    import boto3
    from botocore.config import Config

    config = Config(
        region_name=settings.region,
        signature_version="s3v4",
        retries={"total_max_attempts": settings.max_attempts, "mode": "standard"},
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        # Custom endpoints (moto, MinIO) generally lack virtual-host DNS for buckets.
        s3={"addressing_style": "path" if settings.endpoint_url else "auto"},
    )
    return boto3.session.Session().client(
        "s3", endpoint_url=settings.endpoint_url or None, config=config
    )


def open_store(
    settings: StoreSettings, should_stop: Callable[[], str | None] | None = None
) -> ReportStore:
    """The store described by ``settings``: S3 when a bucket is set, else the local folder.

    ``should_stop``: see :class:`S3ReportStore` (the local store does not retry).
    """
    if settings.bucket:
        return S3ReportStore(settings, should_stop=should_stop)
    if not settings.local_dir:
        raise ValueError("local store needs local_dir")
    return LocalReportStore(settings.local_dir)
