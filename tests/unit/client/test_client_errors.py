"""Every 400 body becomes the exception its `exception` names; other failures are transport
errors."""

from __future__ import annotations

import pytest

import sgt.client as sc

# The exception table of API.md, name for name.
API_NAMES = [
    "AuthException",
    "CreateWeightsNetException",
    "FindModelException",
    "CloneWeightsNetToMineException",
    "RunWeightsNetException",
    "UploadDataException",
    "RequestException",
    "InternalException",
]


@pytest.mark.parametrize("name", API_NAMES)
@pytest.mark.parametrize("prefix", ["", "sgt.flask_bp."])
def test_each_exception_name_raises_its_class(make_client, error_reply, name, prefix):
    client, _ = make_client(lambda r: error_reply(prefix + name, "no such thing", "req-42"))

    with pytest.raises(getattr(sc, name)) as caught:
        client.delete_model("arm", "rig")

    error = caught.value
    assert type(error).__name__ == name
    assert isinstance(error, sc.ApiError)
    assert isinstance(error, sc.SgtClientError)
    assert error.message == "no such thing"
    assert error.exception_name == prefix + name
    assert error.request_id == "req-42"
    assert str(error) == "no such thing (request id req-42)"


def test_unknown_name_is_a_plain_api_error(make_client, error_reply):
    client, _ = make_client(lambda r: error_reply("sgt.flask_bp.QuotaException", "slow down"))

    with pytest.raises(sc.ApiError) as caught:
        client.list_my_models()

    assert type(caught.value) is sc.ApiError
    assert caught.value.exception_name == "sgt.flask_bp.QuotaException"
    assert caught.value.request_id is None
    assert str(caught.value) == "slow down"


def test_request_id_header_is_found_whatever_its_case(make_client, json_reply):
    body = {"exception": "InternalException", "message": "internal exception"}
    client, _ = make_client(lambda r: json_reply(body, 400, {"x-request-id": "abc"}))

    with pytest.raises(sc.InternalException) as caught:
        client.list_my_models()

    assert caught.value.request_id == "abc"


def test_api_errors_and_transport_errors_are_separate_branches():
    for name in API_NAMES:
        assert issubclass(getattr(sc, name), sc.ApiError)
        assert not issubclass(getattr(sc, name), sc.TransportError)
    for cls in (sc.ConnectFailed, sc.ConnectionLost, sc.RequestTimedOut, sc.UnexpectedResponse):
        assert issubclass(cls, sc.TransportError)
        assert not issubclass(cls, sc.ApiError)
    assert issubclass(sc.TransportError, sc.SgtClientError)
    assert issubclass(sc.ApiError, sc.SgtClientError)


@pytest.mark.parametrize(
    "reply",
    [
        (400, {}, b'{"error": "not the contract"}'),
        (400, {}, b"[1, 2]"),
        (400, {}, b"<html>Bad Request</html>"),
        (200, {}, b"<html>proxy login</html>"),
        (200, {}, b"\xff\xfe"),
        (502, {}, b"Bad Gateway"),
        (404, {}, b'{"detail": "Not Found"}'),
        (200, {}, b'{"not": "a list"}'),
    ],
)
def test_replies_outside_the_contract_are_unexpected_responses(make_client, reply):
    client, _ = make_client(lambda r: reply)

    with pytest.raises(sc.UnexpectedResponse) as caught:
        client.list_my_models()

    assert caught.value.status_code == reply[0]


def test_a_run_answer_of_the_wrong_length_is_unexpected(make_client, json_reply):
    client, _ = make_client(lambda r: json_reply([[1.0]]))

    with pytest.raises(sc.UnexpectedResponse):
        client.run("arm", "rig", [[1.0], [2.0]])


def test_check_auth_false_is_not_an_error(make_client, json_reply):
    client, _ = make_client(lambda r: json_reply(False))

    assert client.check_auth() is False


def test_a_rollback_to_an_unknown_version_raises_find_model_exception(make_client, error_reply):
    client, _ = make_client(lambda r: error_reply("FindModelException", "no version 9"))
    with pytest.raises(sc.FindModelException, match="no version 9"):
        client.rollback("arm", "rig", 9)


def test_a_versions_answer_that_is_not_a_list_is_unexpected(make_client, json_reply):
    client, _ = make_client(lambda r: json_reply({"version": 1}))
    with pytest.raises(sc.UnexpectedResponse):
        client.list_versions("arm", "rig")
