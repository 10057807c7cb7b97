"""The service's settings, from the environment only (secrets never come from files or flags)."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

from seedtest_assets.core import settings
from seedtest_assets.core.mirt_ability.online import online_updates_enabled

_TRUE = {"1", "true", "yes", "on"}


class ApiConfigError(ValueError):
    """The service cannot start with these settings (the message says which and why)."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` binds only this machine (``127.0.0.0/8``, ``::1``, ``localhost``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: may resolve to anything


@dataclass(frozen=True)
class ApiConfig:
    """What ``seedtest serve`` reads from the environment.

    Attributes:
        jwks_url, audience, issuer: ``JWKS_URL``, ``JWT_AUD``, ``JWT_ISS`` (required unless
            ``local_dev``).
        local_dev: ``LOCAL_DEV=true``: tokens are not verified (development on loopback only).
        online_enabled: ``ENABLE_IRT_ONLINE_UPDATE`` (default on); off: updates answer noop.
        bank_refresh_seconds: how often the service checks for a new calibration
            (``SEEDTEST_API_BANK_REFRESH_SECONDS``, default 10).
        max_batch: most students scored in one call when requests arrive together
            (``SEEDTEST_API_MAX_BATCH``, default 64).
        concurrency: scoring calls running at once per worker
            (``SEEDTEST_API_CONCURRENCY``, default 1: measured best, because the scoring is
            CPU-bound Python that several threads only contend for; more workers scale).
        dagster_events: record ``student/mirt_ability`` materializations (``DAGSTER_HOME`` set
            and ``SEEDTEST_API_DAGSTER_EVENTS`` not false).
        jwt_leeway_seconds: clock skew allowed on ``exp``/``nbf``/``iat``
            (``JWT_LEEWAY_SECONDS``, default 30).
    """

    jwks_url: str | None
    audience: str | None
    issuer: str | None
    local_dev: bool
    online_enabled: bool
    bank_refresh_seconds: float = 10.0
    max_batch: int = 64
    concurrency: int = 1
    dagster_events: bool = False
    jwt_leeway_seconds: float = 30.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ApiConfig:
        def get(name: str) -> str | None:
            return settings.env(name, environ) or None

        def number(name: str, default: float, low: float, high: float) -> float:
            raw = get(name)
            if raw is None:
                return default
            try:
                value = float(raw)
            except ValueError:
                raise ApiConfigError(f"{name}={raw!r} is not a number") from None
            if not low <= value <= high:
                raise ApiConfigError(f"{name}={raw} is outside {low:g}..{high:g}")
            return value

        events_off = (get("SEEDTEST_API_DAGSTER_EVENTS") or "true").lower() not in _TRUE
        return cls(
            jwks_url=get("JWKS_URL"),
            audience=get("JWT_AUD"),
            issuer=get("JWT_ISS"),
            local_dev=(get("LOCAL_DEV") or "false").lower() in _TRUE,
            online_enabled=online_updates_enabled(environ),
            bank_refresh_seconds=number("SEEDTEST_API_BANK_REFRESH_SECONDS", 10.0, 0.1, 3600),
            max_batch=int(number("SEEDTEST_API_MAX_BATCH", 64, 1, 1000)),
            concurrency=int(number("SEEDTEST_API_CONCURRENCY", 1, 1, 32)),
            dagster_events=bool(get("DAGSTER_HOME")) and not events_off,
            jwt_leeway_seconds=number("JWT_LEEWAY_SECONDS", 30.0, 0, 300),
        )

    def check(self, host: str) -> None:
        """Refuse settings the service must not run with on ``host``.

        Raises:
            ApiConfigError: ``LOCAL_DEV`` on a non-loopback address; or, without
                ``LOCAL_DEV``, a missing ``JWKS_URL`` / ``JWT_AUD`` / ``JWT_ISS``.
        """
        if self.local_dev:
            if not is_loopback(host):
                raise ApiConfigError(
                    f"LOCAL_DEV=true skips token verification and is refused on {host}: bind "
                    "127.0.0.1 (or ::1), or unset LOCAL_DEV and set JWKS_URL, JWT_AUD, JWT_ISS"
                )
            return
        missing = [
            name
            for name, value in (
                ("JWKS_URL", self.jwks_url),
                ("JWT_AUD", self.audience),
                ("JWT_ISS", self.issuer),
            )
            if not value
        ]
        if missing:
            raise ApiConfigError(
                f"{', '.join(missing)} not set: the service verifies every token against the "
                "JWKS, audience and issuer (LOCAL_DEV=true skips that, on loopback only)"
            )
