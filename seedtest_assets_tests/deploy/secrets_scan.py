"""A small scanner for credentials written into deployment files (test helper).

Two passes over every text file:

- text patterns with few false positives: AWS access key ids, private key blocks, URLs with an
  inline password, ``--from-literal=KEY=value`` and ``--password=value`` style arguments, and
  ``KEY=value`` assignments of secret-named variables;
- for YAML files, a structural pass: a key that names a secret *value* (password, secret key,
  token, ``DATABASE_URL``...) must be empty, and no ``kind: Secret`` may carry ``data`` or
  ``stringData``.

Placeholders are allowed where a value would go: ``<...>``, shell expansions (``$VAR``,
``${VAR}``, ``"$(command)"``), ``...`` and ``***``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

PLACEHOLDER = re.compile(r"""^["']?(<[^>]*>|\$.+|\.\.\.|\*+)["']?$""")

#: Names of variables/keys whose value is a secret (compared without case, "-" or "_").
SECRET_VALUE_KEYS = {
    "password",
    "passwd",
    "postgresqlpassword",
    "pgpassword",
    "dagsterpgpassword",
    "secret",
    "secretaccesskey",
    "awssecretaccesskey",
    "awsaccesskeyid",
    "awssessiontoken",
    "clientsecret",
    "oauth2proxyclientsecret",
    "cookiesecret",
    "oauth2proxycookiesecret",
    "token",
    "apikey",
    "databaseurl",
}

TEXT_PATTERNS: dict[str, re.Pattern[str]] = {
    "AWS access key id": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "URL with a password": re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s/:@]+:(?P<value>[^\s/@]+)@"),
    "literal in kubectl --from-literal": re.compile(
        r"--from-literal[= ](?P<key>[A-Za-z0-9_.-]+)=(?P<value>\S+)"
    ),
    "secret command-line argument": re.compile(
        r"--(?P<key>password|client-secret|cookie-secret|secret-access-key|token)[= ](?P<value>\S+)"
    ),
    "secret assignment": re.compile(
        r"\b(?P<key>[A-Za-z_]*(?:PASSWORD|SECRET|TOKEN|SECRET_ACCESS_KEY|ACCESS_KEY_ID|DATABASE_URL))"
        r"\s*=\s*(?P<value>[^\s;&|]+)"
    ),
}


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.what}"


def _norm(key: str) -> str:
    return re.sub(r"[-_]", "", key).lower()


def is_placeholder(value: str) -> bool:
    value = value.strip().rstrip(",")
    return value in ("", '""', "''") or bool(PLACEHOLDER.match(value))


def scan_text(text: str, path: str = "<text>") -> list[Finding]:
    """Text-pattern findings in ``text``."""
    findings = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        for what, pattern in TEXT_PATTERNS.items():
            for match in pattern.finditer(line):
                value = match.groupdict().get("value")
                if value is not None and is_placeholder(value):
                    continue
                findings.append(Finding(path, lineno, what))
    return findings


def _walk(node: Any, path: str, trail: str, findings: list[Finding]) -> None:
    if isinstance(node, dict):
        if node.get("kind") == "Secret" and (node.get("data") or node.get("stringData")):
            findings.append(Finding(path, 0, f"Secret with data at {trail or '/'}"))
        for key, value in node.items():
            here = f"{trail}/{key}"
            if isinstance(key, str) and _norm(key) in SECRET_VALUE_KEYS:
                if isinstance(value, (dict, list)):
                    pass  # a reference (e.g. {env: VAR}, valueFrom): walked below
                elif value is not None and not is_placeholder(str(value)):
                    findings.append(Finding(path, 0, f"secret value at {here}"))
            # Kubernetes env lists: {name: SECRET_NAME, value: literal}.
            if (
                key == "value"
                and _norm(str(node.get("name", ""))) in SECRET_VALUE_KEYS
                and value is not None
                and not is_placeholder(str(value))
            ):
                findings.append(Finding(path, 0, f"secret env value at {here}"))
            _walk(value, path, here, findings)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            _walk(item, path, f"{trail}[{i}]", findings)


def scan_yaml(text: str, path: str = "<yaml>") -> list[Finding]:
    """Structural findings in every document of a YAML text."""
    findings: list[Finding] = []
    for doc in yaml.safe_load_all(text):
        _walk(doc, path, "", findings)
    return findings


def scan_paths(paths: list[Path], root: Path) -> list[Finding]:
    """Both passes over ``paths`` (YAML files also structurally)."""
    findings = []
    for p in paths:
        text = p.read_text(encoding="utf-8")
        rel = str(p.relative_to(root))
        findings += scan_text(text, rel)
        if p.suffix in (".yaml", ".yml"):
            findings += scan_yaml(text, rel)
    return findings
