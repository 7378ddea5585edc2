"""The forest candidate of `std`: randomised regression trees on bootstrap samples, averaged.

Each tree is grown on a bootstrap sample of the rows; a node tries one random threshold per input
(between the node's smallest and largest value, as in extremely randomised trees) and keeps the
one that most reduces the squared error of the standardised targets. Trees catch threshold
effects and interactions that the GP, ridge and MLP smooth over, which on tens of rows of tabular
data earns them a share of `std`'s blend. Trees are grown a batch at a time, level by level,
with tensor operations (`forest_trees`); they are served by walking all trees at once. The rows
a tree did not draw give out-of-bag validation residuals for free. Not offered as a model type
of its own: on its own it is rarely the best choice. Imports torch, numpy, `sgt.ml.base`,
`sgt.ml.checkpoints`, `sgt.ml.numerics` and `forest_trees`; never `sgt.ml.types` or the registry.
"""

from __future__ import annotations

import numpy as np
import torch

from sgt.ml.base import Family, ModelShape, ModelType, Predictor, TrainingProgress, TrainingRun
from sgt.ml.checkpoints import pack_checkpoint, read_checkpoint
from sgt.ml.families.forest_trees import ForestConfig, TreeBatch, grow_trees
from sgt.ml.numerics.fitting import MIN_ROWS_FOR_VALIDATION
from sgt.ml.numerics.standardiser import Standardiser

KIND = "forest"
# Walking trees gathers (rows x trees x outputs) values; predictions go in chunks of rows so that
# this stays below about 64 MB of float32.
_MAX_GATHERED = 1 << 24


