"""Signed links: pure tests of auxeng.messaging.tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest

from auxeng.messaging import tokens
from auxeng.messaging.tokens import Claims, MissingSecretKey, TokenError, sign, verify

KEY = b"0123456789abcdef-test-key"
NOW = datetime(2026, 11, 27, 10, 30, tzinfo=UTC)
LATER = NOW + timedelta(days=21)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _signed(payload: bytes, key: bytes = KEY) -> str:
    part = _b64(payload)
    return f"{part}.{_b64(hmac.new(key, part.encode(), hashlib.sha256).digest())}"


def _reason(token: str, purpose: str = "survey", *, key: bytes = KEY, now: datetime = NOW) -> str:
    with pytest.raises(TokenError) as caught:
        verify(token, purpose, key=key, now=now)
    assert str(caught.value)  # a human message
    return caught.value.reason


def test_round_trip():
    token = sign("survey", "42", LATER, key=KEY)
    assert verify(token, "survey", key=KEY, now=NOW) == Claims(
        purpose="survey", subject="42", expires_at=LATER.replace(microsecond=0)
    )


def test_tokens_are_compact_and_url_safe():
    token = sign("optout", "someone.with.a.long.name@example.com", LATER, key=KEY)
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")
    assert len(token) < 200
    payload = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert payload == {
        "p": "optout",
        "s": "someone.with.a.long.name@example.com",
        "e": int(LATER.timestamp()),
    }


@pytest.mark.parametrize("index", [0, 5, 17, -30])
def test_a_changed_payload_character_is_refused(index):
    token = sign("survey", "42", LATER, key=KEY)
    payload, signature = token.split(".")
    position = index % len(payload)
    changed = payload[:position] + ("A" if payload[position] != "A" else "B") + payload[position + 1 :]
    assert _reason(f"{changed}.{signature}") in {"bad_signature", "malformed"}


def test_a_forged_payload_with_the_old_signature_is_refused():
    token = sign("survey", "42", LATER, key=KEY)
    signature = token.split(".")[1]
    forged = _b64(json.dumps({"p": "survey", "s": "43", "e": int(LATER.timestamp())}).encode())
    assert _reason(f"{forged}.{signature}") == "bad_signature"


@pytest.mark.parametrize("index", [0, 10, 20, 41])
def test_a_changed_signature_character_is_refused(index):
    token = sign("survey", "42", LATER, key=KEY)
    payload, signature = token.split(".")
    changed = signature[:index] + ("A" if signature[index] != "A" else "B") + signature[index + 1 :]
    assert _reason(f"{payload}.{changed}") in {"bad_signature", "malformed"}


def test_a_non_canonical_encoding_of_the_same_bytes_is_refused():
    token = sign("survey", "42", LATER, key=KEY)
    payload, signature = token.split(".")
    # The last character of a 43-character base64 string carries 2 unused bits: a different
    # character can decode to the same bytes. Only the canonical spelling is accepted.
    last = signature[-1]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    twin = alphabet[alphabet.index(last) ^ 1]
    assert base64.urlsafe_b64decode(signature[:-1] + twin + "=") == base64.urlsafe_b64decode(signature + "=")
    assert _reason(f"{payload}.{signature[:-1]}{twin}") == "malformed"


def test_expired():
    token = sign("survey", "42", NOW - timedelta(seconds=1), key=KEY)
    assert _reason(token) == "expired"
    assert _reason(sign("survey", "42", NOW, key=KEY)) == "expired"  # the expiry moment itself
    assert verify(token, "survey", key=KEY, now=NOW - timedelta(seconds=2)).subject == "42"


def test_wrong_purpose():
    assert _reason(sign("optout", "42", LATER, key=KEY), "survey") == "wrong_purpose"
    assert _reason(sign("survey", "a@b.c", LATER, key=KEY), "optout") == "wrong_purpose"


def test_wrong_key():
    token = sign("survey", "42", LATER, key=b"another-key-0123456789")
    assert _reason(token) == "bad_signature"


@pytest.mark.parametrize(
    "token",
    [
        "",
        "abc",
        "a.b.c",
        ".",
        "abc.",
        ".abc",
        "ab$c.defg",
        "abcde.fghij",  # length 5: not base64
        "x" * 300 + "." + "y" * 300,
    ],
)
def test_malformed(token):
    assert _reason(token) == "malformed"


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b"[1, 2]",
        b'{"p": "survey", "s": 42, "e": 1900000000}',
        b'{"p": "survey", "s": "42", "e": "soon"}',
        b'{"p": "survey", "s": "42", "e": true}',
        b'{"p": "survey", "s": "42"}',
        b'{"p": "survey", "s": "42", "e": 99999999999999999999}',
        b"\xff\xfe",
    ],
)
def test_a_correctly_signed_but_invalid_payload_is_malformed(payload):
    assert _reason(_signed(payload)) == "malformed"


def test_over_512_characters_is_malformed_even_if_signed():
    token = _signed(json.dumps({"p": "survey", "s": "x" * 400, "e": int(LATER.timestamp())}).encode())
    assert len(token) > 512
    assert _reason(token) == "malformed"
    with pytest.raises(ValueError, match="longer than 512"):
        sign("survey", "x" * 400, LATER, key=KEY)


def test_the_signature_is_compared_in_constant_time(monkeypatch):
    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(tokens.hmac, "compare_digest", spy)
    verify(sign("survey", "42", LATER, key=KEY), "survey", key=KEY, now=NOW)
    with pytest.raises(TokenError):
        verify(sign("survey", "42", LATER, key=b"other-key-0123456789"), "survey", key=KEY, now=NOW)
    assert len(calls) == 2
    assert all(isinstance(a, bytes) and isinstance(b, bytes) for a, b in calls)


def test_a_naive_expiry_is_refused():
    with pytest.raises(ValueError, match="time-zone aware"):
        sign("survey", "42", datetime(2026, 12, 1), key=KEY)


def test_survey_url():
    url = tokens.survey_url(42, LATER, public_url="https://airflow.example.com/auxeng/", key=KEY)
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc) == ("https", "airflow.example.com")
    assert parts.path.startswith("/auxeng/survey/")
    assert parts.query == ""
    claims = verify(parts.path.rsplit("/", 1)[1], "survey", key=KEY, now=NOW)
    assert claims.subject == "42"
    scored = tokens.survey_url(42, LATER, score=7, public_url="https://airflow.example.com/auxeng", key=KEY)
    assert scored == f"{url}?score=7"


def test_optout_url():
    url = tokens.optout_url(
        " Bea.Zhang@Example.COM ", public_url="http://localhost:8080/auxeng", key=KEY, now=NOW
    )
    assert url.startswith("http://localhost:8080/auxeng/optout/")
    claims = verify(url.rsplit("/", 1)[1], "optout", key=KEY, now=NOW + timedelta(days=364))
    assert claims.subject == "bea.zhang@example.com"
    assert claims.expires_at == NOW + timedelta(days=365)


def test_response_ref():
    ref = tokens.response_ref(42, key=KEY)
    assert len(ref) == 64
    assert int(ref, 16) >= 0
    assert ref == hmac.new(KEY, b"response:42", hashlib.sha256).hexdigest()
    assert ref != tokens.response_ref(43, key=KEY)
    assert ref != tokens.response_ref(42, key=b"another-key-0123456789")


def test_secret_key_from_the_environment(monkeypatch):
    monkeypatch.setenv("AUXENG_SECRET_KEY", "k" * 16)
    assert tokens.secret_key() == b"k" * 16


def test_secret_key_from_an_airflow_variable(monkeypatch):
    monkeypatch.delenv("AUXENG_SECRET_KEY", raising=False)
    monkeypatch.setenv("AIRFLOW_VAR_AUXENG_SECRET_KEY", "variable-key-0123456789")
    assert tokens.secret_key() == b"variable-key-0123456789"


def test_a_short_secret_key_is_refused(monkeypatch):
    monkeypatch.setenv("AUXENG_SECRET_KEY", "short")
    with pytest.raises(MissingSecretKey, match="too short"):
        tokens.secret_key()


def test_no_secret_key_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("AUXENG_SECRET_KEY", raising=False)
    monkeypatch.delenv("AIRFLOW_VAR_AUXENG_SECRET_KEY", raising=False)
    monkeypatch.setattr(tokens, "_variable_key", lambda: None)
    with pytest.raises(MissingSecretKey, match="AUXENG_SECRET_KEY") as caught:
        tokens.secret_key()
    assert "auxeng_secret_key" in str(caught.value)
    assert "make run" in str(caught.value)


def test_no_secret_key_anywhere_in_airflow_either(monkeypatch):
    """The real lookup (SDK, then the metadata DB of the test home): never a built-in fallback."""
    monkeypatch.delenv("AUXENG_SECRET_KEY", raising=False)
    monkeypatch.delenv("AIRFLOW_VAR_AUXENG_SECRET_KEY", raising=False)
    with pytest.raises(MissingSecretKey):
        tokens.secret_key()
