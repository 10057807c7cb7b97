"""Token verification against a JWKS served over HTTP on loopback, with real keys."""

import base64
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from seedtest_assets.api.auth import AuthError, Principal, TokenVerifier, bearer_token
from seedtest_assets_tests.api_servers import AUDIENCE, ISSUER, JwksServer, SigningKey


@pytest.fixture(scope="module")
def keys():
    return {"rsa": SigningKey.rsa("rsa-1"), "ec": SigningKey.ec("ec-1")}


@pytest.fixture
def jwks(keys):
    server = JwksServer([keys["rsa"], keys["ec"]])
    yield server
    server.close()


@pytest.fixture
def verifier(jwks):
    return TokenVerifier(jwks.url, AUDIENCE, ISSUER, leeway_seconds=0, min_refresh_seconds=0)


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def refused(verifier, token: str) -> AuthError:
    with pytest.raises(AuthError) as info:
        verifier.verify(token)
    assert info.value.status == 401
    return info.value


@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_rs256_and_es256_tokens_verify(verifier, keys, kind):
    p = verifier.verify(keys[kind].token(sub="test-user-123", scope="exam:write profile"))
    assert p == Principal(sub="test-user-123", scopes=frozenset({"exam:write", "profile"}))


def test_scopes_from_scp_scopes_and_permissions(verifier, keys):
    k = keys["rsa"]
    assert verifier.verify(k.token("u", scope=None, scp=["analysis:run"])).scopes == {
        "analysis:run"
    }
    assert verifier.verify(k.token("u", scope=None, permissions=["exam:write"])).scopes == {
        "exam:write"
    }


def test_expired_wrong_audience_wrong_issuer(verifier, keys):
    k = keys["rsa"]
    assert "expired" in refused(verifier, k.token("u", expires_in=-5)).description
    assert "audience" in refused(verifier, k.token("u", aud="other-api")).description
    assert "issuer" in refused(verifier, k.token("u", iss="https://evil/")).description


def test_required_claims(verifier, keys):
    k = keys["rsa"]
    assert "sub" in refused(verifier, k.token(None)).description
    now = int(time.time())
    no_exp = jwt.encode(
        {"sub": "u", "aud": AUDIENCE, "iss": ISSUER, "iat": now},
        k.private,
        algorithm="RS256",
        headers={"kid": k.kid},
    )
    assert "exp" in refused(verifier, no_exp).description


def test_alg_none_is_refused(verifier, keys):
    claims = {"sub": "u", "aud": AUDIENCE, "iss": ISSUER, "exp": int(time.time()) + 60}
    token = f"{_b64({'alg': 'none', 'kid': 'rsa-1'})}.{_b64(claims)}."
    assert "not accepted" in refused(verifier, token).description


def test_hs256_signed_with_the_public_key_is_refused(verifier, keys):
    """The algorithm-confusion attack: HMAC keyed with the RSA public key the JWKS publishes."""
    pem = (
        keys["rsa"]
        .private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    claims = {"sub": "u", "aud": AUDIENCE, "iss": ISSUER, "exp": int(time.time()) + 60}
    header = _b64({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"})
    import hashlib
    import hmac

    signing_input = f"{header}.{_b64(claims)}".encode()
    sig = base64.urlsafe_b64encode(hmac.new(pem, signing_input, hashlib.sha256).digest())
    token = f"{signing_input.decode()}.{sig.rstrip(b'=').decode()}"
    assert "not accepted" in refused(verifier, token).description


def test_a_key_of_another_type_under_a_known_kid_is_refused(verifier, keys):
    # An ES256 token that names the RSA key's kid.
    token = keys["ec"].token("u", kid="rsa-1")
    assert "does not match" in refused(verifier, token).description


def test_a_forged_signature_is_refused(verifier, keys):
    forger = SigningKey.rsa("rsa-1")  # same kid, another private key
    assert "signature" in refused(verifier, forger.token("u")).description


def test_unknown_kid_refetches_once_then_refuses(jwks, keys):
    v = TokenVerifier(jwks.url, AUDIENCE, ISSUER, min_refresh_seconds=3600)
    v.verify(keys["rsa"].token("u"))
    fetched = jwks.fetches
    stranger = SigningKey.rsa("stranger")
    for _ in range(5):  # five made-up kids within the refresh interval: no new fetch
        assert "not in the JWKS" in refused(v, stranger.token("u")).description
    assert jwks.fetches == fetched


def test_key_rotation_works_without_a_restart(jwks, keys):
    v = TokenVerifier(jwks.url, AUDIENCE, ISSUER, min_refresh_seconds=0)
    assert v.verify(keys["rsa"].token("u")).sub == "u"
    new = SigningKey.rsa("rsa-2")
    jwks.publish([new])  # the issuer rotates: only the new key is published
    assert v.verify(new.token("rotated")).sub == "rotated"
    assert jwks.fetches == 2


def test_an_unreachable_jwks_is_a_503_not_a_401(keys):
    v = TokenVerifier("http://127.0.0.1:9/jwks.json", AUDIENCE, ISSUER, timeout_seconds=1)
    with pytest.raises(AuthError) as info:
        v.verify(keys["rsa"].token("u"))
    assert info.value.status == 503


@pytest.mark.parametrize(
    "header", [None, "", "Basic abc", "Bearer", "Bearer  ", "bearer" + " x" * 10_000]
)
def test_bearer_header_forms(header):
    with pytest.raises(AuthError) as info:
        bearer_token(header)
    assert info.value.status == 401
    assert bearer_token("Bearer abc.def.ghi") == "abc.def.ghi"


def test_scope_rules():
    own = Principal(sub="s1", scopes=frozenset({"exam:write"}))
    own.require_student("s1")
    with pytest.raises(AuthError) as info:
        own.require_student("s2")
    assert (info.value.status, info.value.error) == (403, "insufficient_scope")
    Principal(sub="svc", scopes=frozenset({"analysis:run"})).require_student("anyone")
    with pytest.raises(AuthError) as info:
        Principal(sub="s1", scopes=frozenset({"profile"})).require_any()
    assert info.value.status == 403
