"""Signed links: the only credential a survey answer or an opt-out needs.

A token is ``base64url(payload) + "." + base64url(HMAC-SHA256(key, payload part))``
where the payload is the compact JSON ``{"p": purpose, "s": subject, "e": unix expiry}``.
The signature is checked (in constant time) before the payload is parsed, both parts
must be canonical base64url (no padding, no alternative spellings), and the purpose
is part of what is signed, so a survey link can never be used as an opt-out link.

The key is ``AUXENG_SECRET_KEY`` or the Airflow Variable ``auxeng_secret_key``,
read when needed (never at import). Changing it invalidates every link sent.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

log = logging.getLogger(__name__)

SECRET_KEY_ENV = "AUXENG_SECRET_KEY"  # noqa: S105 (a name, not a secret)
SECRET_KEY_VARIABLE = "auxeng_secret_key"  # noqa: S105 (a name, not a secret)
MIN_KEY_LENGTH = 16
MAX_TOKEN_LENGTH = 512
OPTOUT_LINK_DAYS = 365

SURVEY = "survey"
OPTOUT = "optout"
DIGEST_OPTOUT = "digest_optout"
FLAG_ACK = "flag_ack"
FLAG_ACK_LINK_DAYS = 60

_B64URL = re.compile(r"[A-Za-z0-9_-]+")
_REASONS = {
    "malformed": "this link is not valid (it is incomplete or damaged)",
    "bad_signature": "this link is not valid (it was not issued by us or was altered)",
    "expired": "this link expired",
    "wrong_purpose": "this link is not valid here",
}


class TokenError(ValueError):
    """A token that cannot be used; ``reason`` is one of malformed, bad_signature, expired, wrong_purpose."""

    def __init__(self, reason: str, message: str | None = None) -> None:
        if reason not in _REASONS:
            raise ValueError(f"unknown token error reason {reason!r}")
        self.reason = reason
        super().__init__(message or _REASONS[reason])


class MissingSecretKey(RuntimeError):
    """No usable signing key is configured."""


@dataclass(frozen=True)
class Claims:
    """What a valid token says."""

    purpose: str
    subject: str
    expires_at: datetime


def secret_key() -> bytes:
    """The signing key: ``AUXENG_SECRET_KEY``, else the Airflow Variable ``auxeng_secret_key``.

    Raises :class:`MissingSecretKey` when neither is set or the key is shorter than 16 characters.
    """
    value = os.environ.get(SECRET_KEY_ENV)
    origin = f"the environment variable {SECRET_KEY_ENV}"
    if not value:
        value = _variable_key()
        origin = f"the Airflow Variable {SECRET_KEY_VARIABLE}"
    if not value:
        raise MissingSecretKey(
            f"No secret key for signed survey and opt-out links: set {SECRET_KEY_ENV} or the Airflow "
            f"Variable {SECRET_KEY_VARIABLE} to a random string of at least {MIN_KEY_LENGTH} characters "
            '(e.g. python -c "import secrets; print(secrets.token_urlsafe(32))"). '
            "`make run` and `make demo` generate a development key."
        )
    if len(value) < MIN_KEY_LENGTH:
        raise MissingSecretKey(
            f"The secret key in {origin} is too short ({len(value)} characters): "
            f"use a random string of at least {MIN_KEY_LENGTH} characters."
        )
    return value.encode("utf-8")


def _variable_key() -> str | None:
    """The Airflow Variable, via the Task SDK, then (api-server, CLI) the metadata DB."""
    try:
        from airflow.sdk import Variable

        value = Variable.get(SECRET_KEY_VARIABLE, default=None)
        if value:
            return str(value)
    except Exception:  # the SDK path only works in some processes; the fallback below covers the rest
        log.debug("airflow.sdk.Variable.get(%r) failed; trying airflow.models", SECRET_KEY_VARIABLE)
    try:
        # Outside a task the SDK does not read the metadata DB (e.g. `uvicorn auxeng.web:app`,
        # the CLI); the core model does.
        from airflow.models import Variable as ModelVariable

        value = ModelVariable.get(SECRET_KEY_VARIABLE, default_var=None)  # noqa: AIR311
    except Exception as exc:
        raise MissingSecretKey(
            f"{SECRET_KEY_ENV} is not set and the Airflow Variable {SECRET_KEY_VARIABLE} could not be "
            f"read ({type(exc).__name__}: {exc}); set {SECRET_KEY_ENV}."
        ) from exc
    return str(value) if value else None


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    """Strict, canonical base64url without padding (so each token has exactly one spelling)."""
    if not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise TokenError("malformed")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise TokenError("malformed") from exc
    if _b64encode(data) != text:
        raise TokenError("malformed")
    return data


def _mac(key: bytes, payload_part: str) -> bytes:
    return hmac.new(key, payload_part.encode("ascii"), hashlib.sha256).digest()


def sign(purpose: str, subject: str, expires_at: datetime, *, key: bytes) -> str:
    """A URL-safe token saying ``subject`` may be used for ``purpose`` until ``expires_at``."""
    if expires_at.tzinfo is None:
        raise ValueError("expires_at must be time-zone aware")
    if not key:
        raise MissingSecretKey("an empty key cannot sign links")
    payload = json.dumps(
        {"p": purpose, "s": subject, "e": int(expires_at.timestamp())},
        separators=(",", ":"),
        ensure_ascii=True,
    )
    payload_part = _b64encode(payload.encode("ascii"))
    token = f"{payload_part}.{_b64encode(_mac(key, payload_part))}"
    if len(token) > MAX_TOKEN_LENGTH:
        raise ValueError(f"token for subject {subject!r} would be longer than {MAX_TOKEN_LENGTH} characters")
    return token


def verify(token: str, purpose: str, *, key: bytes, now: datetime) -> Claims:
    """The claims of a valid token for ``purpose``; :class:`TokenError` for anything wrong."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH or token.count(".") != 1:
        raise TokenError("malformed")
    payload_part, signature_part = token.split(".")
    signature = _b64decode(signature_part)
    payload_bytes = _b64decode(payload_part)
    if not hmac.compare_digest(_mac(key, payload_part), signature):
        raise TokenError("bad_signature")
    try:
        payload = json.loads(payload_bytes)
    except (UnicodeDecodeError, ValueError) as exc:
        raise TokenError("malformed") from exc
    if not isinstance(payload, dict):
        raise TokenError("malformed")
    token_purpose, subject, expiry = payload.get("p"), payload.get("s"), payload.get("e")
    if (
        not isinstance(token_purpose, str)
        or not isinstance(subject, str)
        or not isinstance(expiry, int)
        or isinstance(expiry, bool)
    ):
        raise TokenError("malformed")
    try:
        expires_at = datetime.fromtimestamp(expiry, tz=UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise TokenError("malformed") from exc
    if token_purpose != purpose:
        raise TokenError("wrong_purpose")
    if now >= expires_at:
        raise TokenError("expired", f"this link expired on {expires_at:%Y-%m-%d}")
    return Claims(purpose=token_purpose, subject=subject, expires_at=expires_at)


def survey_url(
    invitation_id: int,
    expires_at: datetime,
    *,
    score: int | None = None,
    public_url: str,
    key: bytes,
) -> str:
    """The link to answer invitation ``invitation_id`` (``score`` preselects an NPS answer; a GET never saves).

    ``public_url`` is the web app's base URL as browsers reach it, mount point included
    (``AUXENG_PUBLIC_URL``, e.g. ``https://airflow.example.com/auxeng``).
    """
    token = sign(SURVEY, str(invitation_id), expires_at, key=key)
    url = f"{public_url.rstrip('/')}/survey/{token}"
    return url if score is None else f"{url}?score={int(score)}"


def optout_url(email: str, *, public_url: str, key: bytes, now: datetime, digest: bool = False) -> str:
    """The link (valid a year) with which ``email`` stops all messages from the pack (``public_url`` as above).

    With ``digest`` it stops only the weekly NPS digest (purpose :data:`DIGEST_OPTOUT`,
    ``{public_url}/digest/optout/{token}``); neither link works on the other's page.
    """
    purpose, path = (DIGEST_OPTOUT, "digest/optout") if digest else (OPTOUT, "optout")
    token = sign(purpose, email.strip().lower(), now + timedelta(days=OPTOUT_LINK_DAYS), key=key)
    return f"{public_url.rstrip('/')}/{path}/{token}"


def digest_optout_url(email: str, *, public_url: str, key: bytes, now: datetime) -> str:
    """The link (valid a year) with which ``email`` stops only the weekly NPS digest."""
    return optout_url(email, public_url=public_url, key=key, now=now, digest=True)


def flag_ack_url(flag_id: int, email: str, *, public_url: str, key: bytes, now: datetime) -> str:
    """The link (valid 60 days) with which ``email`` acknowledges red flag ``flag_id``
    (``{public_url}/flags/ack/{token}``; the subject is ``<flag id>:<email>``)."""
    subject = f"{int(flag_id)}:{email.strip().lower()}"
    token = sign(FLAG_ACK, subject, now + timedelta(days=FLAG_ACK_LINK_DAYS), key=key)
    return f"{public_url.rstrip('/')}/flags/ack/{token}"


def flag_ack_claims(subject: str) -> tuple[int, str]:
    """``(flag id, email)`` of a verified :data:`FLAG_ACK` token's subject; TokenError if malformed."""
    flag_id, _, email = subject.partition(":")
    if not flag_id.isdigit() or "@" not in email:
        raise TokenError("malformed")
    return int(flag_id), email


def response_ref(invitation_id: int, *, key: bytes) -> str:
    """The key a response to ``invitation_id`` is stored under (hex HMAC; 64 characters).

    Anonymous responses store only this, so the link finds them again while the
    stored row does not say who answered (without the secret key).
    """
    return hmac.new(key, f"response:{invitation_id}".encode("ascii"), hashlib.sha256).hexdigest()
