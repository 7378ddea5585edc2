"""Generated bodies, with valid credentials, to every operation of the contract: each answer is
a 200 or a 400 with a contract name other than InternalException, on SQLite and PostgreSQL.

Hypothesis writes the bodies: the operation's own fields, each either a plausible value or any
JSON (huge integers, NaN, lone surrogates, NUL, deep nesting, ...), plus unknown fields; then the
bytes are sometimes mangled (a byte order mark, invalid UTF-8, a cut, raw surrogates) and sent
with a random Content-Type. Derandomized with a fixed number of examples, so every run sends the
same bodies and takes about as long. One app per backend serves every example.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from api_client import TestClient
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from factories import SYSTEM_KEY
from pg_support import PostgresDatabases
from sgt.api.app import OPERATION_GROUPS, PREFIX, create_app
from sgt.api.operations import Operation
from sgt.config import Settings

EXAMPLES_PER_BACKEND = 300
CONTRACT_NAMES = {
    "AuthException",
    "CreateWeightsNetException",
    "FindModelException",
    "CloneWeightsNetToMineException",
    "RunWeightsNetException",
    "UploadDataException",
    "RequestException",
}
ALICE = {"secret_id": "alice", "secret_key": "alice-secret-key"}
OPERATIONS: list[Operation[Any]] = [
    op for group in OPERATION_GROUPS for op in group.router.operations
]

ODD_CHARACTERS = ["\x00", "\x1f", "\x7f", "\x85", "\ud800", "\udfff", "\ufeff", "é", "😀", "a", "."]
texts = st.one_of(
    st.text(max_size=12),
    st.text(st.characters(exclude_categories=()), max_size=12),  # surrogates included
    st.text(st.sampled_from(ODD_CHARACTERS), max_size=12),
    st.sampled_from(["", "x" * 300, "x" * 600]),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),  # unbounded: beyond 64 bits too
    st.floats(),  # NaN and infinities included
    texts,
)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(texts, children, max_size=4)
    ),
    max_leaves=16,
)
rows = st.lists(st.lists(st.floats(-10, 10), min_size=1, max_size=3), max_size=3)
# The binary extension's arrays (docs/binary.md), with shapes and bytes that may not agree.
arrays = st.fixed_dictionaries(
    {
        "dtype": st.sampled_from(["float32", "float64"]),
        "shape": st.lists(st.integers(-1, 3) | st.integers(), max_size=3),
        "base64": st.binary(max_size=24).map(lambda raw: base64.b64encode(raw).decode()) | texts,
    }
)
PLAUSIBLE: dict[str, st.SearchStrategy[Any]] = {
    "key": st.just(SYSTEM_KEY),
    "secret_id": st.sampled_from(["alice", "bob"]),
    "secret_key": st.just(ALICE["secret_key"]),
    "name": st.sampled_from(["arm", "leg"]),
    "new_name": st.sampled_from(["arm copy", "leg"]),
    "app_name": st.just("app"),
    "author_unique_id": st.just("alice"),
    # Known types and not (the registry's module is not imported: it moves between releases).
    "model_type": st.sampled_from(["std", "linear", "mlp", "gp", "weights", "nope"]),
    "in_size": st.integers(-1, 4),
    "out_size": st.integers(-1, 4),
    "is_public": st.booleans(),
    "data": rows | arrays,
    "train_data": st.lists(st.tuples(rows.map(lambda r: r[:1] or [[0.5]]), rows), max_size=2)
    | st.fixed_dictionaries({"inputs": arrays, "labels": arrays}),
    "response_format": st.sampled_from(["json", "binary"]),
    "end_time": st.sampled_from(["2999-01-01 00:00:00", "yesterday"]),
}
CONTENT_TYPES = ["application/json", "text/plain", "", "application/x-www-form-urlencoded"]


def field_names(operation: Operation[Any]) -> list[str]:
    return [field.name for field in msgspec.structs.fields(operation.request_type)]


@st.composite
def bodies(draw: st.DrawFn, operation: Operation[Any]) -> bytes:
    """A JSON object for `operation`, usually with alice's credentials, then maybe mangled."""
    body: dict[str, Any] = {}
    for field in field_names(operation):
        choice = draw(st.sampled_from(["plausible", "plausible", "any", "absent"]))
        if field in ("secret_id", "secret_key") and choice != "any":
            body[field] = ALICE[field]
        elif choice == "plausible":
            body[field] = draw(PLAUSIBLE.get(field, json_values))
        elif choice == "any":
            body[field] = draw(json_values)
    if operation.path == "/private/update_auth_token" and body.get("secret_id") == "alice":
        body["secret_id"] = "bob"  # alice's key must stay the one every example sends
    body.update(draw(st.dictionaries(texts, json_values, max_size=2)))
    ascii_only = draw(st.booleans())
    text = json.dumps(body, ensure_ascii=ascii_only)  # NaN and Infinity as Python writes them
    # Unescaped lone surrogates become bytes that are not UTF-8, as a careless client sends.
    encoded = text.encode("utf-8", "surrogatepass")
    return draw(mangled(encoded))


