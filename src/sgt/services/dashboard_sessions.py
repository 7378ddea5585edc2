"""Dashboard sign-in: a signed, expiring session token instead of the secret key in every request.

The token is `secret_id.expires.key_fingerprint.mac`, signed with a key derived from the system
key, so every API process of a deployment accepts it without shared memory, and rotating a user's
secret key (or expiring the user) ends their sessions. Nothing HTTP here: cookies are the api's.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime

from sgt.errors import AuthFailed
from sgt.services.context import ServiceContext
from sgt.services.users import CurrentUser, authenticate
from sgt.storage import users as user_store

SESSION_SECONDS = 8 * 3600
_SIGNING_PURPOSE = b"sgt dashboard session v1"
_CSRF_PURPOSE = b"csrf"


def sign_in(ctx: ServiceContext, secret_id: object, secret_key: object, *, now: float) -> str:
    """A session token for these credentials, valid SESSION_SECONDS; raises AuthFailed."""
    user = authenticate(ctx, secret_id, secret_key)
    with ctx.db.quick_read() as reader:
        stored = user_store.find_key(reader, user.secret_id)
    if stored is None:  # deleted between the two reads
        raise AuthFailed("secret_id or secret_key is wrong")
    fingerprint = _key_fingerprint(stored.key_hash, stored.key_salt)
    payload = ".".join((_encode(user.secret_id), str(int(now) + SESSION_SECONDS), fingerprint))
    return f"{payload}.{_mac(ctx, payload.encode())}"


def resume_session(ctx: ServiceContext, token: str | None, *, now: float) -> CurrentUser:
    """The user a token was issued to; raises AuthFailed when it is forged, expired or revoked."""
    parts = (token or "").split(".")
    # Signed tokens are ASCII; compare_digest refuses to compare anything else.
    if len(parts) != 4 or not (token or "").isascii():
        raise AuthFailed("not signed in")
    encoded_id, expires, fingerprint, mac = parts
    payload = ".".join(parts[:3]).encode()
    if not hmac.compare_digest(mac, _mac(ctx, payload)):
        raise AuthFailed("not signed in")
    if not expires.isdigit() or int(expires) <= now:
        raise AuthFailed("the session expired; sign in again")
    secret_id = _decode(encoded_id)
    with ctx.db.quick_read() as reader:
        stored = user_store.find_key(reader, secret_id)
    if stored is None:
        raise AuthFailed("not signed in")
    # A new secret key ends the sessions opened with the old one.
    if not hmac.compare_digest(fingerprint, _key_fingerprint(stored.key_hash, stored.key_salt)):
        raise AuthFailed("the key changed; sign in again")
    end_time = stored.end_time
    if end_time is not None and end_time <= datetime.fromtimestamp(now, UTC).replace(tzinfo=None):
        raise AuthFailed("the key expired")
    return CurrentUser(id=stored.user_id, secret_id=secret_id)


def csrf_token(ctx: ServiceContext, token: str) -> str:
    """The anti-forgery value that state-changing dashboard requests carry with this session."""
    return _mac(ctx, _CSRF_PURPOSE + b"\0" + token.encode())


def is_csrf_token_valid(ctx: ServiceContext, token: str, candidate: object) -> bool:
    return (
        isinstance(candidate, str)
        and candidate.isascii()  # compare_digest refuses to compare anything else
        and hmac.compare_digest(candidate, csrf_token(ctx, token))
    )


def _signing_key(ctx: ServiceContext) -> bytes:
    return hmac.new(ctx.system_key.encode(), _SIGNING_PURPOSE, hashlib.sha256).digest()


def _mac(ctx: ServiceContext, payload: bytes) -> str:
    digest = hmac.new(_signing_key(ctx), payload, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _key_fingerprint(key_hash: bytes, key_salt: bytes) -> str:
    # Not secret on its own (it is a hash of a hash), and signed with the rest of the token.
    return hashlib.sha256(key_salt + key_hash).hexdigest()[:32]


def _encode(secret_id: str) -> str:
    return base64.urlsafe_b64encode(secret_id.encode()).rstrip(b"=").decode()


def _decode(encoded: str) -> str:
    try:
        return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except ValueError:
        raise AuthFailed("not signed in") from None
