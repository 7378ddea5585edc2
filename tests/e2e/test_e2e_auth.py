"""Identities over HTTP: the system key, check_auth_token, credentials on every endpoint,
rotation and expiry."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from e2e_server import Session, SgtServer, assert_error

pytestmark = pytest.mark.e2e

# Every endpoint that authenticates, with a body that is otherwise valid.
AUTHENTICATED: dict[str, dict[str, Any]] = {
    "/public/create_sgt_model": {
        "name": "m",
        "app_name": "app",
        "model_type": "std",
        "client_data": None,
        "in_size": 3,
        "out_size": 2,
        "is_public": False,
    },
    "/public/delete_sgt_model": {"name": "m", "app_name": "app"},
    "/public/update_sgt_model_client_data": {"name": "m", "app_name": "app", "client_data": 1},
    "/public/read_my_sgt_model": {},
    "/public/read_public_sgt_model": {},
    "/public/clone_sgt_model_to_mine": {
        "new_name": "n",
        "app_name": "app",
        "author_unique_id": "someone",
        "name": "m",
    },
    "/public/run_sgt_model": {"name": "m", "app_name": "app", "data": [[1, 2, 3]]},
    "/public/upload_sgt_model_train_data": {
        "name": "m",
        "app_name": "app",
        "train_data": [[[1, 2, 3], [4, 5]]],
    },
    "/public/get_sgt_model_train_status": {"name": "m", "app_name": "app"},
    "/public/clear_sgt_model_train_data": {"name": "m", "app_name": "app"},
}


def bad_credentials(user: Session) -> dict[str, dict[str, Any]]:
    return {
        "missing": {},
        "missing key": {"secret_id": user.secret_id},
        "wrong key": {"secret_id": user.secret_id, "secret_key": user.secret_key + "x"},
        "unknown user": {"secret_id": "nobody-" + user.secret_id, "secret_key": user.secret_key},
        "operator object": {"secret_id": user.secret_id, "secret_key": {"$ne": None}},
        "operator id": {"secret_id": {"$ne": None}, "secret_key": user.secret_key},
        "number": {"secret_id": user.secret_id, "secret_key": 12345},
        "null": {"secret_id": user.secret_id, "secret_key": None},
        "empty": {"secret_id": "", "secret_key": ""},
    }


@pytest.mark.parametrize("path", sorted(AUTHENTICATED))
def test_every_authenticated_endpoint_refuses_bad_credentials(
    server: SgtServer, alice: Session, path: str
) -> None:
    for case, credentials in bad_credentials(alice).items():
        reply = server.post(path, {**AUTHENTICATED[path], **credentials})
        assert (reply.status, reply.body["exception"]) == (400, "AuthException"), case
        assert_error(reply, "AuthException")


@pytest.mark.parametrize("path", sorted(AUTHENTICATED))
def test_credentials_are_judged_before_the_rest_of_the_body(
    server: SgtServer, alice: Session, path: str
) -> None:
    # A stranger learns nothing about the body: a wrong key wins over a malformed field.
    body = {**AUTHENTICATED[path], "name": 7, "app_name": ["x"], "data": "x", "is_public": "no"}
    reply = server.post(path, {**body, "secret_id": alice.secret_id, "secret_key": "wrong"})
    assert_error(reply, "AuthException")


def test_check_auth_token_answers_true_for_valid_credentials(alice: Session) -> None:
    assert alice.ok("/public/check_auth_token") is True


def test_check_auth_token_answers_false_never_400(server: SgtServer, alice: Session) -> None:
    for case, credentials in bad_credentials(alice).items():
        reply = server.post("/public/check_auth_token", credentials)
        assert (reply.status, reply.body) == (200, False), case
        assert reply.request_id


def test_update_auth_token_refuses_a_wrong_system_key(server: SgtServer) -> None:
    for key in ("wrong", "", None, 1, {"$ne": None}, server.system_key + " "):
        body = {"key": key, "secret_id": "intruder", "secret_key": "k"}
        assert_error(server.post("/private/update_auth_token", body), "AuthException")
    missing = {"secret_id": "intruder", "secret_key": "k"}
    assert_error(server.post("/private/update_auth_token", missing), "AuthException")
    check = server.post("/public/check_auth_token", {"secret_id": "intruder", "secret_key": "k"})
    assert check.body is False


def test_update_auth_token_requires_the_user_fields(server: SgtServer) -> None:
    key = server.system_key
    reply = server.post("/private/update_auth_token", {"key": key, "secret_key": "k"})
    assert_error(reply, "RequestException", "secret_id")
    reply = server.post("/private/update_auth_token", {"key": key, "secret_id": "x"})
    assert_error(reply, "RequestException", "secret_key")
    reply = server.post(
        "/private/update_auth_token", {"key": key, "secret_id": 5, "secret_key": "k"}
    )
    assert_error(reply, "RequestException", "secret_id")


def test_rotation_revokes_the_old_key_and_keeps_the_models(
    server: SgtServer, alice: Session
) -> None:
    alice.create("kept")
    reply = server.post(
        "/private/update_auth_token",
        {"key": server.system_key, "secret_id": alice.secret_id, "secret_key": "rotated"},
    )
    assert (reply.status, reply.body) == (200, None)
    assert_error(alice.post("/public/read_my_sgt_model"), "AuthException")
    assert alice.ok("/public/check_auth_token") is False
    rotated = Session(server, alice.secret_id, "rotated")
    assert rotated.ok("/public/check_auth_token") is True
    assert [model["name"] for model in rotated.my_models()] == ["kept"]


def end_time(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).strftime("%Y-%m-%d %H:%M:%S")


def test_a_key_past_its_end_time_is_refused(new_user: Callable[..., Session]) -> None:
    expired = new_user("expired", end_time=end_time(timedelta(minutes=-1)))
    assert expired.ok("/public/check_auth_token") is False
    assert_error(expired.post("/public/read_my_sgt_model"), "AuthException", "expired")


def test_a_key_before_its_end_time_works(new_user: Callable[..., Session]) -> None:
    valid = new_user("valid", end_time=end_time(timedelta(days=1)))
    assert valid.ok("/public/check_auth_token") is True
    assert valid.my_models() == []


def test_rotation_can_expire_a_user_at_once(server: SgtServer, alice: Session) -> None:
    reply = server.post(
        "/private/update_auth_token",
        {
            "key": server.system_key,
            "secret_id": alice.secret_id,
            "secret_key": alice.secret_key,
            "end_time": end_time(timedelta(seconds=-5)),
        },
    )
    assert reply.status == 200
    assert alice.ok("/public/check_auth_token") is False


def test_a_malformed_end_time_is_a_request_exception(server: SgtServer) -> None:
    for value in ("tomorrow", "2030-01-01", "2030-13-01 00:00:00", 1234):
        body = {"key": server.system_key, "secret_id": "u", "secret_key": "k", "end_time": value}
        assert_error(
            server.post("/private/update_auth_token", body), "RequestException", "end_time"
        )


def test_list_model_type_needs_no_credentials(server: SgtServer) -> None:
    for body in ({}, {"secret_id": "nobody", "secret_key": "wrong"}):
        reply = server.post("/public/list_model_type", body)
        assert reply.status == 200
        assert reply.body[0] == "std"
        assert all(isinstance(name, str) for name in reply.body)
    empty = server.post("/public/list_model_type", content=b"")
    assert empty.status == 200 and "std" in empty.body