@st.composite
def mangled(draw: st.DrawFn, encoded: bytes) -> bytes:
    how = draw(st.sampled_from(["as is"] * 6 + ["bom", "cut", "byte", "deep", "not json"]))
    if how == "bom":
        return b"\xef\xbb\xbf" + encoded
    if how == "cut":
        return encoded[: draw(st.integers(0, len(encoded)))]
    if how == "byte":
        at = draw(st.integers(0, len(encoded)))
        return encoded[:at] + bytes([draw(st.integers(0x80, 0xFF))]) + encoded[at:]
    if how == "deep":
        levels = draw(st.sampled_from([63, 64, 65, 900, 20_000]))
        field = draw(st.sampled_from(["client_data", "data", "secret_id", "unknown"]))
        opener, closer = draw(st.sampled_from([("[", "]"), ('{"k":', "}")]))
        nested = opener * levels + "1" + closer * levels
        return encoded[:-1] + f',"{field}":{nested}}}'.encode() if len(encoded) > 2 else encoded
    if how == "not json":
        return draw(st.binary(max_size=40))
    return encoded


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    """One app per backend for every example, with alice and two of her models."""
    data_dir: Path = tmp_path_factory.mktemp("generated") / "data"
    options: dict[str, Any] = {"data_dir": data_dir, "system_key": SYSTEM_KEY, "torch_threads": 1}
    # Small bounds keep the models that generated creates may make tiny.
    options.update(max_in_size=8, max_out_size=8, max_body_bytes=1 << 20)
    url = None
    if request.param == "postgres":
        databases: PostgresDatabases = request.getfixturevalue("pg_databases")
        url = options["database_url"] = databases.create()
    with TestClient(create_app(Settings(**options))) as client:
        seed(client)
        yield client
    if url is not None:
        databases.drop_later(url)


def seed(client: TestClient) -> None:
    made = client.post(f"{PREFIX}/private/update_auth_token", json={"key": SYSTEM_KEY, **ALICE})
    assert made.status_code == 200
    for name in ("arm", "leg"):
        model = {"name": name, "app_name": "app", "model_type": "std", "in_size": 1, "out_size": 1}
        created = client.post(f"{PREFIX}/public/create_sgt_model", json={**ALICE, **model})
        assert created.status_code == 200, created.text


@settings(
    max_examples=EXAMPLES_PER_BACKEND,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_no_generated_body_is_an_internal_exception_or_a_5xx(
    served: TestClient, data: st.DataObject
) -> None:
    operation = data.draw(st.sampled_from(OPERATIONS), label="operation")
    body = data.draw(bodies(operation), label="body")
    content_type = data.draw(st.sampled_from(CONTENT_TYPES), label="content type")
    response = served.post(
        PREFIX + operation.path, content=body, headers={"Content-Type": content_type}
    )
    assert response.status_code in (200, 400), response.text
    answer = response.json()
    if response.status_code == 400:
        assert answer["exception"] in CONTRACT_NAMES, answer
        assert isinstance(answer["message"], str) and answer["message"]
    # What the examples reached, shown by `pytest --hypothesis-show-statistics`.
    event("200" if response.status_code == 200 else answer["exception"])
