"""A small warehouse for report tests, an HTTP proxy that injects faults in front of moto, and
a hung endpoint (accepts connections, never answers)."""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from seedtest_assets.core.report_artifacts.content import StudentInputs, TopicStats
from seedtest_assets.core.topic_ability.pipeline import materialize_week
from seedtest_assets.core.warehouse import make_engine, transaction
from seedtest_assets.core.warehouse import schema as s
from seedtest_assets_tests.factories import attempts_frame, insert_attempts, seed_reference

WEEK = date(2026, 3, 2)  # a Monday (factories.DAY)
KOREAN_NAME = "김민서"

#: A complete ``weekly_kpi.kpis`` object (the keys the KPI asset writes).
KPIS = {
    "I_t": 0.12,
    "I_t_se": 0.05,
    "E_t": 0.05,
    "P": 0.72,
    "S": 0.18,
    "theta": 0.52,
    "se": 0.21,
    "theta_prev": 0.40,
    "trend_per_week": 0.06,
    "study_minutes": 95.0,
    "active_days": 3,
    "attempts": 60,
    "correct": 42,
    "accuracy": 0.7,
    "goal_theta": 1.2,
    "goal_date": "2026-12-20",
    "days_since_last": 1,
}


def sample_inputs(name: str = KOREAN_NAME, kpis: dict | None = KPIS) -> StudentInputs:
    """One student's inputs with every section filled (8 weeks of θ, 4 topics)."""
    return StudentInputs(
        user_id="1042",
        name=name,
        org="서울 한빛학원",
        week_start=date(2026, 11, 16),
        goal_theta=1.2,
        goal_date=date(2026, 12, 20),
        kpis=kpis,
        # 7 earlier weeks, then this week's row: the θ the KPI row copies.
        history=(
            *(
                (date(2026, 9, 28) + timedelta(weeks=i), 0.1 + 0.05 * i, 0.3 - 0.01 * i)
                for i in range(7)
            ),
            (date(2026, 11, 16), KPIS["theta"], KPIS["se"]),
        ),
        growth=KPIS["I_t"],
        topics=(
            TopicStats("1", "대수", "Algebra", 20, 17, 31.5, 60, 48, 1.1, 0.3),
            TopicStats(
                "2", "방정식과 부등식", "Equations and inequalities", 15, 9, 22.0, 40, 22, 0.2, 0.35
            ),
            TopicStats(
                "3", "확률과 통계", "Probability and statistics", 25, 16, 41.0, 55, 33, 0.6, 0.3
            ),
            TopicStats("4", "미적분", "Calculus", 0, 0, 0.0, 12, 4, -0.4, 0.5),
        ),
        active_days=3,
    )


def seed_week(url: str, n_users: int = 6, week: date = WEEK, *, topic_ability: bool = True) -> None:
    """Users 1..n (org 1) + user 100 (org 2), answers in ``week`` for users 1..n-1 (user n
    only the week before), item parameters, 3 weeks of weekly θ, KPI rows for 1..n-2, and
    (``topic_ability``) the week's stored topic θ, as the Monday batch leaves them.

    The ids are text, written as the digits of those numbers (``"1"``, ``"100"``; items
    ``"100"``, ``"101"``, ``"200"``), as :func:`factories.seed_reference` writes them: they
    sort as text (``"1" < "100" < "2"``) on both backends."""
    seed_reference(url, n_users)
    engine = make_engine(url)
    with transaction(engine) as conn:
        conn.execute(s.organizations.insert(), [{"org_id": "2", "name": "부산 새봄학원"}])
        conn.execute(
            s.users.insert(),
            [
                {
                    "user_id": "100",
                    "org_id": "2",
                    "display_name": "박지우",
                    "goal_theta": None,
                    "goal_date": None,
                    "created_at": datetime(2026, 1, 1),
                }
            ],
        )
        conn.execute(
            s.users.update().where(s.users.c.user_id == "1").values(display_name=KOREAN_NAME)
        )
        conn.execute(
            s.mirt_item_params.insert(),
            [
                {
                    "week_start": week,
                    "model": "2PL",
                    "item_id": str(i),
                    "version": f"2PL@{week}",
                    "fitted_at": datetime(2026, 3, 9, 3, 10),
                    # a JSON object, as the calibration stores it
                    "params": {"a": 1.2, "b": b, "c": 0.0, "d": -1.2 * b, "flagged": False},
                }
                for i, b in ((100, -0.5), (101, 0.3), (200, 0.8))
            ],
        )
        conn.execute(
            s.mirt_ability.insert(),
            [
                {
                    "user_id": str(u),
                    "week_start": week - timedelta(weeks=k),
                    "theta": 0.1 * u - 0.1 * k,
                    "se": 0.3,
                    "model": "2PL",
                    "version": "v",
                    "source": "weekly",
                    "n_responses": 20,
                    "fitted_at": datetime(2026, 3, 9, 3, 10),
                }
                for u in [*range(1, n_users + 1), 100]
                for k in range(3)
            ],
        )
        conn.execute(
            s.weekly_kpi.insert(),
            [
                {
                    "week_start": week,
                    "user_id": str(u),
                    "kpis": {**KPIS, "theta": 0.1 * u},
                    "updated_at": datetime(2026, 3, 9, 2, 10),
                }
                for u in range(1, n_users - 1)
            ],
        )
    engine.dispose()
    rows = []
    next_id = 1
    for u in [*range(1, n_users), 100]:
        for d in range(3):
            for j, (item, topic) in enumerate(((100, 1), (101, 1), (200, 2)) * 2):
                rows.append(
                    {
                        "id": next_id,
                        "user_id": str(u),
                        "item_id": str(item),
                        "topic_id": str(topic),
                        "session_id": str(u * 10 + d),
                        "is_correct": (j + u + d) % 3 != 0,
                        "response_time_ms": 30_000 + 1000 * j,
                        "attempted_at": datetime.combine(week + timedelta(days=d), time(9, j)),
                    }
                )
                next_id += 1
    # Student n practised only the week before: not active in WEEK.
    rows.append(
        {
            "id": next_id,
            "user_id": str(n_users),
            "item_id": "100",
            "topic_id": "1",
            "session_id": "999",
            "attempted_at": datetime.combine(week - timedelta(days=5), time(9)),
        }
    )
    insert_attempts(url, attempts_frame(rows))
    if topic_ability:
        engine = make_engine(url)
        materialize_week(engine, week, now=datetime.combine(week + timedelta(days=7), time(3, 20)))
        engine.dispose()


