"""Models over HTTP: create, read, update client_data, delete, public listing, isolation."""

from __future__ import annotations

import pytest
from e2e_server import Session, assert_error

pytestmark = pytest.mark.e2e

RECORD_FIELDS = {
    "user_unique_id",
    "name",
    "client_data",
    "app_name",
    "model_type",
    "in_size",
    "out_size",
    "is_public",
}
CREATE = "/public/create_sgt_model"


def create_body(name: str = "m", **fields: object) -> dict[str, object]:
    return {
        "name": name,
        "app_name": "app",
        "model_type": "std",
        "client_data": None,
        "in_size": 3,
        "out_size": 2,
        "is_public": False,
        **fields,
    }


def test_a_created_model_is_listed_with_exactly_the_eight_fields(alice: Session) -> None:
    client_data = {"rig": "arm", "joints": [1, 2.5, None], "nested": {"ok": True}}
    alice.create("arm", app_name="maya", in_size=4, out_size=5, client_data=client_data)
    [record] = alice.my_models()
    assert set(record) == RECORD_FIELDS
    assert record == {
        "user_unique_id": alice.secret_id,
        "name": "arm",
        "client_data": client_data,
        "app_name": "maya",
        "model_type": "std",
        "in_size": 4,
        "out_size": 5,
        "is_public": False,
    }


def test_read_my_models_lists_every_app_of_the_caller(alice: Session) -> None:
    alice.create("b", app_name="houdini")
    alice.create("a", app_name="maya")
    alice.create("a", app_name="houdini")
    listed = {(m["app_name"], m["name"]) for m in alice.my_models()}
    assert listed == {("houdini", "b"), ("maya", "a"), ("houdini", "a")}


def test_unknown_request_fields_are_ignored(alice: Session) -> None:
    alice.ok(CREATE, **create_body("x", colour="blue", version=3))
    alice.ok("/public/read_my_sgt_model", model_type="std", extra={"a": 1})
    reply = alice.ok("/public/run_sgt_model", name="x", app_name="app", data=[], model_type="std")
    assert reply == []
    assert [m["name"] for m in alice.my_models()] == ["x"]


def test_a_taken_name_is_a_create_exception(alice: Session, bob: Session) -> None:
    alice.create("dup")
    reply = alice.post(CREATE, **create_body("dup", in_size=7))
    assert_error(reply, "CreateWeightsNetException", "dup")
    [record] = alice.my_models()
    assert record["in_size"] == 3, "the existing model is untouched"
    alice.create("dup", app_name="other")  # same name, other app
    bob.create("dup")  # same name, other user


def test_an_unknown_model_type_is_a_create_exception(alice: Session) -> None:
    reply = alice.post(CREATE, **create_body(model_type="transformer-xl"))
    assert_error(reply, "CreateWeightsNetException", "model_type", "std")
    assert alice.my_models() == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("in_size", 0),
        ("in_size", -3),
        ("out_size", 0),
        ("in_size", 16385),
        ("out_size", 10**6),
    ],
)
def test_sizes_out_of_bounds_are_create_exceptions(alice: Session, field: str, value: int) -> None:
    reply = alice.post(CREATE, **create_body(**{field: value}))
    assert_error(reply, "CreateWeightsNetException", field)
    assert alice.my_models() == []


def test_a_huge_in_size_is_refused_before_anything_is_allocated(alice: Session) -> None:
    # One row of such a network's first layer alone would be 4 GB; the server refuses from the
    # sizes. How fast it answers is measured by bench/e2e_timings.py.
    peak_before = alice.server.api_peak_memory_bytes()
    reply = alice.post(CREATE, **create_body(in_size=10**9, out_size=10**9))
    assert_error(reply, "CreateWeightsNetException", "in_size")
    assert alice.server.api_peak_memory_bytes() - peak_before < 64 * 2**20
    assert alice.my_models() == []
    alice.create("small")  # the server answers the next request as usual


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("is_public", "false"),
        ("is_public", 0),
        ("is_public", None),
        ("in_size", "3"),
        ("in_size", 3.5),
        ("in_size", True),
        ("out_size", [2]),
        ("name", 5),
        ("app_name", None),
        ("model_type", ["std"]),
    ],
)
def test_a_wrongly_typed_field_is_a_request_exception(
    alice: Session, field: str, value: object
) -> None:
    reply = alice.post(CREATE, **create_body(**{field: value}))
    assert_error(reply, "RequestException", field)
    assert alice.my_models() == []


@pytest.mark.parametrize("field", ["name", "app_name", "model_type", "in_size", "out_size"])
def test_a_missing_field_is_a_request_exception(alice: Session, field: str) -> None:
    body = create_body()
    del body[field]
    assert_error(alice.post(CREATE, **body), "RequestException", field)


