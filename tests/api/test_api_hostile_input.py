"""Hostile bodies answer a named 400 (or 200), the same on SQLite and on PostgreSQL.

The first three were InternalException before the rules of docs/input_rules.md: a lone
surrogate in `secret_id`, NUL in a model `name` (PostgreSQL text cannot hold it), and
`client_data` nested tens of thousands of levels deep.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from api_client import TestClient

from factories import SYSTEM_KEY
from sgt.config import Settings

ALICE = '"secret_id":"alice","secret_key":"alice-secret-key"'
MODEL = '"name":"arm","app_name":"app"'
CREATE = f'{ALICE},"app_name":"app","model_type":"std","in_size":2,"out_size":1'
DEEP = 30_000


@pytest.fixture
def app_settings(backend_settings: Settings) -> Settings:
    return backend_settings


@pytest.fixture
def send(client: TestClient, credentials: dict[str, str]) -> Any:
    """POST raw bytes (JSON text written by hand: escapes exactly as a client sent them)."""
    body = {**credentials, "name": "arm", "app_name": "app", "model_type": "std"}
    created = client.post(
        "/sgt/public/create_sgt_model", json={**body, "in_size": 2, "out_size": 1}
    )
    assert created.status_code == 200

    def post(path: str, text: str | bytes, content_type: str = "application/json") -> Any:
        content = text.encode() if isinstance(text, str) else text
        return client.post("/sgt" + path, content=content, headers={"Content-Type": content_type})

    return post


def named_400(response: httpx.Response, exception: str, *fragments: str) -> str:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["exception"] == exception, body
    for fragment in fragments:
        assert fragment in body["message"], body
    return str(body["message"])


def test_a_lone_surrogate_in_secret_id_is_a_request_exception_where_users_are_made(
    send: Any,
) -> None:
    body = f'{{"key":"{SYSTEM_KEY}","secret_id":"\\ud800","secret_key":"k"}}'
    named_400(
        send("/private/update_auth_token", body),
        "RequestException",
        "secret_id holds a lone UTF-16 surrogate (\\ud800) at position 0",
    )


def test_a_lone_surrogate_in_credentials_is_an_auth_exception_or_false(send: Any) -> None:
    for credentials in (
        '"secret_id":"\\ud800","secret_key":"k"',
        '"secret_id":"alice","secret_key":"\\udfff"',
    ):
        named_400(send("/public/read_my_sgt_model", f"{{{credentials}}}"), "AuthException")
        assert send("/public/check_auth_token", f"{{{credentials}}}").json() is False
    wrong_key = '{"key":"\\ud800","secret_id":"bob","secret_key":"k"}'
    named_400(send("/private/update_auth_token", wrong_key), "AuthException")


def test_nul_in_a_model_name_is_a_request_exception_on_both_backends(send: Any) -> None:
    created = send("/public/create_sgt_model", f'{{{CREATE},"name":"a\\u0000b"}}')
    named_400(created, "RequestException", "name holds \\u0000 at position 1", "control characters")
    run = send("/public/run_sgt_model", f'{{{ALICE},"name":"arm","app_name":"a\\u0000","data":[]}}')
    named_400(run, "RequestException", "app_name holds \\u0000")


def test_nul_in_a_secret_id_is_wrong_credentials_and_cannot_be_created(send: Any) -> None:
    named_400(
        send("/public/read_my_sgt_model", '{"secret_id":"a\\u0000","secret_key":"k"}'),
        "AuthException",
    )
    body = f'{{"key":"{SYSTEM_KEY}","secret_id":"a\\u0000","secret_key":"k"}}'
    named_400(send("/private/update_auth_token", body), "RequestException", "secret_id holds")
    doc = f'{{"key":"{SYSTEM_KEY}","secret_id":"bob","secret_key":"k","doc":"x\\u0000"}}'
    named_400(send("/private/update_auth_token", doc), "RequestException", "doc holds \\u0000")


@pytest.mark.parametrize(
    "path", ["/public/create_sgt_model", "/public/update_sgt_model_client_data"]
)
def test_client_data_nested_tens_of_thousands_deep_names_the_depth_limit(
    send: Any, path: str
) -> None:
    deep = "[" * DEEP + "]" * DEEP
    body = (
        f'{{{CREATE},"name":"deep","client_data":{deep}}}'
        if "create" in path
        else (f'{{{ALICE},{MODEL},"client_data":{deep}}}')
    )
    named_400(send(path, body), "RequestException", "client_data may nest at most 64 levels")
    shallow = "[" * 65 + "]" * 65
    body = f'{{{ALICE},{MODEL},"client_data":{shallow}}}'
    named_400(
        send("/public/update_sgt_model_client_data", body),
        "RequestException",
        "client_data nests deeper than 64 levels",
    )


def test_deep_nesting_in_data_is_named_too(send: Any) -> None:
    deep = "[" * DEEP + "]" * DEEP
    response = send("/public/run_sgt_model", f'{{{ALICE},{MODEL},"data":{deep}}}')
    assert response.status_code == 400 and response.json()["exception"] != "InternalException"
    nan_too = f'{{{ALICE},{MODEL},"data":[[NaN, 1]],"client_data":{deep}}}'
    named_400(send("/public/run_sgt_model", nan_too), "RequestException", "nest at most 64")


CLIENT_DATA_REFUSED = [
    ("NaN", "client_data is NaN; NaN and Infinity are not JSON numbers"),
    ('{"a":[-Infinity]}', "client_data.a[0] is -Infinity"),
    ("123456789012345678901234567890", "client_data is an integer of 97 bits"),
    ('{"\\ud800":1}', "client_data key '\\ud800' holds a lone UTF-16 surrogate"),
    ('["\\udc00"]', "client_data[0] holds a lone UTF-16 surrogate"),
]


def test_client_data_that_json_cannot_carry_back_is_a_request_exception(send: Any) -> None:
    for client_data, fragment in CLIENT_DATA_REFUSED:
        body = f'{{{ALICE},{MODEL},"client_data":{client_data}}}'
        named_400(send("/public/update_sgt_model_client_data", body), "RequestException", fragment)


def test_client_data_keeps_nul_control_characters_pairs_and_the_last_duplicate_key(
    send: Any,
) -> None:
    client_data = '{"k":"nul\\u0000 tab\\t smile \\ud83d\\ude00","dup":1,"dup":2}'
    body = f'{{{ALICE},{MODEL},"client_data":{client_data}}}'
    assert send("/public/update_sgt_model_client_data", body).status_code == 200
    [record] = send("/public/read_my_sgt_model", f"{{{ALICE}}}").json()
    assert record["client_data"] == {"k": "nul\x00 tab\t smile \U0001f600", "dup": 2}


def test_bytes_that_are_not_utf8_are_a_request_exception_naming_the_offset(send: Any) -> None:
    body = f'{{{ALICE},{MODEL},"client_data":"'.encode() + b'\xff"}'
    message = named_400(
        send("/public/update_sgt_model_client_data", body), "RequestException", "not valid UTF-8"
    )
    assert f"byte 0xff at offset {body.index(0xFF)}" in message
    encoded_surrogate = f'{{{ALICE},{MODEL},"client_data":"'.encode() + b'\xed\xa0\x80"}'
    named_400(
        send("/public/update_sgt_model_client_data", encoded_surrogate),
        "RequestException",
        "not valid UTF-8",
    )


def test_a_byte_order_mark_and_any_content_type_are_tolerated(send: Any) -> None:
    body = f'{{{ALICE},{MODEL},"client_data":1}}'
    assert (
        send("/public/update_sgt_model_client_data", b"\xef\xbb\xbf" + body.encode()).status_code
        == 200
    )
    assert send("/public/update_sgt_model_client_data", body, "text/plain").status_code == 200
    assert send("/public/update_sgt_model_client_data", body, "").status_code == 200


WRONG_TYPES = [
    ('"in_size":"2","out_size":1', "in_size: expected int, got str"),
    ('"in_size":true,"out_size":1', "in_size: expected int, got bool"),
    ('"in_size":2.0,"out_size":1', "in_size: expected int, got float"),
    ('"in_size":2,"out_size":1,"is_public":"false"', "is_public: expected bool, got str"),
]


def test_numbers_as_strings_and_bools_as_ints_are_request_exceptions(send: Any) -> None:
    for fields, fragment in WRONG_TYPES:
        body = f'{{{ALICE},"name":"n","app_name":"app","model_type":"std",{fields}}}'
        named_400(send("/public/create_sgt_model", body), "RequestException", fragment)


def test_a_huge_size_is_a_create_exception_and_an_empty_body_names_the_field(send: Any) -> None:
    huge = "1" + "0" * 40
    body = (
        f'{{{ALICE},"name":"n","app_name":"app","model_type":"std","in_size":{huge},"out_size":1}}'
    )
    named_400(
        send("/public/create_sgt_model", body), "CreateWeightsNetException", "in_size must be"
    )
    named_400(send("/public/create_sgt_model", b""), "RequestException", "is required")


def test_a_message_quoting_a_lone_surrogate_is_still_encoded(send: Any) -> None:
    body = f'{{{ALICE},{MODEL},"data":[],"response_format":"\\ud800"}}'
    named_400(send("/public/run_sgt_model", body), "RequestException", "lone UTF-16 surrogate")


def test_names_longer_than_the_limit_are_refused_before_storage(send: Any) -> None:
    named_400(
        send("/public/create_sgt_model", f'{{{CREATE},"name":"{"x" * 600}"}}'),
        "RequestException",
        "name is 600 characters; the limit is 256",
    )
