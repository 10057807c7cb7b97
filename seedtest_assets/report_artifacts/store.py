"""Where rendered reports go: a local folder (default) or S3 (no Dagster).

Key layout, the same for both: ``{prefix}/{week_start}/{user_id}.{ext}``, e.g.
``reports/2026-11-16/123.pdf``; re-rendering a week overwrites the same keys.

S3 (when a bucket is configured):

- ``boto3`` client with botocore's ``standard`` retry mode: exponential backoff with jitter on
  transient errors (throttling, HTTP 500/502/503/504, connection and read timeouts), at most
  ``max_attempts`` attempts per request. That is the SDK's own, maintained retry policy, so we
  add no retry layer of our own on top (a second layer would multiply the attempts).
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
import os
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Protocol

CONTENT_TYPES = {"html": "text/html; charset=utf-8", "pdf": "application/pdf"}
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
        connect_timeout, read_timeout: seconds per S3 request.
    """

    bucket: str = ""
    local_dir: str = ""
    region: str = "ap-northeast-2"
    endpoint_url: str = ""
    prefix: str = "reports"
    url_expiry_seconds: int = MAX_URL_EXPIRY_SECONDS
    max_attempts: int = 5
    connect_timeout: float = 5.0
    read_timeout: float = 30.0

    @property
    def kind(self) -> str:
        """``"s3"`` or ``"local"``."""
        return "s3" if self.bucket else "local"


def report_key(prefix: str, week_start: date | str, user_id: int, ext: str) -> str:
    """The object key of one report file: ``{prefix}/{week}/{user_id}.{ext}``."""
    week = week_start.isoformat() if isinstance(week_start, date) else str(week_start)
    return f"{prefix.strip('/')}/{week}/{int(user_id)}.{ext}"


class ReportStore(Protocol):
    """Writes report files and hands out URLs for them."""

    def put(self, key: str, body: bytes, content_type: str) -> StoredObject:
        """Write ``body`` under ``key`` (replacing it); raises on failure."""
        ...

    def get(self, key: str) -> bytes:
        """The stored bytes of ``key`` (what a reader downloads); raises if missing."""
        ...


def sha256_hex(body: bytes) -> str:
    """The SHA-256 of ``body`` as 64 hex digits (what ``report_artifacts.sha256`` holds)."""
    return hashlib.sha256(body).hexdigest()


class LocalReportStore:
    """Reports as files under a root folder; URLs are ``file://`` URIs."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()

    def path_for(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root not in path.parents:  # keys are ours, but never write outside the root
            raise ValueError(f"key escapes the store root: {key!r}")
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


class S3ReportStore:
    """Reports as S3 objects; URLs are presigned GET URLs."""

    def __init__(self, settings: StoreSettings, client=None) -> None:
        if not settings.bucket:
            raise ValueError("S3ReportStore needs a bucket")
        if not 1 <= settings.url_expiry_seconds <= MAX_URL_EXPIRY_SECONDS:
            raise ValueError(
                f"url_expiry_seconds must be in [1, {MAX_URL_EXPIRY_SECONDS}] (SigV4 limit)"
            )
        self.settings = settings
        self.client = client if client is not None else make_s3_client(settings)

    def put(self, key: str, body: bytes, content_type: str) -> StoredObject:
        digest = hashlib.sha256(body).digest()
        self.client.put_object(
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
        return self.client.get_object(Bucket=self.settings.bucket, Key=key)["Body"].read()


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


def open_store(settings: StoreSettings) -> ReportStore:
    """The store described by ``settings``: S3 when a bucket is set, else the local folder."""
    if settings.bucket:
        return S3ReportStore(settings)
    if not settings.local_dir:
        raise ValueError("local store needs local_dir")
    return LocalReportStore(settings.local_dir)