# --------------------------------------------------------------------------- S3 fault proxy
#: What a rule returns to make the proxy hold the request without ever answering.
HANG = -1
Rule = Callable[[str, str], int | None]


class FaultProxy:
    """An HTTP proxy on 127.0.0.1 in front of an S3 endpoint that can answer with errors.

    ``rule(method, path)`` returns an HTTP status to answer instead of forwarding (e.g. 500 or
    503), :data:`HANG` to read the request and then say nothing (until the client gives up
    or the proxy closes), or None to forward. ``hits`` counts requests per (method, path),
    ``hung`` the requests held.
    """

    def __init__(self, upstream: str, rule: Rule | None = None) -> None:
        host, port = upstream.replace("http://", "").rstrip("/").split(":")
        self.upstream = (host, int(port))
        self.rule: Rule = rule or (lambda method, path: None)
        self.hits: dict[tuple[str, str], int] = {}
        #: headers of the last request per (method, path), lower-case names
        self.headers: dict[tuple[str, str], dict[str, str]] = {}
        self.hung = 0
        self._lock = threading.Lock()
        self._closing = threading.Event()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    raw = b""
                    while True:
                        line = self.rfile.readline()
                        raw += line
                        size = int(line.split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            while True:  # trailers up to the blank line
                                t = self.rfile.readline()
                                raw += t
                                if t in (b"\r\n", b"\n", b""):
                                    return raw
                        raw += self.rfile.read(size + 2)
                n = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(n) if n else b""

            def _handle(self) -> None:
                body = self._body()
                path = self.path.split("?")[0]
                with proxy._lock:
                    key = (self.command, path)
                    proxy.hits[key] = proxy.hits.get(key, 0) + 1
                    proxy.headers[key] = {k.lower(): v for k, v in self.headers.items()}
                status = proxy.rule(self.command, path)
                if status == HANG:
                    with proxy._lock:
                        proxy.hung += 1
                    # Say nothing until the client hangs up (its read timeout) or we close.
                    self.connection.settimeout(0.2)
                    while not proxy._closing.is_set():
                        try:
                            if not self.connection.recv(1):
                                break  # the client closed the connection
                        except TimeoutError:
                            continue
                        except OSError:
                            break
                    self.close_connection = True
                    return
                if status is not None:
                    msg = (
                        b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>'
                        + (b"SlowDown" if status == 503 else b"InternalError")
                        + b"</Code><Message>injected</Message></Error>"
                    )
                    self.send_response(status)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(msg)))
                    self.end_headers()
                    self.wfile.write(msg)
                    return
                conn = http.client.HTTPConnection(*proxy.upstream, timeout=30)
                headers = {k: v for k, v in self.headers.items()}
                conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                for k, v in headers.items():
                    conn.putheader(k, v)
                conn.endheaders(body if body else None)
                resp = conn.getresponse()
                data = resp.read()
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "content-length", "connection"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                conn.close()

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FaultProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._closing.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


class HungEndpoint:
    """A TCP listener on 127.0.0.1 that accepts every connection and then never reads or
    writes a byte: a store that is "up" at the TCP level and answers nothing.

    ``accepted`` counts the connections taken; all are held open until the endpoint closes.
    """

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.sock.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.held: list[socket.socket] = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.held.append(conn)  # held, never read from, never written to

    @property
    def accepted(self) -> int:
        return len(self.held)

    def __enter__(self) -> HungEndpoint:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self.thread.join(timeout=5)
        for conn in self.held:
            conn.close()
        self.sock.close()


def kpi_json(kpis: dict) -> str:
    return json.dumps(kpis, ensure_ascii=False)
