"""The dashboard in process: sign-in, the session cookie's flags, who sees which model, and the
CSRF checks on the owner's actions (the browser tests in tests/browser drive the real pages)."""

from __future__ import annotations

import logging
import re

import pytest
from api_client import Post, TestClient

from factories import SYSTEM_KEY

PAIRS = [[[0.1, 0.2], [1.0]], [[0.3, 0.4], [2.0]]]


def make_user(post: Post, secret_id: str) -> dict[str, str]:
    body = {"key": SYSTEM_KEY, "secret_id": secret_id, "secret_key": f"{secret_id}-key"}
    assert post("/private/update_auth_token", body).status_code == 200
    return {"secret_id": secret_id, "secret_key": f"{secret_id}-key"}


def make_model(post: Post, user: dict[str, str], name: str, *, is_public: bool) -> None:
    body = {**user, "name": name, "app_name": "rig", "model_type": "std", "client_data": None}
    body |= {"in_size": 2, "out_size": 1, "is_public": is_public}
    assert post("/public/create_sgt_model", body).status_code == 200


def sign_in(client: TestClient, user: dict[str, str]) -> str:
    """Signs in through the form; returns the CSRF token the list page carries."""
    response = client.post("/dashboard/login", data=user, follow_redirects=False)
    assert (response.status_code, response.headers["location"]) == (303, "/dashboard")
    page = client.get("/dashboard")
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


@pytest.fixture
def alice(post: Post) -> dict[str, str]:
    return make_user(post, "alice")


def test_the_sign_in_form_has_labelled_fields_and_no_key_in_any_url(client: TestClient) -> None:
    page = client.get("/dashboard")
    assert page.status_code == 200
    assert '<label for="secret_id">' in page.text and '<label for="secret_key">' in page.text
    assert 'method="post"' in page.text and 'type="password"' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]


def test_the_session_cookie_is_httponly_strict_and_expires(
    client: TestClient, alice: dict[str, str]
) -> None:
    response = client.post("/dashboard/login", data=alice, follow_redirects=False)
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert "max-age=28800" in cookie and "path=/dashboard" in cookie
    assert alice["secret_key"] not in response.headers["set-cookie"]


def test_the_key_is_never_logged(
    client: TestClient, alice: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        sign_in(client, alice)
        client.post("/dashboard/login", data={**alice, "secret_key": "wrong-key-7f3a"})
    assert alice["secret_key"] not in caplog.text and "wrong-key-7f3a" not in caplog.text


def test_a_wrong_key_is_refused_without_a_session(
    client: TestClient, alice: dict[str, str]
) -> None:
    response = client.post("/dashboard/login", data={**alice, "secret_key": "wrong"})
    assert response.status_code == 401
    assert "set-cookie" not in response.headers
    assert "Wrong secret_id or secret_key" in response.text


def test_the_list_shows_own_and_public_models_never_another_users_private_one(
    client: TestClient, post: Post, alice: dict[str, str]
) -> None:
    bob = make_user(post, "bob")
    make_model(post, alice, "mine", is_public=False)
    make_model(post, bob, "bobs-public", is_public=True)
    make_model(post, bob, "bobs-secret", is_public=False)
    sign_in(client, alice)
    page = client.get("/dashboard").text
    assert 'data-model="mine"' in page and 'data-model="bobs-public"' in page
    assert "bobs-secret" not in page
    hidden = {"owner": "bob", "app_name": "rig", "name": "bobs-secret"}
    assert client.get("/dashboard/model", params=hidden).status_code == 404
    assert client.get("/dashboard/status", params=hidden).status_code == 404
    public = client.get("/dashboard/status", params={**hidden, "name": "bobs-public"})
    assert public.json()["state"] == "untrained"


def test_clearing_needs_the_sessions_csrf_token_and_a_same_site_origin(
    client: TestClient, post: Post, alice: dict[str, str]
) -> None:
    make_model(post, alice, "mine", is_public=False)
    model = {"app_name": "rig", "name": "mine"}
    post("/public/upload_sgt_model_train_data", {**alice, **model, "train_data": PAIRS})
    csrf = sign_in(client, alice)
    assert client.post("/dashboard/clear", data=model).status_code == 403
    assert client.post("/dashboard/clear", data={**model, "csrf": "forged"}).status_code == 403
    elsewhere = client.post(
        "/dashboard/clear", data={**model, "csrf": csrf}, headers={"origin": "https://evil.test"}
    )
    assert elsewhere.status_code == 403
    status = client.get("/dashboard/status", params={"owner": "alice", **model}).json()
    assert status["sample_count"] == 2
    cleared = client.post("/dashboard/clear", data={**model, "csrf": csrf}, follow_redirects=False)
    assert cleared.status_code == 303
    status = client.get("/dashboard/status", params={"owner": "alice", **model}).json()
    assert status["sample_count"] == 0


def test_only_the_owner_can_delete(client: TestClient, post: Post, alice: dict[str, str]) -> None:
    bob = make_user(post, "bob")
    make_model(post, bob, "bobs-public", is_public=True)
    csrf = sign_in(client, alice)
    page = client.get(
        "/dashboard/model", params={"owner": "bob", "app_name": "rig", "name": "bobs-public"}
    )
    assert page.status_code == 200 and 'id="delete"' not in page.text
    refused = client.post(
        "/dashboard/delete", data={"app_name": "rig", "name": "bobs-public", "csrf": csrf}
    )
    assert refused.status_code == 404
    public = post("/public/read_public_sgt_model", bob).json()
    assert [model["name"] for model in public] == ["bobs-public"]


def test_a_new_key_or_a_tampered_cookie_ends_the_session(
    client: TestClient, post: Post, alice: dict[str, str]
) -> None:
    sign_in(client, alice)
    token = client.cookies["sgt_dashboard"]
    client.cookies.set("sgt_dashboard", token[:-2] + "xx", path="/dashboard")
    assert 'id="sign-in"' in client.get("/dashboard").text
    client.cookies.set("sgt_dashboard", token, path="/dashboard")
    assert 'id="sign-out"' in client.get("/dashboard").text
    make_user(post, "alice")  # the same user with a new key
    post(
        "/private/update_auth_token", {"key": SYSTEM_KEY, "secret_id": "alice", "secret_key": "new"}
    )
    assert 'id="sign-in"' in client.get("/dashboard").text


def test_sign_out_removes_the_cookie(client: TestClient, alice: dict[str, str]) -> None:
    csrf = sign_in(client, alice)
    response = client.post("/dashboard/logout", data={"csrf": csrf}, follow_redirects=False)
    assert response.status_code == 303
    assert 'id="sign-in"' in client.get("/dashboard").text


def test_the_docs_page_loads_its_assets_from_this_server(client: TestClient) -> None:
    page = client.get("/docs").text
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert assets and all(url.startswith("/static/") for url in assets), assets
    for url in assets:
        assert client.get(url).status_code == 200, url
    assert "/dashboard" not in str(client.get("/openapi.json").json()["paths"])
