"""Real parts for the θ-update service's tests and ``benchmarks/api.py``: signing keys, a JWKS
served over HTTP on loopback, tokens, and ``seedtest serve`` as a real uvicorn process."""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from seedtest_assets_tests.dagster_servers import BIN, _start, _stop, free_port

AUDIENCE = "seedtest-api"
ISSUER = "https://auth.test.local/"


@dataclass
class SigningKey:
    """A private key and its public JWK (``kid``)."""

    kid: str
    alg: str
    private: object

    @classmethod
    def rsa(cls, kid: str | None = None) -> SigningKey:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return cls(kid or f"rsa-{uuid.uuid4().hex[:8]}", "RS256", key)

    @classmethod
    def ec(cls, kid: str | None = None) -> SigningKey:
        key = ec.generate_private_key(ec.SECP256R1())
        return cls(kid or f"ec-{uuid.uuid4().hex[:8]}", "ES256", key)

    def jwk(self) -> dict:
        algo = jwt.algorithms.RSAAlgorithm if self.alg == "RS256" else jwt.algorithms.ECAlgorithm
        data = json.loads(algo.to_jwk(self.private.public_key()))  # type: ignore[attr-defined]
        return {**data, "kid": self.kid, "use": "sig", "alg": self.alg}

    def token(
        self,
        sub: str | None,
        scope: str | None = "analysis:run",
        *,
        aud: str | None = AUDIENCE,
        iss: str | None = ISSUER,
        expires_in: float = 600,
        kid: str | None = None,
        **claims: object,
    ) -> str:
        now = int(time.time())
        payload: dict[str, object] = {"iat": now, "exp": now + int(expires_in), **claims}
        for name, value in (("sub", sub), ("scope", scope), ("aud", aud), ("iss", iss)):
            if value is not None:
                payload[name] = value
        return jwt.encode(
            payload, self.private, algorithm=self.alg, headers={"kid": kid or self.kid}
        )


class JwksServer:
    """``GET /.well-known/jwks.json`` on loopback; :meth:`publish` swaps the keys (rotation)."""

    def __init__(self, keys: list[SigningKey]):
        self.keys = list(keys)
        self.fetches = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != "/.well-known/jwks.json":
                    self.send_error(404)
                    return
                server.fetches += 1
                body = json.dumps({"keys": [k.jwk() for k in server.keys]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/.well-known/jwks.json"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def publish(self, keys: list[SigningKey]) -> None:
        self.keys = list(keys)

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@dataclass
class ThetaServer:
    """A running ``seedtest serve``."""

    url: str
    log: Path
    proc: object = field(repr=False)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def request(
        self,
        method: str,
        path: str,
        body: object = None,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
        timeout: float = 30,
    ) -> tuple[int, dict, dict[str, str]]:
        """(status, JSON body or {"_text": ...}, headers with lower-case names) of one
        HTTP request."""
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if token is not None:
            req.add_header("Authorization", f"Bearer {token}")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                status, text, hdrs = resp.status, resp.read().decode(), dict(resp.headers.items())
        except urllib.error.HTTPError as err:
            status, text, hdrs = err.code, err.read().decode(), dict(err.headers.items())
        hdrs = {k.lower(): v for k, v in hdrs.items()}  # header names are case-insensitive
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = {"_text": text}
        return status, parsed, hdrs


@contextlib.contextmanager
def theta_server(
    env: dict[str, str],
    log_dir: Path,
    *,
    workers: int = 1,
    host: str = "127.0.0.1",
    ready_timeout: float = 90,
    extra_args: tuple[str, ...] = (),
) -> Iterator[ThetaServer]:
    """Start ``seedtest serve`` with ``env`` (added to this process's environment) and wait
    until ``/healthz`` answers; stop it (and its workers) afterwards."""
    port = free_port()
    full = {**os.environ, **env}
    log = log_dir / f"serve-{port}.log"
    cmd = [
        str(BIN / "seedtest"),
        "serve",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-access-log",
        *extra_args,
    ]
    proc = _start(cmd, log, full)
    server = ThetaServer(f"http://127.0.0.1:{port}", log, proc)
    try:
        deadline = time.monotonic() + ready_timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"seedtest serve exited {proc.returncode}:\n{server.log_text()}")
            try:
                status, _, _ = server.request("GET", "/healthz", timeout=2)
                if status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"seedtest serve not up in {ready_timeout} s:\n{server.log_text()}"
                )
            time.sleep(0.2)
        yield server
    finally:
        _stop(proc)
