"""Users: find, create or replace their key, expire, list."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.orm import Session

from sgt.storage.tables import UserRow


@dataclass(frozen=True)
class StoredKey:
    """What a key check reads of a user."""

    user_id: int
    key_hash: bytes
    key_salt: bytes
    end_time: datetime | None


# Built once: every request runs it, and building a statement costs as much as running it.
_KEY_OF_USER = select(UserRow.id, UserRow.key_hash, UserRow.key_salt, UserRow.end_time).where(
    UserRow.secret_id == bindparam("secret_id")
)


def find_key(reader: Connection, secret_id: str) -> StoredKey | None:
    """The stored key of the user with that secret_id, or None."""
    row = reader.execute(_KEY_OF_USER, {"secret_id": secret_id}).one_or_none()
    return None if row is None else StoredKey(row[0], row[1], row[2], row[3])


def find_user(session: Session, secret_id: str) -> UserRow | None:
    """The user with that secret_id, or None."""
    return session.execute(
        select(UserRow).where(UserRow.secret_id == secret_id)
    ).scalar_one_or_none()


def save_user(
    session: Session,
    *,
    secret_id: str,
    key_hash: bytes,
    key_salt: bytes,
    doc: str,
    end_time: datetime | None,
    now: datetime,
) -> UserRow:
    """Create the user, or replace its key, doc and end_time (the old key stops working)."""
    user = find_user(session, secret_id)
    if user is None:
        user = UserRow(secret_id=secret_id, created_at=now)
        session.add(user)
    user.key_hash = key_hash
    user.key_salt = key_salt
    user.doc = doc
    user.end_time = end_time
    user.updated_at = now
    session.flush()
    return user


def replace_key(
    session: Session, secret_id: str, *, key_hash: bytes, key_salt: bytes, now: datetime
) -> bool:
    """Give an existing user a new key, keeping its doc and end_time; False when there is none."""
    user = find_user(session, secret_id)
    if user is None:
        return False
    user.key_hash = key_hash
    user.key_salt = key_salt
    user.updated_at = now
    return True


def set_end_time(session: Session, secret_id: str, end_time: datetime | None) -> bool:
    """Change when a user's key expires; False when there is no such user."""
    user = find_user(session, secret_id)
    if user is None:
        return False
    user.end_time = end_time
    return True


def list_users(session: Session) -> list[UserRow]:
    return list(session.execute(select(UserRow).order_by(UserRow.secret_id)).scalars())
