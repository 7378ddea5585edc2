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


@dataclass(frozen=True)
class ModelSpec:
    """What a model computes: its type and widths."""

    model_type: str
    in_size: int
    out_size: int


@dataclass(frozen=True)
class ModelRecord:
    """A model as `read_my_sgt_model` and `read_public_sgt_model` show it."""

    key: ModelKey
    spec: ModelSpec
    client_data: Any
    is_public: bool

    def to_wire(self) -> dict[str, Any]:
        """The contract's record, with exactly its eight fields."""
        return {
            "user_unique_id": self.key.owner,
            "name": self.key.name,
            "client_data": self.client_data,
            "app_name": self.key.app_name,
            "model_type": self.spec.model_type,
            "in_size": self.spec.in_size,
            "out_size": self.spec.out_size,
            "is_public": self.is_public,
        }


@dataclass(frozen=True)
class ModelLimits:
    """Configured bounds on what a model may be."""

    max_in_size: int
    max_out_size: int
    max_parameters: int
    max_client_data_bytes: int
