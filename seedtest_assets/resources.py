"""Dagster resources: the warehouse and the report store.

Configured from the environment with embedded defaults: with nothing set, the warehouse is the
SQLite file under ``SEEDTEST_HOME`` and reports go to ``SEEDTEST_HOME/reports``. Secrets stay
in ``EnvVar`` references, so the UI shows the variable's name, never its value.
"""

import os

import dagster as dg
from pydantic import PrivateAttr
from sqlalchemy import Engine

from seedtest_assets import settings
from seedtest_assets.warehouse import make_engine


class WarehouseResource(dg.ConfigurableResource):
    """The SQL warehouse (SQLAlchemy engine), PostgreSQL or the embedded SQLite file.

    Attributes:
        database_url: a SQLAlchemy URL; empty -> ``sqlite:///$SEEDTEST_HOME/warehouse.db``.
    """

    database_url: str = ""
    _engine: Engine | None = PrivateAttr(default=None)

    def url(self) -> str:
        """The effective URL (normalized; may contain a password: never log it)."""
        return (
            settings.normalize_database_url(self.database_url)
            if self.database_url
            else settings.default_database_url()
        )

    def display_url(self) -> str:
        """The URL with its password masked, for logs and metadata."""
        return settings.redact_url(self.url())

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._engine = make_engine(self.url())

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    @property
    def engine(self) -> Engine:
        """The engine for this run (created lazily outside a run, e.g. in sensors)."""
        if self._engine is None:
            self._engine = make_engine(self.url())
        return self._engine


def warehouse_from_env() -> WarehouseResource:
    """``DATABASE_URL`` through ``EnvVar`` when set, else the embedded SQLite default."""
    if os.environ.get("DATABASE_URL"):
        return WarehouseResource(database_url=dg.EnvVar("DATABASE_URL"))
    return WarehouseResource()


class ReportStoreResource(dg.ConfigurableResource):
    """Where weekly reports go: a local folder by default, S3 when ``bucket`` is set.

    Attributes:
        bucket: S3 bucket (``S3_BUCKET``); empty -> the local folder.
        region: the bucket's region (``AWS_REGION``, default ap-northeast-2).
        endpoint_url: an S3-compatible endpoint (``S3_ENDPOINT_URL``: moto, MinIO); empty -> AWS.
        prefix: key prefix; keys are ``{prefix}/{week_start}/{user_id}.{html|pdf}``.
        local_dir: root of the local store; empty -> ``$SEEDTEST_HOME`` (so files land in
            ``$SEEDTEST_HOME/reports/...``).
        url_expiry_seconds: lifetime of the presigned URLs recorded for S3 objects
            (``REPORT_URL_EXPIRY_SECONDS``, default and maximum 7 days).
        max_attempts: attempts per S3 request (botocore standard retry mode, with backoff).

    AWS credentials are never configuration: boto3 reads them from its usual chain
    (environment, profile, instance or pod role).
    """

    bucket: str = ""
    region: str = "ap-northeast-2"
    endpoint_url: str = ""
    prefix: str = "reports"
    local_dir: str = ""
    url_expiry_seconds: int = 7 * 24 * 3600
    max_attempts: int = 5

    def store_settings(self):
        """The picklable settings the render workers open the store from."""
        from seedtest_assets.report_artifacts.store import StoreSettings

        return StoreSettings(
            bucket=self.bucket.strip(),
            local_dir=self.local_dir or str(settings.seedtest_home()),
            region=self.region or "ap-northeast-2",
            endpoint_url=self.endpoint_url.strip(),
            prefix=self.prefix,
            url_expiry_seconds=self.url_expiry_seconds,
            max_attempts=self.max_attempts,
        )

    def describe(self) -> str:
        """Where reports go, for logs and metadata (no credentials involved)."""
        st = self.store_settings()
        if st.kind == "s3":
            where = f" via {st.endpoint_url}" if st.endpoint_url else ""
            return f"s3://{st.bucket}/{st.prefix}/ ({st.region}{where})"
        return f"{st.local_dir}/{st.prefix}/"


def report_store_from_env() -> ReportStoreResource:
    """The report store from the environment: S3 when ``S3_BUCKET`` is set, else local.

    ``S3_BUCKET``, ``AWS_REGION``, ``S3_ENDPOINT_URL`` and ``REPORT_URL_EXPIRY_SECONDS`` are
    read through ``EnvVar`` when set (the UI shows the names); unset ones keep the defaults.
    """
    kwargs: dict = {}
    for env, field in (
        ("S3_BUCKET", "bucket"),
        ("AWS_REGION", "region"),
        ("S3_ENDPOINT_URL", "endpoint_url"),
    ):
        if os.environ.get(env):
            kwargs[field] = dg.EnvVar(env)
    if os.environ.get("REPORT_URL_EXPIRY_SECONDS"):
        kwargs["url_expiry_seconds"] = dg.EnvVar.int("REPORT_URL_EXPIRY_SECONDS")
    return ReportStoreResource(**kwargs)