def test_oversize_strings_and_client_data_are_request_exceptions(alice: Session) -> None:
    assert_error(alice.post(CREATE, **create_body("n" * 257)), "RequestException", "name")
    assert_error(
        alice.post(CREATE, **create_body(app_name="a" * 10_000)), "RequestException", "app_name"
    )
    huge = {"blob": "x" * (1 << 20)}
    assert_error(
        alice.post(CREATE, **create_body(client_data=huge)), "RequestException", "client_data"
    )
    assert alice.my_models() == []
    alice.create("fits", client_data={"blob": "x" * 1000})
    reply = alice.post(
        "/public/update_sgt_model_client_data", name="fits", app_name="app", client_data=huge
    )
    assert_error(reply, "RequestException", "client_data")
    assert alice.my_models()[0]["client_data"] == {"blob": "x" * 1000}


def test_update_client_data_replaces_it(alice: Session) -> None:
    alice.create("m", client_data={"v": 1})
    for value in ([1, "two", 3.5], "text", None, {"v": 2}):
        alice.ok(
            "/public/update_sgt_model_client_data", name="m", app_name="app", client_data=value
        )
        assert alice.my_models()[0]["client_data"] == value


@pytest.mark.parametrize(
    "path",
    [
        "/public/delete_sgt_model",
        "/public/update_sgt_model_client_data",
        "/public/run_sgt_model",
        "/public/upload_sgt_model_train_data",
        "/public/get_sgt_model_train_status",
        "/public/clear_sgt_model_train_data",
    ],
)
def test_a_missing_model_is_a_find_model_exception(alice: Session, path: str) -> None:
    alice.create("exists", app_name="app")
    fields = {"client_data": 1, "data": [[1, 2, 3]], "train_data": [[[1, 2, 3], [4, 5]]]}
    for name, app_name in (("missing", "app"), ("exists", "other-app")):
        reply = alice.post(path, name=name, app_name=app_name, **fields)
        assert_error(reply, "FindModelException", name)


def test_delete_removes_the_model_and_everything_of_it(alice: Session) -> None:
    alice.create("gone")
    alice.create("stays")
    alice.upload("gone", [[[0.1, 0.2, 0.3], [1.0, 2.0]]] * 5)
    alice.ok("/public/delete_sgt_model", name="gone", app_name="app")
    assert [m["name"] for m in alice.my_models()] == ["stays"]
    for path in ("/public/get_sgt_model_train_status", "/public/run_sgt_model"):
        assert_error(
            alice.post(path, name="gone", app_name="app", data=[[1, 2, 3]]), "FindModelException"
        )
    reply = alice.post("/public/delete_sgt_model", name="gone", app_name="app")
    assert_error(reply, "FindModelException", "gone")
    # The name is free again, for a model with nothing of the old one.
    alice.create("gone", in_size=2, out_size=1)
    status = alice.status("gone")
    assert (status["state"], status["sample_count"]) == ("untrained", 0)
    assert len(alice.run("gone", [[1, 2]])[0]) == 1


def test_read_public_lists_only_public_models_of_every_user(alice: Session, bob: Session) -> None:
    alice.create("shared", is_public=True, client_data={"by": "alice"})
    alice.create("hidden")
    bob.create("bob-shared", app_name="b", is_public=True)
    bob.create("bob-hidden", app_name="b")
    for reader in (alice, bob):
        public = reader.ok("/public/read_public_sgt_model")
        assert all(set(record) == RECORD_FIELDS for record in public)
        assert all(record["is_public"] is True for record in public)
        mine = {(r["user_unique_id"], r["name"]) for r in public}
        assert (alice.secret_id, "shared") in mine
        assert (bob.secret_id, "bob-shared") in mine
        assert (alice.secret_id, "hidden") not in mine
        assert (bob.secret_id, "bob-hidden") not in mine
    shared = [r for r in bob.ok("/public/read_public_sgt_model") if r["name"] == "shared"]
    assert shared[0]["client_data"] == {"by": "alice"}


def test_other_users_private_models_are_invisible(alice: Session, bob: Session) -> None:
    alice.create("private", client_data={"v": 1})
    alice.create("public", is_public=True)
    before = alice.run("private", [[0.5, 0.5, 0.5]])
    # Everything bob names resolves among his own models, of which he has none.
    assert bob.my_models() == []
    for name in ("private", "public"):
        for path, fields in (
            ("/public/run_sgt_model", {"data": [[0.5, 0.5, 0.5]]}),
            ("/public/get_sgt_model_train_status", {}),
            ("/public/update_sgt_model_client_data", {"client_data": {"v": 2}}),
            ("/public/upload_sgt_model_train_data", {"train_data": [[[1, 2, 3], [4, 5]]]}),
            ("/public/clear_sgt_model_train_data", {}),
            ("/public/delete_sgt_model", {}),
        ):
            reply = bob.post(
                path, name=name, app_name="app", author_unique_id=alice.secret_id, **fields
            )
            assert_error(reply, "FindModelException")
    assert {m["name"] for m in alice.my_models()} == {"private", "public"}
    assert alice.my_models()[0]["client_data"] == {"v": 1}
    assert alice.status("private")["sample_count"] == 0
    assert alice.run("private", [[0.5, 0.5, 0.5]]) == before
