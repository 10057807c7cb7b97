"""The warehouse's database URL: parsed the way the driver will use it, shown without secrets.

``DATABASE_URL`` is a secret (it usually carries a password), and libpq accepts credentials in
more places than SQLAlchemy's ``hide_password`` masks. Every form is handled here:

- ``postgresql://user:PASSWORD@host/db``: the password part (masked as ``***``);
- ``postgresql://user@host/db?password=PASSWORD``: a valid libpq URI form; libpq lets the
  query parameter win over the user-info password. :func:`normalize_database_url` moves it
  into the user-info part (so even SQLAlchemy's own ``repr`` of an engine masks it) and
  :func:`redact_url` masks any credential-like query parameter (``password``,
  ``sslpassword``, ...);
- a libpq keyword string, ``host=h dbname=d user=u password=PASSWORD``: accepted (parsed by
  libpq itself, through psycopg) and converted to the equivalent URL; shown masked;
- ``PGPASSWORD``: libpq reads it from the environment; nothing here ever prints it, and
  :func:`scrub` removes it (like every other credential of the URL) from error text;
- an unencoded ``@`` in a password (``postgresql://u:p@ss@host/db``): libpq ends the user-info
  at the *first* ``@`` and takes ``ss@host`` for the host name, so the connection fails with a
  message naming that "host", i.e. the password's tail. Refused with one line saying to
  percent-encode it (``%40``), without the URL.

Errors raised here are :class:`DatabaseURLError`: one line, never the URL or any part of it,
raised ``from None`` so that no chained exception (which Dagster would store with the run)
carries the text either.
"""

from __future__ import annotations

import re

from sqlalchemy.engine import URL, make_url

#: Query parameters and libpq keywords whose values are credentials (libpq: ``password``,
#: ``sslpassword``; anything else that looks like one is masked too).
SECRET_KEY = re.compile(r"pass|pwd|secret|token|credential", re.IGNORECASE)
#: What a masked value shows.
MASK = "***"
_SENTINEL = "SEEDTESTMASKEDVALUE"
#: ``key = value`` pairs of a libpq keyword string (a value may be single-quoted, with
#: backslash escapes; an unterminated quote runs to the end).
_KEYWORD_PAIR = re.compile(r"(\w+)(\s*=\s*)('(?:[^'\\]|\\.)*'?|\S*)")
_UNPARSABLE = "<an unparsable database URL, not shown>"


class DatabaseURLError(ValueError):
    """The database URL cannot be used. ``str(exc)`` is one line without any part of it."""


def is_keyword_dsn(url: str) -> bool:
    """True for a libpq keyword string (``host=... dbname=...``) rather than a URL."""
    return "://" not in url and "=" in url


