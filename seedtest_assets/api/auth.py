"""Bearer tokens: RS256/ES256 JWTs verified against a JWKS (PyJWT), and the scope rules.

- Only asymmetric algorithms are accepted (``RS256``, ``ES256``), and a key must be of the
  token's algorithm: ``alg: none`` and HS256-signed-with-the-public-key (the classic
  algorithm-confusion attack) are refused before any key is used.
- ``aud``, ``iss``, ``exp`` and ``sub`` are required and checked.
- Keys come from the JWKS by ``kid`` through ``PyJWKClient`` (cached). A ``kid`` not in the
  cache refetches the JWKS, at most once per ``min_refresh_seconds`` (1 s; a flood of made-up
  ``kid`` values cannot turn into a flood of JWKS requests): a key rotation works without a
  restart.
- Scopes are read from ``scope`` (space-separated, RFC 8693/OAuth 2), ``scp`` and
  ``scopes`` (a list or a string) and ``permissions`` (a list). ``analysis:run`` may update
  anyone; ``exam:write`` alone only the token's own student (``sub`` = ``user_id``).

Tokens are never logged, and error messages never quote them.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import jwt

ALGORITHMS = ("RS256", "ES256")
SCOPE_ANYONE = "analysis:run"
SCOPE_OWN = "exam:write"
ACCEPTED_SCOPES = (SCOPE_ANYONE, SCOPE_OWN)


class AuthError(Exception):
    """A request the service refuses: ``status`` 401 (no or bad token), 403 (scope) or 503
    (the JWKS cannot be fetched); ``error`` is the RFC 6750 code."""

    def __init__(self, status: int, error: str, description: str):
        super().__init__(description)
        self.status, self.error, self.description = status, error, description


@dataclass(frozen=True)
class Principal:
    """Who called: the token's ``sub`` and scopes (``local_dev``: nothing was verified)."""

    sub: str | None
    scopes: frozenset[str]
    local_dev: bool = False

    def require_any(self, scopes: tuple[str, ...] = ACCEPTED_SCOPES) -> None:
        """403 ``insufficient_scope`` unless the token has one of ``scopes``."""
        if self.local_dev or self.scopes & set(scopes):
            return
        raise AuthError(
            403, "insufficient_scope", f"the token needs one of the scopes {' '.join(scopes)}"
        )

    def require_student(self, user_id: str) -> None:
        """403 unless this token may act on ``user_id``: ``analysis:run`` for anyone,
        ``exam:write`` for the token's own ``sub``."""
        self.require_any()
        if self.local_dev or SCOPE_ANYONE in self.scopes or self.sub == user_id:
            return
        raise AuthError(
            403,
            "insufficient_scope",
            f"a token with {SCOPE_OWN} only may update its own student (sub); "
            f"{SCOPE_ANYONE} may update anyone",
        )


LOCAL_DEV_PRINCIPAL = Principal(sub=None, scopes=frozenset(ACCEPTED_SCOPES), local_dev=True)


def token_scopes(claims: dict[str, object]) -> frozenset[str]:
    """The scopes a token grants, from ``scope``, ``scp``, ``scopes`` and ``permissions``."""
    found: set[str] = set()
    for name in ("scope", "scp", "scopes", "permissions"):
        value = claims.get(name)
        if isinstance(value, str):
            found.update(value.split())
        elif isinstance(value, list | tuple):
            found.update(str(v) for v in value)
    return frozenset(found)


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header (401 otherwise)."""
    if not authorization:
        raise AuthError(401, "invalid_request", "missing Authorization: Bearer token")
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise AuthError(401, "invalid_request", "the Authorization header must be 'Bearer <token>'")
    if len(token) > 16_384:
        raise AuthError(401, "invalid_token", "token too long")
    return token


class TokenVerifier:
    """Verifies tokens against ``jwks_url`` for ``audience`` and ``issuer``."""

    def __init__(
        self,
        jwks_url: str,
        audience: str,
        issuer: str,
        *,
        leeway_seconds: float = 30.0,
        cache_seconds: int = 300,
        min_refresh_seconds: float = 1.0,
        timeout_seconds: float = 5.0,
    ):
        self.audience, self.issuer, self.leeway = audience, issuer, leeway_seconds
        self._client = jwt.PyJWKClient(
            jwks_url, cache_keys=False, lifespan=cache_seconds, timeout=int(timeout_seconds)
        )
        self._min_refresh = min_refresh_seconds
        self._lock = threading.Lock()
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched = float("-inf")

    def _refresh(self) -> None:
        try:
            keys = self._client.get_signing_keys(refresh=True)
        except jwt.PyJWKClientConnectionError as exc:
            raise AuthError(
                503, "temporarily_unavailable", "the JWKS cannot be fetched: cannot verify tokens"
            ) from exc
        except jwt.PyJWKClientError as exc:
            raise AuthError(503, "temporarily_unavailable", f"the JWKS is unusable: {exc}") from exc
        self._keys = {k.key_id: k for k in keys if k.key_id}
        self._fetched = time.monotonic()

    def signing_key(self, kid: str) -> jwt.PyJWK:
        """The JWKS key ``kid``; refetches the JWKS (rate-limited) when it is unknown."""
        key = self._keys.get(kid)
        if key is not None:
            return key
        with self._lock:
            key = self._keys.get(kid)
            if key is None and time.monotonic() - self._fetched >= self._min_refresh:
                self._refresh()
                key = self._keys.get(kid)
        if key is None:
            raise AuthError(
                401, "invalid_token", "the token's signing key (kid) is not in the JWKS"
            )
        return key

    def warm(self) -> None:
        """Fetch the JWKS now (at start-up), so the first request does not wait for it."""
        with self._lock:
            self._refresh()

    def has_key_for(self, token: str) -> bool:
        """Whether ``token``'s ``kid`` is cached (verifying it needs no network)."""
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError:
            return True  # refused without any key
        return not isinstance(kid, str) or kid in self._keys

    def verify(self, token: str) -> Principal:
        """The token's principal; :class:`AuthError` 401 for anything not valid."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthError(401, "invalid_token", "the token is not a JWT") from None
        alg = header.get("alg")
        if alg not in ALGORITHMS:
            raise AuthError(
                401,
                "invalid_token",
                f"algorithm {str(alg)[:16]!r} is not accepted (only {', '.join(ALGORITHMS)})",
            )
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise AuthError(401, "invalid_token", "the token has no key id (kid)")
        key = self.signing_key(kid)
        if key.algorithm_name != alg:  # an RSA key cannot verify ES256, nor the reverse
            raise AuthError(401, "invalid_token", "the token's algorithm does not match its key")
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[alg],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise AuthError(401, "invalid_token", "the token has expired") from None
        except jwt.InvalidAudienceError:
            raise AuthError(401, "invalid_token", "the token is for another audience") from None
        except jwt.InvalidIssuerError:
            raise AuthError(401, "invalid_token", "the token is from another issuer") from None
        except jwt.MissingRequiredClaimError as exc:
            raise AuthError(401, "invalid_token", f"the token has no {exc.claim} claim") from None
        except jwt.PyJWTError:
            raise AuthError(401, "invalid_token", "the token's signature is not valid") from None
        sub = claims.get("sub")
        return Principal(sub=str(sub) if sub is not None else None, scopes=token_scopes(claims))
