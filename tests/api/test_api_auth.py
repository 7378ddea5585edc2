"""Identities through the app: secret keys never reach the logs."""

from __future__ import annotations

import logging

import pytest
from api_client import Post

from factories import SYSTEM_KEY


def test_secret_keys_are_never_logged(post: Post, caplog: pytest.LogCaptureFixture) -> None:
    key = "never-log-this-key-9c1d"
    with caplog.at_level(logging.DEBUG):
        post("/private/update_auth_token", {"key": SYSTEM_KEY, "secret_id": "u", "secret_key": key})
        post("/public/check_auth_token", {"secret_id": "u", "secret_key": key})
        post("/public/read_my_sgt_model", {"secret_id": "u", "secret_key": key + "-wrong"})
        post("/private/update_auth_token", {"key": key, "secret_id": "u", "secret_key": key})
    assert post("/public/check_auth_token", {"secret_id": "u", "secret_key": key}).json() is True
    assert key not in caplog.text
    assert SYSTEM_KEY not in caplog.text


def test_update_auth_token_answers_null_and_creates_the_user(post: Post) -> None:
    body = {"key": SYSTEM_KEY, "secret_id": "u", "secret_key": "k", "doc": "a note"}
    response = post("/private/update_auth_token", body)
    assert (response.status_code, response.content) == (200, b"null")
    assert post("/public/check_auth_token", {"secret_id": "u", "secret_key": "k"}).json() is True
