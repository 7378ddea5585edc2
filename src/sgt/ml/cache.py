"""Loaded predictors kept in memory per process, keyed by model and checkpoint version.

A request looks up (model id, checkpoint version) read with the model row; a newer checkpoint
has a new version, so stale weights are never served and unchanged ones are never reloaded.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

from sgt.ml.base import Predictor

UNTRAINED_VERSION = 0


class ModelCache:
    """A bounded LRU map from model id to (checkpoint version, predictor); thread-safe."""

    def __init__(self, *, capacity: int, device: str) -> None:
        self.capacity = capacity
        self.device = device
        self._entries: OrderedDict[int, tuple[int, Predictor]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, model_id: int, version: int, load: Callable[[], Predictor]) -> Predictor:
        """The predictor of that version, calling `load` only when it is not in memory."""
        with self._lock:
            entry = self._entries.get(model_id)
            if entry is not None and entry[0] == version:
                self._entries.move_to_end(model_id)
                return entry[1]
        predictor = load()
        with self._lock:
            current = self._entries.get(model_id)
            # Two requests may load concurrently; never replace a newer version with an older one.
            if current is None or current[0] <= version:
                self._entries[model_id] = (version, predictor)
                self._entries.move_to_end(model_id)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)
        return predictor

    def forget(self, model_id: int) -> None:
        with self._lock:
            self._entries.pop(model_id, None)

    def __len__(self) -> int:
        return len(self._entries)
