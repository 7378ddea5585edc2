"""clone_sgt_model_to_mine over HTTP: public or own only, a private copy with the current weights
and without the training data; another user's private model looks exactly like a missing one."""

from __future__ import annotations

import pytest
from e2e_server import Session, assert_error

from factories import make_pairs

pytestmark = pytest.mark.e2e

CLONE = "/public/clone_sgt_model_to_mine"
PROBE = [[0.1, -0.4, 0.9], [0.7, 0.2, -0.3], [-1.0, 1.0, 0.0]]


def clone(user: Session, author: Session, name: str, new_name: str, app_name: str = "app"):
    return user.post(
        CLONE,
        author_unique_id=author.secret_id,
        name=name,
        new_name=new_name,
        app_name=app_name,
    )


@pytest.fixture
def trained_public(alice: Session) -> Session:
    """alice with a public model "pub" trained to convergence on a few samples."""
    alice.create("pub", is_public=True, client_data={"rig": "arm", "v": [1, 2]})
    alice.upload("pub", make_pairs(40, seed=3))
    alice.wait_for_state("pub", "converged", deadline_seconds=120)
    return alice


def test_a_public_model_clones_with_its_weights_but_not_its_data(
    trained_public: Session, bob: Session
) -> None:
    alice = trained_public
    reply = clone(bob, alice, "pub", "mine")
    assert (reply.status, reply.body) == (200, None)
    [record] = bob.my_models()
    assert record == {
        "user_unique_id": bob.secret_id,
        "name": "mine",
        "client_data": {"rig": "arm", "v": [1, 2]},
        "app_name": "app",
        "model_type": "std",
        "in_size": 3,
        "out_size": 2,
        "is_public": False,
    }
    assert bob.run("mine", PROBE) == alice.run("pub", PROBE)
    status = bob.status("mine")
    assert status["sample_count"] == 0
    assert status["state"] == "converged", "a clone of trained weights has nothing to train"
    assert alice.status("pub")["sample_count"] == 40, "the source keeps its data"
    public_names = {
        (r["user_unique_id"], r["name"]) for r in bob.ok("/public/read_public_sgt_model")
    }
    assert (bob.secret_id, "mine") not in public_names


def test_a_clone_is_independent_of_its_source(trained_public: Session, bob: Session) -> None:
    alice = trained_public
    clone(bob, alice, "pub", "copy")
    expected = bob.run("copy", PROBE)
    alice.ok("/public/update_sgt_model_client_data", name="pub", app_name="app", client_data=0)
    alice.ok("/public/delete_sgt_model", name="pub", app_name="app")
    assert bob.run("copy", PROBE) == expected
    assert bob.my_models()[0]["client_data"] == {"rig": "arm", "v": [1, 2]}


def test_an_own_private_model_can_be_cloned(alice: Session) -> None:
    alice.create("private", in_size=2, out_size=4, client_data="c")
    reply = clone(alice, alice, "private", "private-copy")
    assert (reply.status, reply.body) == (200, None)
    records = {m["name"]: m for m in alice.my_models()}
    assert records["private-copy"]["in_size"] == 2
    assert records["private-copy"]["out_size"] == 4
    assert records["private-copy"]["client_data"] == "c"
    # Untrained weights come from the model's seed, which the clone shares.
    assert alice.run("private-copy", [[1, 2]]) == alice.run("private", [[1, 2]])


def test_a_taken_new_name_is_a_clone_exception(alice: Session, bob: Session) -> None:
    alice.create("pub", is_public=True)
    bob.create("taken", in_size=5)
    assert_error(clone(bob, alice, "pub", "taken"), "CloneWeightsNetToMineException", "taken")
    [record] = bob.my_models()
    assert record["in_size"] == 5
    assert_error(clone(alice, alice, "pub", "pub"), "CloneWeightsNetToMineException", "pub")


def test_a_missing_source_is_a_clone_exception(alice: Session, bob: Session) -> None:
    alice.create("pub", is_public=True)
    assert_error(clone(bob, alice, "nothing", "x"), "CloneWeightsNetToMineException")
    assert_error(clone(bob, alice, "pub", "x", app_name="other"), "CloneWeightsNetToMineException")
    reply = bob.post(
        CLONE, author_unique_id="no-such-user", name="pub", new_name="x", app_name="app"
    )
    assert_error(reply, "CloneWeightsNetToMineException")
    assert bob.my_models() == []


def test_another_users_private_model_is_indistinguishable_from_a_missing_one(
    alice: Session, bob: Session
) -> None:
    alice.create("secret")
    refused = clone(bob, alice, "secret", "stolen")
    assert_error(refused, "CloneWeightsNetToMineException")
    alice.ok("/public/delete_sgt_model", name="secret", app_name="app")
    missing = clone(bob, alice, "secret", "stolen")
    assert_error(missing, "CloneWeightsNetToMineException")
    assert refused.body == missing.body
    assert bob.my_models() == []