class ForestPredictor(Predictor):
    """Mean over trees of the leaf each row reaches. Nodes of all trees share flat arrays; a leaf
    is its own child, so every row can take the same number of steps."""

    kind = KIND

    def __init__(
        self,
        *,
        shape: ModelShape,
        roots: torch.Tensor,
        feature: torch.Tensor,
        threshold: torch.Tensor,
        left: torch.Tensor,
        right: torch.Tensor,
        values: torch.Tensor,
        depth: int,
    ) -> None:
        self.shape = shape
        self.roots, self.feature, self.threshold = roots, feature, threshold
        self.left, self.right, self.values = left, right, values
        self.depth = depth
        self.device = str(values.device)

    def leaves(self, batch: torch.Tensor) -> torch.Tensor:
        """(rows, trees) index of the leaf each row reaches in each tree."""
        node = self.roots.expand(batch.shape[0], -1)
        for _ in range(self.depth):
            value = torch.gather(batch, 1, self.feature[node])
            node = torch.where(value <= self.threshold[node], self.left[node], self.right[node])
        return node

    def predict(self, inputs: np.ndarray) -> np.ndarray:
        rows = np.ascontiguousarray(inputs, dtype=np.float32)
        trees, outputs = self.roots.shape[0], self.values.shape[1]
        chunk = max(1, _MAX_GATHERED // max(1, trees * outputs))
        result = np.empty((rows.shape[0], outputs), dtype=np.float32)
        with torch.inference_mode():
            for begin in range(0, rows.shape[0], chunk):
                batch = torch.from_numpy(rows[begin : begin + chunk]).to(self.device)
                result[begin : begin + chunk] = (
                    self.values[self.leaves(batch)].mean(dim=1).cpu().numpy()
                )
        return result

    def to_bytes(self) -> bytes:
        payload = {
            "roots": self.roots.cpu(),
            "feature": self.feature.cpu(),
            "threshold": self.threshold.cpu(),
            "left": self.left.cpu(),
            "right": self.right.cpu(),
            "values": self.values.cpu(),
            "depth": self.depth,
        }
        return pack_checkpoint(
            kind=KIND, shape=self.shape, payload=payload, calibration=self.calibration
        )


def load_forest_payload(
    shape: ModelShape, payload: dict[str, object], *, device: str
) -> ForestPredictor:
    """Rebuild a `ForestPredictor` from a checkpoint payload."""
    tensors = {}
    for name in ("roots", "feature", "threshold", "left", "right", "values"):
        tensor = payload[name]
        assert isinstance(tensor, torch.Tensor)
        tensors[name] = tensor.to(device)
    depth = payload["depth"]
    assert isinstance(depth, int)
    return ForestPredictor(shape=shape, depth=depth, **tensors)


class ForestRun(TrainingRun):
    """Grows `trees_per_step` trees per step; converged once all are grown. A resumed forest is
    grown anew (trees do not warm-start); the start answers until then."""

    def __init__(
        self,
        *,
        shape: ModelShape,
        inputs: np.ndarray,
        targets: np.ndarray,
        start: Predictor | None,
        seed: int,
        device: str,
        config: ForestConfig,
    ) -> None:
        self.shape, self.config, self.device = shape, config, device
        self.targets_scaler = Standardiser.fit(targets, device="cpu")
        self._inputs = torch.as_tensor(np.ascontiguousarray(inputs, dtype=np.float32))
        self._targets = self.targets_scaler.apply(torch.as_tensor(targets).double()).double()
        self._generator = torch.Generator().manual_seed(seed)
        self._start = start if start is not None and start.shape == shape else None
        rows = self._inputs.shape[0]
        self._batches: list[tuple[TreeBatch, torch.Tensor]] = []
        self._grown = 0
        self._out_of_bag_sum = torch.zeros(rows, shape.out_size, dtype=torch.float64)
        self._out_of_bag_count = torch.zeros(rows, dtype=torch.float64)
        self._best: ForestPredictor | None = None
        self._steps = 0

    def step(self) -> TrainingProgress:
        rows = self._inputs.shape[0]
        has_improved = False
        if self._best is None and rows:
            trees = min(self.config.trees_per_step, self.config.trees - self._grown)
            sample = min(rows, self.config.max_rows)
            picks = torch.randint(rows, (trees, sample), generator=self._generator)
            draws = torch.zeros(trees, rows, dtype=torch.int64)
            draws.scatter_add_(1, picks, torch.ones_like(picks))
            batch, roots = grow_trees(
                self._inputs, self._targets, draws, config=self.config, generator=self._generator
            )
            self._batches.append((batch, roots))
            self._grown += trees
            self._add_out_of_bag(batch, roots, draws == 0)
            if self._grown >= self.config.trees:
                self._best = self._assemble()
                has_improved = True
        self._steps += 1
        loss = self._out_of_bag_loss()
        return TrainingProgress(
            steps=self._steps,
            train_loss=loss if loss is not None else 0.0,
            val_loss=loss,
            has_improved=has_improved,
            is_converged=self._best is not None or not rows,
        )

    def _add_out_of_bag(self, batch: TreeBatch, roots: torch.Tensor, unseen: torch.Tensor) -> None:
        standardised = _standardised_predictor(self.shape, batch, roots)
        predicted = standardised.values[standardised.leaves(self._inputs)]  # rows, trees, outs
        mask = unseen.T.to(torch.float64)  # rows, trees
        self._out_of_bag_sum += (predicted * mask.unsqueeze(2)).sum(dim=1)
        self._out_of_bag_count += mask.sum(dim=1)

    def _out_of_bag_loss(self) -> float | None:
        residuals = self.validation_residuals()
        if residuals is None:
            return None
        return float(np.mean(residuals[1] ** 2))

    def validation_residuals(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(row indices, out-of-bag residuals on standardised targets) of the rows some tree
        left out, once every tree is grown."""
        seen = torch.nonzero(self._out_of_bag_count > 0).squeeze(1)
        if self._best is None or not seen.numel():
            return None
        mean = self._out_of_bag_sum[seen] / self._out_of_bag_count[seen].unsqueeze(1)
        return seen.numpy(), (mean - self._targets[seen]).numpy()

    def _assemble(self) -> ForestPredictor:
        """One predictor over every batch, its leaf values in raw target units."""
        pieces: dict[str, list[torch.Tensor]] = {
            name: [] for name in ("roots", "feature", "threshold", "left", "right", "values")
        }
        offset = 0
        for batch, roots in self._batches:
            part = _standardised_predictor(self.shape, batch, roots)
            pieces["roots"].append(roots + offset)
            pieces["left"].append(part.left + offset)
            pieces["right"].append(part.right + offset)
            pieces["feature"].append(part.feature)
            pieces["threshold"].append(part.threshold)
            pieces["values"].append(part.values)
            offset += batch.size
        joined = {name: torch.cat(tensors).to(self.device) for name, tensors in pieces.items()}
        joined["values"] = self.targets_scaler.invert(joined["values"].to(torch.float32).cpu()).to(
            self.device
        )
        return ForestPredictor(
            shape=self.shape, depth=max(batch.depth for batch, _ in self._batches), **joined
        )

    def best(self) -> Predictor:
        if self._best is not None:
            return self._best
        return self._start if self._start is not None else FOREST.initial(self.shape, seed=0)


def _standardised_predictor(
    shape: ModelShape, batch: TreeBatch, roots: torch.Tensor
) -> ForestPredictor:
    return ForestPredictor(
        shape=shape,
        roots=roots,
        feature=batch.feature[: batch.size],
        threshold=batch.threshold[: batch.size],
        left=batch.left[: batch.size],
        right=batch.right[: batch.size],
        values=batch.values[: batch.size],
        depth=batch.depth,
    )


class ForestModelType(ModelType):
    name = "forest"
    description = "std's forest of randomised trees"

    def __init__(self, config: ForestConfig) -> None:
        self.config = config

    def parameter_count(self, shape: ModelShape) -> int:
        # Leaves hold at least min_leaf_rows distinct rows of at most max_rows, and a binary tree
        # has fewer nodes than twice its leaves; a node stores its values and its split.
        leaves = max(1, self.config.max_rows // self.config.min_leaf_rows)
        return self.config.trees * (2 * leaves) * (shape.out_size + 4)

    def initial(self, shape: ModelShape, *, seed: int) -> ForestPredictor:
        # One tree of one leaf predicting 0.
        single = torch.zeros(1, dtype=torch.int64)
        return ForestPredictor(
            shape=shape,
            roots=single,
            feature=single,
            threshold=torch.zeros(1),
            left=single,
            right=single,
            values=torch.zeros(1, shape.out_size),
            depth=0,
        )

    def load(self, data: bytes, *, device: str) -> ForestPredictor:
        return read_checkpoint(data, device=device, kind=KIND, load_payload=load_forest_payload)

    def start_training(
        self,
        shape: ModelShape,
        inputs: np.ndarray,
        targets: np.ndarray,
        *,
        start: Predictor | None,
        seed: int,
        device: str,
    ) -> ForestRun:
        return ForestRun(
            shape=shape,
            inputs=inputs,
            targets=targets,
            start=start,
            seed=seed,
            device=device,
            config=self.config,
        )


FOREST = ForestModelType(ForestConfig())
# Trees only ever serve in a blend (alone they are rarely the best family), and only on as many
# rows as one bootstrap sample holds.
FAMILY = Family(
    kind=KIND,
    model_type=FOREST,
    load_payload=load_forest_payload,
    min_rows=MIN_ROWS_FOR_VALIDATION,
    max_rows=FOREST.config.max_rows,
)
