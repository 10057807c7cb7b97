"""Dagster resources: the warehouse and the report store.

Configured from the environment with embedded defaults: with nothing set, the warehouse is the
SQLite file under ``SEEDTEST_HOME`` and reports go to ``SEEDTEST_HOME/reports``. Secrets stay
in ``EnvVar`` references, so the UI shows the variable's name, never its value.
"""

import dagster as dg
from pydantic import PrivateAttr
from sqlalchemy import Engine

from seedtest_assets.core import settings
from seedtest_assets.core.lifecycle import step_dies_with_run
from seedtest_assets.core.report_artifacts.store import StoreSettings
from seedtest_assets.core.source.relations import check_source
from seedtest_assets.core.warehouse import make_engine


class WarehouseResource(dg.ConfigurableResource):
    """The SQL warehouse (SQLAlchemy engine), PostgreSQL or the embedded SQLite file.

    It is also where the source relations are read (the product's ``SOURCE_*`` relations or
    our own tables: :mod:`seedtest_assets.core.source.relations`), so its setup runs the
    source start check (:func:`~seedtest_assets.core.source.relations.check_source`): a step
    fails at its start, naming the relation, the missing columns and the variable to fix,
    rather than in the middle of a query. Why here and not in a ``SourceResource`` of its
    own: source and warehouse are one database (this engine), the readers resolve the
    relations from the same process environment that ``dg.EnvVar`` would read (a resource
    whose config could differ from what the readers use would check the wrong thing), and
    every asset and check already binds ``warehouse``, so nothing has to be rewired.

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
        """The URL for logs and metadata: every credential form masked (``settings.redact_url``).

        Pass a URL holding a password only as ``dg.EnvVar("DATABASE_URL")``: a literal string
        becomes the config default that Dagster stores in the job snapshot (the launchpad).
        """
        return settings.redact_url(self.url())

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # A step process of the multiprocess executor dies with its run worker: a killed run
        # must not leave a step behind that commits its partition (seedtest_assets/core/lifecycle).
        step_dies_with_run()
        self._engine = make_engine(self.url())
        # A few catalog queries per step: cheap next to any step, and they turn a renamed
        # column in the product into one clear error (SourceNotReady) before any work.
        check_source(self._engine)

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
    if settings.env("DATABASE_URL"):
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
        max_attempts: attempts per S3 request (botocore standard retry mode, with backoff;
            ``S3_MAX_ATTEMPTS``, default 3).
        connect_timeout: seconds to open a connection to S3 (``S3_CONNECT_TIMEOUT_SECONDS``,
            default 3).
        read_timeout: seconds S3 may stay silent during an answer (per socket read;
            ``S3_READ_TIMEOUT_SECONDS``, default 10).
        file_deadline_seconds: one file's upload or download, retries included
            (``S3_FILE_DEADLINE_SECONDS``, default 30; at least connect + read + 1 s).
        breaker_failures: consecutive files the store did not answer (timeouts, connection
            failures) after which a batch judges it down and fails the rest unattempted
            (``REPORT_STORE_BREAKER_FAILURES``, default 3).
        batch_budget_seconds: a weekly batch's total time budget from its start; students not
            started by then fail unattempted (``REPORT_BATCH_BUDGET_SECONDS``; 0 = 600 s + 1 s
            per selected student). The run config ``time_budget_seconds`` overrides it.

    AWS credentials are never configuration: boto3 reads them from its usual chain
    (environment, profile, instance or pod role).
    """

    bucket: str = ""
    region: str = "ap-northeast-2"
    endpoint_url: str = ""
    prefix: str = "reports"
    local_dir: str = ""
    url_expiry_seconds: int = 7 * 24 * 3600
    max_attempts: int = 3
    connect_timeout: float = 3.0
    read_timeout: float = 10.0
    file_deadline_seconds: float = 30.0
    breaker_failures: int = 3
    batch_budget_seconds: float = 0.0

    def store_settings(self) -> StoreSettings:
        """The picklable settings the render workers open the store from."""
        return StoreSettings(
            bucket=self.bucket.strip(),
            local_dir=self.local_dir or str(settings.seedtest_home()),
            region=self.region or "ap-northeast-2",
            endpoint_url=self.endpoint_url.strip(),
            prefix=self.prefix,
            url_expiry_seconds=self.url_expiry_seconds,
            max_attempts=self.max_attempts,
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            file_deadline=self.file_deadline_seconds,
            breaker_failures=self.breaker_failures,
        )

    def describe(self) -> str:
        """Where reports go, for logs and metadata (no credentials involved)."""
        st = self.store_settings()
        if st.kind == "s3":
            where = f" via {st.endpoint_url}" if st.endpoint_url else ""
            return f"s3://{st.bucket}/{st.prefix}/ ({st.region}{where})"
        return f"{st.local_dir}/{st.prefix}/"


#: Non-secret numeric store settings: (env, field, type). Floats are read here (``EnvVar``
#: resolves only strings and ints), ints through ``EnvVar.int``.
_NUMERIC_ENV = (
    ("REPORT_URL_EXPIRY_SECONDS", "url_expiry_seconds", int),
    ("S3_MAX_ATTEMPTS", "max_attempts", int),
    ("S3_CONNECT_TIMEOUT_SECONDS", "connect_timeout", float),
    ("S3_READ_TIMEOUT_SECONDS", "read_timeout", float),
    ("S3_FILE_DEADLINE_SECONDS", "file_deadline_seconds", float),
    ("REPORT_STORE_BREAKER_FAILURES", "breaker_failures", int),
    ("REPORT_BATCH_BUDGET_SECONDS", "batch_budget_seconds", float),
)


def report_store_from_env() -> ReportStoreResource:
    """The report store from the environment: S3 when ``S3_BUCKET`` is set, else local.

    ``S3_BUCKET``, ``AWS_REGION``, ``S3_ENDPOINT_URL`` and the integer settings
    (``REPORT_URL_EXPIRY_SECONDS``, ``S3_MAX_ATTEMPTS``, ``REPORT_STORE_BREAKER_FAILURES``) are
    read through ``EnvVar`` when set (the UI shows the names); the seconds
    (``S3_CONNECT_TIMEOUT_SECONDS``, ``S3_READ_TIMEOUT_SECONDS``, ``S3_FILE_DEADLINE_SECONDS``,
    ``REPORT_BATCH_BUDGET_SECONDS``; not secret) as values. Unset ones keep the defaults.
    """
    kwargs: dict = {}
    for env, field in (
        ("S3_BUCKET", "bucket"),
        ("AWS_REGION", "region"),
        ("S3_ENDPOINT_URL", "endpoint_url"),
    ):
        if settings.env(env):
            kwargs[field] = dg.EnvVar(env)
    for env, field, kind in _NUMERIC_ENV:
        raw = settings.env(env)
        if not raw:
            continue
        if kind is int:
            kwargs[field] = dg.EnvVar.int(env)
            continue
        try:
            kwargs[field] = float(raw)
        except ValueError:
            raise ValueError(f"{env} must be a number of seconds, got {raw!r}") from None
    return ReportStoreResource(**kwargs)


#: Collected by ``dg.load_from_defs_folder``: every asset, check, sensor and job of the
#: location binds these two keys.
defs = dg.Definitions(
    resources={"warehouse": warehouse_from_env(), "report_store": report_store_from_env()}
)
