"""Retries only where repeating is safe: a fake transport fails a given number of times."""

from __future__ import annotations

import pytest

import sgt.client as sc


def failing(times, failure, then):
    """A handler that raises `failure` for the first `times` requests, then answers `then`."""

    def handler(request):
        handler.calls += 1
        if handler.calls <= times:
            raise failure
        return then

    handler.calls = 0
    return handler


IDEMPOTENT = [
    (lambda c: c.check_auth(), True),
    (lambda c: c.list_my_models(), []),
    (lambda c: c.list_public_models(), []),
    (lambda c: c.list_model_types(), ["std"]),
    (lambda c: c.run("arm", "rig", [[1.0]]), [[2.0]]),
    (lambda c: c.train_status("arm", "rig"), {"state": "converged"}),
    (lambda c: c.list_versions("arm", "rig"), []),
    (lambda c: c.rollback("arm", "rig", 1), None),
]

NOT_IDEMPOTENT = [
    lambda c: c.create_model("arm", "rig", 1, 1),
    lambda c: c.delete_model("arm", "rig"),
    lambda c: c.update_client_data("arm", "rig", {}),
    lambda c: c.clone_model("bob", "arm", "arm2", "rig"),
    lambda c: c.upload_train_data("arm", "rig", [[1.0]], [[1.0]]),
    lambda c: c.clear_train_data("arm", "rig"),
    lambda c: c.update_auth_token("system", "bob", "key"),
]


@pytest.mark.parametrize(("call", "reply"), IDEMPOTENT)
def test_idempotent_calls_retry_lost_connections_with_backoff(
    make_client, json_reply, sleeps, call, reply
):
    handler = failing(2, sc.ConnectionLost("reset"), json_reply(reply))
    client, _ = make_client(handler, retries=2, backoff_seconds=0.5)

    assert call(client) == reply
    assert handler.calls == 3
    assert sleeps == [0.5, 1.0]


@pytest.mark.parametrize(("call", "reply"), IDEMPOTENT)
def test_idempotent_calls_give_up_after_the_retries(make_client, json_reply, sleeps, call, reply):
    handler = failing(4, sc.ConnectionLost("reset"), json_reply(reply))
    client, _ = make_client(handler, retries=3, backoff_seconds=1.0)

    with pytest.raises(sc.ConnectionLost):
        call(client)
    assert handler.calls == 4
    assert sleeps == [1.0, 2.0, 4.0]


@pytest.mark.parametrize("call", NOT_IDEMPOTENT)
def test_other_calls_never_repeat_a_request_that_may_have_arrived(
    make_client, json_reply, sleeps, call
):
    handler = failing(1, sc.ConnectionLost("reset"), json_reply(None))
    client, _ = make_client(handler, retries=5)

    with pytest.raises(sc.ConnectionLost):
        call(client)
    assert handler.calls == 1
    assert sleeps == []


@pytest.mark.parametrize("call", NOT_IDEMPOTENT)
def test_every_call_retries_a_refused_connection(make_client, json_reply, call):
    # Refused means nothing reached the server, so even a create may be sent again.
    handler = failing(2, sc.ConnectFailed("refused"), json_reply(None))
    client, _ = make_client(handler, retries=2)

    call(client)
    assert handler.calls == 3


@pytest.mark.parametrize(
    "failure",
    [sc.RequestTimedOut("slow"), sc.UnexpectedResponse("502", status_code=502)],
)
def test_timeouts_and_odd_replies_are_not_retried(make_client, json_reply, failure):
    handler = failing(1, failure, json_reply([]))
    client, _ = make_client(handler, retries=3)

    with pytest.raises(type(failure)):
        client.list_my_models()
    assert handler.calls == 1


def test_api_errors_are_never_retried(make_client, error_reply):
    handler = failing(0, None, error_reply("AuthException"))
    client, _ = make_client(handler, retries=3)

    with pytest.raises(sc.AuthException):
        client.list_my_models()
    assert handler.calls == 1


def test_retries_zero_means_one_attempt(make_client, json_reply):
    handler = failing(1, sc.ConnectionLost("reset"), json_reply([]))
    client, _ = make_client(handler, retries=0)

    with pytest.raises(sc.ConnectionLost):
        client.list_my_models()
    assert handler.calls == 1


def test_a_chunked_run_repeats_only_the_failing_chunk(make_client, json_reply):
    def handler(request):
        handler.sent.append(request.body["data"])
        if len(handler.sent) == 2:
            raise sc.ConnectionLost("reset")
        return json_reply([[0.0]] * len(request.body["data"]))

    handler.sent = []
    client, _ = make_client(handler, chunk_rows=2)

    client.run("arm", "rig", [[1.0], [2.0], [3.0], [4.0]])

    assert handler.sent == [[[1.0], [2.0]], [[3.0], [4.0]], [[3.0], [4.0]]]


def test_backoff_is_capped(make_client, json_reply, sleeps):
    handler = failing(6, sc.ConnectionLost("reset"), json_reply([]))
    client, _ = make_client(handler, retries=6, backoff_seconds=1.0)

    client.list_my_models()
    assert sleeps == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


def test_a_socket_error_from_a_custom_transport_counts_as_lost(make_client, json_reply):
    handler = failing(1, ConnectionResetError("reset"), json_reply([]))
    client, _ = make_client(handler, retries=1)

    assert client.list_my_models() == []
    assert handler.calls == 2
