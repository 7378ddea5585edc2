"""Users on a real SQLite file: authentication, rotation, expiry, the system key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from factories import SYSTEM_KEY, make_user
from sgt.errors import AuthFailed
from sgt.services import users
from sgt.services.context import ServiceContext
from sgt.storage.tables import UserRow


def test_a_created_user_authenticates(ctx: ServiceContext) -> None:
    user = make_user(ctx, secret_id="alice", secret_key="s3cret")
    assert users.authenticate(ctx, "alice", "s3cret") == user
    assert users.is_authentic(ctx, "alice", "s3cret")


@pytest.mark.parametrize(
    ("secret_id", "secret_key"),
    [
        ("alice", "wrong"),
        ("nobody", "s3cret"),
        ("alice", None),
        (None, "s3cret"),
        ("alice", {"$ne": None}),
        (["alice"], "s3cret"),
        ("", ""),
        ("alice", ""),
    ],
)
def test_bad_credentials_fail(ctx: ServiceContext, secret_id: object, secret_key: object) -> None:
    make_user(ctx, secret_id="alice", secret_key="s3cret")
    with pytest.raises(AuthFailed):
        users.authenticate(ctx, secret_id, secret_key)
    assert users.is_authentic(ctx, secret_id, secret_key) is False


def test_the_stored_row_holds_no_plain_key(ctx: ServiceContext) -> None:
    make_user(ctx, secret_id="alice", secret_key="plain-key-123")
    with ctx.db.read() as session:
        row = session.execute(select(UserRow).where(UserRow.secret_id == "alice")).scalar_one()
        stored = [value for value in vars(row).values() if isinstance(value, str | bytes)]
    assert all(b"plain-key-123" not in (v if isinstance(v, bytes) else v.encode()) for v in stored)


def test_rotation_replaces_the_key(ctx: ServiceContext) -> None:
    make_user(ctx, secret_id="alice", secret_key="old")
    users.save_user_key(ctx, system_key=SYSTEM_KEY, secret_id="alice", secret_key="new")
    assert not users.is_authentic(ctx, "alice", "old")
    assert users.is_authentic(ctx, "alice", "new")


def test_the_system_key_is_required(ctx: ServiceContext) -> None:
    for wrong in ("", "wrong", SYSTEM_KEY + "x"):
        with pytest.raises(AuthFailed):
            users.save_user_key(ctx, system_key=wrong, secret_id="eve", secret_key="k")
    assert users.list_users(ctx) == []


def test_expiry_is_judged_in_utc(ctx: ServiceContext) -> None:
    now = datetime.now(UTC).replace(tzinfo=None)
    make_user(ctx, secret_id="alice", secret_key="k")
    assert users.expire_user(ctx, "alice", now - timedelta(seconds=1))
    with pytest.raises(AuthFailed, match="expired"):
        users.authenticate(ctx, "alice", "k")
    assert users.expire_user(ctx, "alice", now + timedelta(hours=1))
    assert users.is_authentic(ctx, "alice", "k")
    assert users.expire_user(ctx, "alice", None)
    assert users.is_authentic(ctx, "alice", "k")
    assert not users.expire_user(ctx, "nobody", None)


def test_list_users_shows_doc_and_end_time(ctx: ServiceContext) -> None:
    end = datetime(2031, 1, 2, 3, 4, 5)
    users.save_user_key(
        ctx, system_key=SYSTEM_KEY, secret_id="b", secret_key="k", doc="second", end_time=end
    )
    users.save_user_key(ctx, system_key=SYSTEM_KEY, secret_id="a", secret_key="k", doc="first")
    assert users.list_users(ctx) == [("a", "first", None), ("b", "second", end)]


def test_parse_end_time_reads_the_documented_format() -> None:
    assert users.parse_end_time("2030-01-02 03:04:05") == datetime(2030, 1, 2, 3, 4, 5)
    for bad in ("2030-01-02", "2030-01-02T03:04:05", "soon"):
        with pytest.raises(ValueError):
            users.parse_end_time(bad)


def test_only_a_key_verified_lately_is_recalled_without_scrypt(ctx: ServiceContext) -> None:
    # What lets the API answer small requests on the event loop: None means "ask authenticate".
    user = make_user(ctx, secret_id="alice", secret_key="k")
    assert users.authenticate_if_remembered(ctx, "nobody", "k") is None
    assert users.authenticate_if_remembered(ctx, "alice", "wrong") is None
    assert users.authenticate(ctx, "alice", "k") == user
    assert users.authenticate_if_remembered(ctx, "alice", "k") == user
    assert users.authenticate_if_remembered(ctx, "alice", "wrong") is None
    with pytest.raises(AuthFailed):
        users.authenticate_if_remembered(ctx, "alice", None)


def test_a_remembered_key_still_expires_and_rotates(ctx: ServiceContext) -> None:
    make_user(ctx, secret_id="alice", secret_key="k")
    users.authenticate(ctx, "alice", "k")
    assert users.expire_user(ctx, "alice", datetime.now(UTC).replace(tzinfo=None))
    with pytest.raises(AuthFailed, match="expired"):
        users.authenticate_if_remembered(ctx, "alice", "k")
    users.save_user_key(ctx, system_key=SYSTEM_KEY, secret_id="alice", secret_key="new")
    assert users.authenticate_if_remembered(ctx, "alice", "k") is None
