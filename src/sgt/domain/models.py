"""What a model is: its key, its spec, and the record the API shows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ModelKey:
    """A model is identified by its owner's secret_id, its app_name and its name."""

    owner: str
    app_name: str
    name: str

    def __str__(self) -> str:
        return f"'{self.name}' (app '{self.app_name}')"


# The models table keeps a type's parameter inside its `model_type` column, after this mark:
# "weights:4" is `weights` with max_influences 4 (docs/skinning.md, "Where max_influences is
# stored"). Type names never contain it.
TYPE_PARAMETER_MARK = ":"


@dataclass(frozen=True)
class ModelSpec:
    """What a model computes: its type and widths, and for `weights` the most non-zero entries
    a predicted row may have (None: no bound)."""

    model_type: str
    in_size: int
    out_size: int
    max_influences: int | None = None

    @property
    def stored_type(self) -> str:
        """The type as the models table stores it, with its parameter."""
        if self.max_influences is None:
            return self.model_type
        return f"{self.model_type}{TYPE_PARAMETER_MARK}{self.max_influences}"

    @classmethod
    def from_stored(cls, stored_type: str, in_size: int, out_size: int) -> ModelSpec:
        """The spec of a stored row (`stored_type` as `stored_type` wrote it)."""
        model_type, max_influences = split_stored_type(stored_type)
        return cls(model_type, in_size, out_size, max_influences)


def split_stored_type(stored_type: str) -> tuple[str, int | None]:
    """(type name, max_influences or None) of a stored `model_type` column."""
    name, mark, parameter = stored_type.partition(TYPE_PARAMETER_MARK)
    if not mark:
        return name, None
    if not parameter.isdigit():
        raise ValueError(f"stored model_type '{stored_type}' has an unreadable parameter")
    return name, int(parameter)


# The record's one definition: the eight fields of API.md, in the contract's order and with its
# names. The API encodes it as it is and derives its OpenAPI schema from it (the docstring is the
# schema's description), so the two cannot drift.
@dataclass(frozen=True)
class ModelRecord:
    """A model as `read_my_sgt_model` and `read_public_sgt_model` show it."""

    user_unique_id: str
    name: str
    client_data: Any
    app_name: str
    model_type: str
    in_size: int
    out_size: int
    is_public: bool

    @property
    def key(self) -> ModelKey:
        return ModelKey(owner=self.user_unique_id, app_name=self.app_name, name=self.name)

    @property
    def spec(self) -> ModelSpec:
        return ModelSpec(self.model_type, self.in_size, self.out_size)


@dataclass(frozen=True)
class ModelLimits:
    """Configured bounds on what a model may be."""

    max_in_size: int
    max_out_size: int
    max_parameters: int
    max_client_data_bytes: int
