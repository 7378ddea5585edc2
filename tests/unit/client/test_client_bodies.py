"""Each method posts to its API.md path with exactly the documented field names."""

from __future__ import annotations

import datetime
import json

import pytest

from sgt.client import Client, format_end_time

AUTH = {"secret_id": "alice", "secret_key": "s3cret"}

# (call, path, body, reply): the body is the whole request body, compared for equality.
CASES = [
    (
        lambda c: c.check_auth(),
        "/public/check_auth_token",
        dict(AUTH),
        True,
    ),
    (
        lambda c: c.create_model("arm", "rig", 64, 12),
        "/public/create_sgt_model",
        dict(
            AUTH,
            name="arm",
            app_name="rig",
            model_type="std",
            client_data=None,
            in_size=64,
            out_size=12,
            is_public=False,
        ),
        None,
    ),
    (
        lambda c: c.create_model(
            "arm", "rig", 64, 12, model_type="wide", client_data={"bones": [1]}, is_public=True
        ),
        "/public/create_sgt_model",
        dict(
            AUTH,
            name="arm",
            app_name="rig",
            model_type="wide",
            client_data={"bones": [1]},
            in_size=64,
            out_size=12,
            is_public=True,
        ),
        None,
    ),
    (
        lambda c: c.create_model("legs", "skin", 71, 17, model_type="weights", max_influences=4),
        "/public/create_sgt_model",
        dict(
            AUTH,
            name="legs",
            app_name="skin",
            model_type="weights",
            client_data=None,
            in_size=71,
            out_size=17,
            is_public=False,
            max_influences=4,
        ),
        None,
    ),
    (
        lambda c: c.delete_model("arm", "rig"),
        "/public/delete_sgt_model",
        dict(AUTH, name="arm", app_name="rig"),
        None,
    ),
    (
        lambda c: c.update_client_data("arm", "rig", ["any", "json"]),
        "/public/update_sgt_model_client_data",
        dict(AUTH, name="arm", app_name="rig", client_data=["any", "json"]),
        None,
    ),
    (
        lambda c: c.list_my_models(),
        "/public/read_my_sgt_model",
        dict(AUTH),
        [],
    ),
    (
        lambda c: c.list_public_models(),
        "/public/read_public_sgt_model",
        dict(AUTH),
        [],
    ),
    (
        lambda c: c.clone_model("bob", "arm", "my_arm", "rig"),
        "/public/clone_sgt_model_to_mine",
        dict(AUTH, author_unique_id="bob", name="arm", new_name="my_arm", app_name="rig"),
        None,
    ),
    (
        lambda c: c.run("arm", "rig", [[1.0, 2.0]]),
        "/public/run_sgt_model",
        dict(AUTH, name="arm", app_name="rig", data=[[1.0, 2.0]]),
        [[3.0]],
    ),
    (
        lambda c: c.run_model("arm", "rig", [[1.0, 2.0]]),
        "/public/run_sgt_model",
        dict(AUTH, name="arm", app_name="rig", data=[[1.0, 2.0]]),
        [[3.0]],
    ),
    (
        lambda c: c.upload_train_data("arm", "rig", inputs=[[1, 2]], labels=[[3]]),
        "/public/upload_sgt_model_train_data",
        dict(AUTH, name="arm", app_name="rig", train_data=[[[1, 2], [3]]]),
        None,
    ),
    (
        lambda c: c.upload_train_data("arm", "rig", pairs=[[[1, 2], [3]]]),
        "/public/upload_sgt_model_train_data",
        dict(AUTH, name="arm", app_name="rig", train_data=[[[1, 2], [3]]]),
        None,
    ),
    (
        lambda c: c.list_model_types(),
        "/public/list_model_type",
        {},
        ["std"],
    ),
    (
        lambda c: c.train_status("arm", "rig"),
        "/public/get_sgt_model_train_status",
        dict(AUTH, name="arm", app_name="rig"),
        {"state": "queued"},
    ),
    (
        lambda c: c.clear_train_data("arm", "rig"),
        "/public/clear_sgt_model_train_data",
        dict(AUTH, name="arm", app_name="rig"),
        None,
    ),
    (
        lambda c: c.list_versions("arm", "rig"),
        "/public/list_sgt_model_versions",
        dict(AUTH, name="arm", app_name="rig"),
        [
            {
                "version": 2,
                "created_at": "2026-12-02 10:00:00",
                "sample_count": 40,
                "val_loss": 0.01,
                "served": True,
            }
        ],
    ),
    (
        lambda c: c.rollback("arm", "rig", 1),
        "/public/rollback_sgt_model",
        dict(AUTH, name="arm", app_name="rig", version=1),
        None,
    ),
    (
        lambda c: c.update_auth_token("system", "bob", "bobs-key"),
        "/private/update_auth_token",
        {"key": "system", "secret_id": "bob", "secret_key": "bobs-key"},
        None,
    ),
    (
        lambda c: c.update_auth_token(
            "system", "bob", "bobs-key", doc="rigger", end_time="2030-01-02 03:04:05"
        ),
        "/private/update_auth_token",
        {
            "key": "system",
            "secret_id": "bob",
            "secret_key": "bobs-key",
            "doc": "rigger",
            "end_time": "2030-01-02 03:04:05",
        },
        None,
    ),
]


@pytest.mark.parametrize(("call", "path", "body", "reply"), CASES)
def test_body_carries_the_exact_field_names(make_client, json_reply, call, path, body, reply):
    client, transport = make_client(lambda r: json_reply(reply), timeout=7.5)

    result = call(client)

    (request,) = transport.requests
    assert request.url == "http://sgt.test:6006/sgt" + path
    assert request.body == body
    assert request.timeout_seconds == 7.5
    assert request.headers["Content-Type"] == "application/json"
    assert request.raw == json.dumps(request.body, separators=(",", ":")).encode()  # compact
    assert result == reply


def test_every_api_path_has_a_case():
    paths = {case[1] for case in CASES}
    assert len(paths) == 15  # the 11 endpoints of API.md and four extensions


@pytest.mark.parametrize(
    "base_url",
    ["http://h:6006", "http://h:6006/", "http://h:6006/sgt", "http://h:6006/sgt/"],
)
def test_the_api_prefix_is_added_once(base_url):
    assert Client(base_url, "a", "b").api_url == "http://h:6006/sgt"


def test_base_url_needs_a_scheme():
    with pytest.raises(ValueError, match="base_url"):
        Client("127.0.0.1:6006", "a", "b")


@pytest.mark.parametrize(
    ("end_time", "wire"),
    [
        ("2030-01-02 03:04:05", "2030-01-02 03:04:05"),
        (datetime.datetime(2030, 1, 2, 3, 4, 5, 999), "2030-01-02 03:04:05"),
        (
            datetime.datetime(
                2030, 1, 2, 5, 4, 5, tzinfo=datetime.timezone(datetime.timedelta(hours=2))
            ),
            "2030-01-02 03:04:05",
        ),
    ],
)
def test_end_time_is_sent_in_utc(end_time, wire):
    assert format_end_time(end_time) == wire


def test_end_time_of_another_type_is_refused():
    with pytest.raises(TypeError):
        format_end_time(1893456000)  # type: ignore[arg-type]