def _from_keyword_dsn(dsn: str) -> URL:
    """The ``postgresql+psycopg`` URL equivalent to a libpq keyword string (libpq parses it)."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        params = {k: str(v) for k, v in conninfo_to_dict(dsn).items()}
    except Exception:  # libpq's message may quote the string, password and all
        raise DatabaseURLError(
            "DATABASE_URL looks like a libpq keyword string (host=... dbname=...) but libpq "
            "cannot parse it (not shown: it may hold a password); check its quoting, or give a "
            "URL postgresql://user:password@host:5432/dbname"
        ) from None
    user = params.pop("user", None)
    password = params.pop("password", None)
    dbname = params.pop("dbname", None)
    host = params.get("host")
    port = params.get("port")
    # One TCP host and a numeric port fit the URL's own fields; a socket directory or a
    # host list stays a query parameter, as libpq's URI form has it.
    simple = host and "," not in host and not host.startswith("/")
    if simple and (port is None or port.isdigit()):
        params.pop("host")
        params.pop("port", None)
    else:
        host = port = None
    return URL.create(
        "postgresql+psycopg",
        username=user,
        password=password,
        host=host,
        port=int(port) if port else None,
        database=dbname,
        query=params,
    )


def parse_database_url(url: str) -> URL:
    """``url`` as SQLAlchemy will connect with it (psycopg 3 for PostgreSQL).

    Raises:
        DatabaseURLError: not a URL or keyword string, or an unencoded ``@`` in the password.
    """
    url = url.strip()
    if is_keyword_dsn(url):
        parsed = _from_keyword_dsn(url)
    else:
        if url.startswith("postgres://"):
            url = "postgresql://" + url[len("postgres://") :]
        try:
            parsed = make_url(url)
        except Exception:  # e.g. a port that is not a number: its message quotes the URL
            raise DatabaseURLError(
                "DATABASE_URL is not a valid database URL (not shown: it may hold a password); "
                "expected postgresql://user:password@host:5432/dbname or sqlite:///path"
            ) from None
    if parsed.host and "@" in parsed.host:
        raise DatabaseURLError(
            "DATABASE_URL has more than one '@' before the host: libpq ends the password at "
            "the first '@' and would take the rest of the password for the host name; "
            "percent-encode each '@' in the password as %40 (the URL is not shown: it holds a "
            "password)"
        )
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername.startswith("postgresql") and "password" in parsed.query:
        # libpq: the query parameter wins, the last one if repeated.
        value = parsed.query["password"]
        password = value[-1] if isinstance(value, tuple) else value
        parsed = parsed.difference_update_query(["password"]).set(password=password)
    return parsed


def normalize_database_url(url: str) -> str:
    """The URL to connect with: PostgreSQL pinned to psycopg 3 (``postgres://`` and
    ``postgresql://`` become ``postgresql+psycopg://``; an explicit driver is kept), a
    ``?password=`` moved into the user-info part, a libpq keyword string converted to a URL.

    Raises:
        DatabaseURLError: see :func:`parse_database_url`.
    """
    return parse_database_url(url).render_as_string(hide_password=False)


def redact_url(url: str) -> str:
    """The URL for a person to read (CLI output, logs, Dagster metadata): every credential
    masked: the password, credential-like query parameters (``?password=``, ``sslpassword``),
    the values of a keyword string's ``password=``. Never raises, never returns a secret."""
    try:
        text = url.strip()
        if is_keyword_dsn(text):
            return _KEYWORD_PAIR.sub(
                lambda m: (
                    m.group(0)
                    if not SECRET_KEY.search(m.group(1))
                    else f"{m.group(1)}{m.group(2)}{MASK}"
                ),
                text,
            )
        if text.startswith("postgres://"):
            text = "postgresql://" + text[len("postgres://") :]
        parsed = make_url(text)
        if parsed.host and "@" in parsed.host:  # the part before the last '@' is password
            parsed = parsed.set(host=parsed.host.rsplit("@", 1)[1])
            if parsed.password is None:
                parsed = parsed.set(password=MASK)
        secret_keys = [k for k in parsed.query if SECRET_KEY.search(k)]
        if secret_keys:
            parsed = parsed.update_query_dict(dict.fromkeys(secret_keys, _SENTINEL))
        shown = parsed.render_as_string(hide_password=True)
    except Exception:
        return _UNPARSABLE
    return shown.replace(_SENTINEL, MASK)


def url_secrets(url: str | None, pgpassword: str = "") -> list[str]:
    """Every credential ``url`` carries (and ``pgpassword``, libpq's ``PGPASSWORD``), to scrub
    from free text."""
    found: list[str] = [pgpassword] if pgpassword else []
    if not url:
        return found
    text = url.strip()
    if is_keyword_dsn(text):
        for m in _KEYWORD_PAIR.finditer(text):
            if SECRET_KEY.search(m.group(1)):
                value = m.group(3)
                found += [value, value.strip("'").replace("\\'", "'").replace("\\\\", "\\")]
        return [s for s in found if s]
    try:
        parsed = make_url(text)
    except Exception:
        return found
    if parsed.password:
        found.append(str(parsed.password))
    if parsed.host and "@" in parsed.host:
        found.append(parsed.host.rsplit("@", 1)[0])
    for key, value in parsed.query.items():
        if SECRET_KEY.search(key):
            found += list(value) if isinstance(value, tuple) else [value]
    # The raw (percent-encoded) spelling of each, as the URL text holds it.
    from urllib.parse import quote, quote_plus

    found += [quote(s, safe="") for s in found] + [quote_plus(s) for s in found]
    return [s for s in dict.fromkeys(found) if s]


def scrub(text: str, url: str | None = None, pgpassword: str = "") -> str:
    """``text`` with every secret of ``url`` and ``pgpassword`` replaced by ``***``.

    Pure (reads no environment); :func:`seedtest_assets.core.settings.scrub` passes
    ``PGPASSWORD``.

    A short secret (under 6 characters) is replaced only where it stands alone, so that a
    password like ``abc`` does not garble every word containing those letters.
    """
    for secret in sorted(url_secrets(url, pgpassword), key=len, reverse=True):
        if len(secret) >= 6:
            text = text.replace(secret, MASK)
        else:
            text = re.sub(rf"(?<![\w]){re.escape(secret)}(?![\w])", MASK, text)
    return text
