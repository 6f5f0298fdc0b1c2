"""Widget identity tokens, origin patterns and key formats (pure units)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import orjson
import pytest

from switchboard_gateway.auth.identity import InvalidIdentity, sign_identity, verify_identity
from switchboard_gateway.auth.origins import normalise_pattern, origin_allowed
from switchboard_gateway.keys.secrets import KeyScope, generate_key, hash_key, looks_like_key


def test_token_round_trip_and_format() -> None:
    token = sign_identity("secret", "cust_42", ttl_seconds=60, now=1_000_000)
    version, payload, _ = token.split(".")
    assert version == "v1"
    claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims == {"sub": "cust_42", "iat": 1_000_000, "exp": 1_000_060}
    identity = verify_identity("secret", token, now=1_000_030)
    assert identity.user_id == "cust_42" and identity.expires_at == 1_000_060


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("garbage", "malformed"),
        ("v2.a.b", "malformed"),
        (sign_identity("other", "u"), "signature"),
        (sign_identity("secret", "u", ttl_seconds=60, now=time.time() - 1000), "expired"),
        ("v1.e30." + sign_identity("secret", "u").split(".")[2], "signature"),
    ],
)
def test_bad_tokens(token: str, message: str) -> None:
    with pytest.raises(InvalidIdentity, match=message):
        verify_identity("secret", token)


def test_tampered_subject_fails() -> None:
    token = sign_identity("secret", "cust_1")
    version, payload, signature = token.split(".")
    claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "cust_2"
    forged = base64.urlsafe_b64encode(orjson.dumps(claims)).rstrip(b"=").decode()
    with pytest.raises(InvalidIdentity, match="signature"):
        verify_identity("secret", f"{version}.{forged}.{signature}")


def test_origin_patterns() -> None:
    patterns = tuple(
        normalise_pattern(p) for p in ["https://Shop.example/", "http://localhost:*", "https://*.example.com"]
    )
    assert origin_allowed("https://shop.example", patterns)
    assert origin_allowed("http://localhost:8000", patterns)
    assert origin_allowed("https://help.example.com", patterns)
    assert not origin_allowed("https://example.com", patterns)
    assert not origin_allowed("http://shop.example", patterns)
    assert not origin_allowed("https://shop.example.evil.com", patterns)
    assert not origin_allowed("https://localhost:8000", patterns)
    assert not origin_allowed("null", patterns)
    with pytest.raises(ValueError):
        normalise_pattern("https://shop.example/path")


def test_keys() -> None:
    for scope, prefix in [(KeyScope.WIDGET, "pk_"), (KeyScope.SERVER, "sk_"), (KeyScope.ADMIN, "ak_")]:
        key = generate_key(scope)
        assert key.startswith(prefix) and looks_like_key(key)
        assert len(hash_key(key)) == 64
    assert generate_key(KeyScope.SERVER) != generate_key(KeyScope.SERVER)
    assert not looks_like_key("sk_short")


def test_crm_claims_travel_in_the_token() -> None:
    token = sign_identity("secret", "site-user", claims={"email": "ada@example.com", "crm_id": "C-1"})
    identity = verify_identity("secret", token)
    assert (identity.user_id, identity.email, identity.crm_id) == ("site-user", "ada@example.com", "C-1")
    plain = verify_identity("secret", sign_identity("secret", "site-user"))
    assert plain.email is None and plain.crm_id is None
    with pytest.raises(ValueError, match="unknown identity claims"):
        sign_identity("secret", "u", claims={"role": "admin"})


@pytest.mark.parametrize("claims", [{"email": "not-an-address"}, {"email": 42}, {"crm_id": ""}])
def test_malformed_crm_claims_are_refused(claims: dict[str, object]) -> None:
    payload = base64.urlsafe_b64encode(orjson.dumps({"sub": "u", "exp": int(time.time()) + 60, **claims}))
    signed_part = "v1." + payload.rstrip(b"=").decode()
    signature = base64.urlsafe_b64encode(hmac.new(b"secret", signed_part.encode(), hashlib.sha256).digest())
    with pytest.raises(InvalidIdentity, match="claim"):
        verify_identity("secret", f"{signed_part}.{signature.rstrip(b'=').decode()}")
