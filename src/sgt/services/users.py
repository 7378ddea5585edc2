"""Users: authenticate a request, create or rotate a key, expire, list."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sgt.domain.text import is_encodable, is_valid_identifier
from sgt.errors import AuthFailed
from sgt.services.blocking import refuse_connection_wait
from sgt.services.context import ServiceContext
from sgt.services.secrets import hash_secret_key, keys_match, new_salt
from sgt.services.throttle import CLIENT_ADDRESS
from sgt.storage import users as user_store

END_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


@dataclass(frozen=True)
class CurrentUser:
    id: int
    secret_id: str


def authenticate(
    ctx: ServiceContext, secret_id: object, secret_key: object, *, address: str | None = None
) -> CurrentUser:
    """The user these credentials belong to; raises AuthFailed when missing, wrong or expired.

    With the client's `address` (by default the request's, `CLIENT_ADDRESS`), a key not
    remembered as right is checked only when the throttle allows it (AuthThrottled, an
    AuthFailed, otherwise); a remembered right key is never throttled. Without an address (the
    command line) nothing is throttled.
    """
    address = address if address is not None else CLIENT_ADDRESS.get()
    owner, key, stored = _stored_key(ctx, secret_id, secret_key)
    if stored is not None and ctx.key_verifier.recalls(
        key, stored_hash=stored.key_hash, salt=stored.key_salt
    ):
        return _unexpired(owner, stored)
    if address is not None:
        ctx.auth_throttle.take_attempt(address=address, secret_id=owner)
    if stored is None or not ctx.key_verifier.verify(
        key, stored_hash=stored.key_hash, salt=stored.key_salt
    ):
        if stored is None:  # as long as a real check, so that unknown ids do not stand out
            ctx.key_verifier.verify(key, stored_hash=None, salt=None)
        ctx.auth_throttle.count_failure()
        raise AuthFailed("secret_id or secret_key is wrong")
    if address is not None:
        ctx.auth_throttle.give_back_attempt(address=address, secret_id=owner)
    return _unexpired(owner, stored)


def authenticate_if_remembered(
    ctx: ServiceContext, secret_id: object, secret_key: object
) -> CurrentUser | None:
    """The user, when this process verified the same key for it lately; None when only
    `authenticate` can tell (an unknown user, a key not seen yet, a rotated key).

    It costs one database read and one SHA-256, never a scrypt, so the event loop may call it.
    Raises AuthFailed for missing credentials and for a remembered key that has expired.
    """
    owner, key, stored = _stored_key(ctx, secret_id, secret_key)
    if stored is None or not ctx.key_verifier.recalls(
        key, stored_hash=stored.key_hash, salt=stored.key_salt
    ):
        return None
    return _unexpired(owner, stored)


def _stored_key(
    ctx: ServiceContext, secret_id: object, secret_key: object
) -> tuple[str, str, user_store.StoredKey | None]:
    if not isinstance(secret_id, str) or not isinstance(secret_key, str) or not secret_id:
        raise AuthFailed("secret_id and secret_key are required strings")
    # No user can hold such an id or key (docs/input_rules.md), and neither could be looked up
    # or hashed: wrong credentials, on every backend alike.
    if not is_valid_identifier(secret_id) or not is_encodable(secret_key):
        raise AuthFailed("secret_id or secret_key is wrong")
    refuse_connection_wait(ctx)
    with ctx.db.quick_read() as reader:
        stored = user_store.find_key(reader, secret_id)
    return secret_id, secret_key, stored


def _unexpired(secret_id: str, stored: user_store.StoredKey) -> CurrentUser:
    if stored.end_time is not None and stored.end_time <= _utcnow():
        raise AuthFailed(
            f"the key of '{secret_id}' expired at {stored.end_time:{END_TIME_FORMAT}} UTC"
        )
    return CurrentUser(id=stored.user_id, secret_id=secret_id)


def is_authentic(
    ctx: ServiceContext, secret_id: object, secret_key: object, *, address: str | None = None
) -> bool:
    """True when the credentials are valid now; never raises for bad credentials (a throttled
    check is False too)."""
    try:
        authenticate(ctx, secret_id, secret_key, address=address)
    except AuthFailed:
        return False
    return True


def save_user_key(
    ctx: ServiceContext,
    *,
    system_key: str,
    secret_id: str,
    secret_key: str,
    doc: str = "",
    end_time: datetime | None = None,
) -> None:
    """Create the user or replace its key, doc and end_time; the old key stops working."""
    if not is_encodable(system_key) or not keys_match(system_key, ctx.system_key):
        raise AuthFailed("key is not the system key")
    put_user(ctx, secret_id=secret_id, secret_key=secret_key, doc=doc, end_time=end_time)


def put_user(
    ctx: ServiceContext,
    *,
    secret_id: str,
    secret_key: str,
    doc: str = "",
    end_time: datetime | None = None,
) -> None:
    """Create or rotate a user without the system key (admin command line)."""
    salt = new_salt()
    key_hash = hash_secret_key(secret_key, salt)
    with ctx.db.write() as session:
        user_store.save_user(
            session,
            secret_id=secret_id,
            key_hash=key_hash,
            key_salt=salt,
            doc=doc,
            end_time=end_time,
            now=ctx.db.now(session),
        )


def rotate_user_key(ctx: ServiceContext, *, secret_id: str, secret_key: str) -> bool:
    """Replace an existing user's key (the old one stops working); False if there is no user."""
    salt = new_salt()
    key_hash = hash_secret_key(secret_key, salt)
    with ctx.db.write() as session:
        return user_store.replace_key(
            session, secret_id, key_hash=key_hash, key_salt=salt, now=ctx.db.now(session)
        )


def expire_user(ctx: ServiceContext, secret_id: str, end_time: datetime | None) -> bool:
    """Set when the user's key stops working (None: never); False if there is no such user."""
    with ctx.db.write() as session:
        return user_store.set_end_time(session, secret_id, end_time)


def list_users(ctx: ServiceContext) -> list[tuple[str, str, datetime | None]]:
    """(secret_id, doc, end_time) of every user."""
    with ctx.db.read() as session:
        return [(u.secret_id, u.doc, u.end_time) for u in user_store.list_users(session)]


def parse_end_time(value: str) -> datetime:
    """'YYYY-MM-DD HH:MM:SS' (UTC) as a naive UTC datetime; ValueError otherwise."""
    return datetime.strptime(value, END_TIME_FORMAT)


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
