"""How the contract's operations appear in the OpenAPI document: each route's summary, request
and response schemas, and the schema components, all derived from the types the pipeline decodes
and encodes (so the document cannot drift from the wire). Must not import sgt.training.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterable
from typing import Any

import msgspec
from fastapi import FastAPI

from sgt.api.operations import Operation
from sgt.api.schemas import ErrorBody
from sgt.domain.client_data import MAX_CLIENT_DATA_DEPTH

REF_TEMPLATE = "#/components/schemas/{name}"
INPUT_RULES = (
    "Strings must be valid Unicode (no lone surrogates); names, app names and secret ids hold no "
    f"control characters, other text no NUL; client_data nests at most {MAX_CLIENT_DATA_DEPTH} "
    "levels and holds only finite numbers and 64-bit integers (docs/input_rules.md)."
)


def route_documentation(operation: Operation[Any], *, authenticated: bool) -> dict[str, Any]:
    """Keyword arguments for `add_api_route` that document `operation`."""
    return {
        "summary": operation.summary,
        "description": _describe(operation, authenticated=authenticated),
        "openapi_extra": {
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _schema_of(operation.request_type)}},
            }
        },
        "responses": {
            200: {
                "description": "Success: the documented result.",
                "content": {"application/json": {"schema": _schema_of(operation.response_type)}},
            },
            400: {
                "description": "Failure",
                "content": {"application/json": {"schema": _schema_of(ErrorBody)}},
            },
        },
    }


def install_components(app: FastAPI, operations: Iterable[Operation[Any]]) -> None:
    """Add the schemas the operations' bodies refer to under `components/schemas`."""
    bodies: list[Any] = [ErrorBody]
    for operation in operations:
        bodies += [operation.request_type, *_members(operation.response_type)]
    _, components = msgspec.json.schema_components(bodies, ref_template=REF_TEMPLATE)
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = build()
            document.setdefault("components", {}).setdefault("schemas", {}).update(components)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _schema_of(body_type: Any) -> dict[str, Any]:
    # A named body becomes a $ref into the components; lists and unions are written inline.
    # Union members are described one by one: msgspec refuses a union of several untagged
    # Structs as a whole (it could not decode one), though each encodes plainly.
    schemas = []
    for member in _members(body_type):
        [schema], _ = msgspec.json.schema_components([member], ref_template=REF_TEMPLATE)
        schemas.append(schema)
    return schemas[0] if len(schemas) == 1 else {"anyOf": schemas}


def _members(body_type: Any) -> tuple[Any, ...]:
    if isinstance(body_type, types.UnionType):
        return typing.get_args(body_type)
    return (body_type,)


def _describe(operation: Operation[Any], *, authenticated: bool) -> str:
    parts = []
    if authenticated:
        parts.append("Authenticates with `secret_id` and `secret_key` in the body.")
    if operation.exception:
        parts.append(f"Failures of this operation are reported as `{operation.exception}`.")
    parts.append(INPUT_RULES)
    text = " ".join(parts)
    return f"{text}\n\n{operation.notes}" if operation.notes else text
