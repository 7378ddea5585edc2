"""The forest candidate of `std`: randomised regression trees on bootstrap samples, averaged.

Each tree is grown on a bootstrap sample of the rows; a node tries one random threshold per input
(between the node's smallest and largest value, as in extremely randomised trees) and keeps the
one that most reduces the squared error of the standardised targets. Trees catch threshold
effects and interactions that the GP, ridge and MLP smooth over, which on tens of rows of tabular
data earns them a share of `std`'s blend. Trees are grown a batch at a time, level by level, with
tensor operations; they are served by walking all trees at once. The rows a tree did not draw
give out-of-bag validation residuals for free. Not offered as a model type of its own: on its own
it is rarely the best choice. Imports torch, numpy and this package.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from sgt.ml.base import ModelShape, ModelType, Predictor, TrainingProgress, TrainingRun
from sgt.ml.types.checkpoints import pack_checkpoint, unpack_checkpoint
from sgt.ml.types.standardiser import Standardiser

KIND = "forest"
# Walking trees gathers (rows x trees x outputs) values; predictions go in chunks of rows so that
# this stays below about 64 MB of float32.
_MAX_GATHERED = 1 << 24


@dataclass(frozen=True)
class ForestConfig:
    trees: int = 100
    trees_per_step: int = 25  # grown per training step, so a step stays short
    min_leaf_rows: int = 2  # distinct rows a leaf must hold
    max_depth: int = 24
    # Rows each bootstrap sample draws at most; with at least 2 rows per leaf it bounds a tree's
    # nodes, hence the parameter count.
    max_rows: int = 150


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
        return pack_checkpoint(kind=KIND, shape=self.shape, payload=payload)


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


class TreeBatch:
    """A batch of trees grown together, level by level. Node arrays are filled in order of
    creation; `values` are node means of the standardised targets."""

    def __init__(self, capacity: int, outputs: int) -> None:
        self.feature = torch.zeros(capacity, dtype=torch.int64)
        self.threshold = torch.zeros(capacity, dtype=torch.float32)
        self.left = torch.zeros(capacity, dtype=torch.int64)
        self.right = torch.zeros(capacity, dtype=torch.int64)
        self.values = torch.zeros(capacity, outputs, dtype=torch.float64)
        self.size = 0
        self.depth = 0

    def new_nodes(self, count: int) -> torch.Tensor:
        ids = torch.arange(self.size, self.size + count)
        self.left[ids] = ids  # a leaf until split
        self.right[ids] = ids
        self.size += count
        return ids


def grow_trees(
    inputs: torch.Tensor,
    targets: torch.Tensor,
    draws: torch.Tensor,
    *,
    config: ForestConfig,
    generator: torch.Generator,
) -> tuple[TreeBatch, torch.Tensor]:
    """Grow one tree per row of `draws` (trees, rows: how often each row is in its bootstrap
    sample) on float32 `inputs` and standardised float64 `targets`. Returns the trees and their
    roots."""
    trees, outputs = draws.shape[0], targets.shape[1]
    # A leaf holds at least one drawn row, so a tree has fewer nodes than twice those rows.
    batch = TreeBatch(trees * 2 * int((draws > 0).sum(dim=1).max()), outputs)
    roots = batch.new_nodes(trees)
    tree_of, row_of = torch.nonzero(draws, as_tuple=True)
    weight = draws[tree_of, row_of].to(torch.float64)
    node_of = roots[tree_of]  # each drawn (tree, row) pair's current node
    active = roots
    while active.numel():
        local = torch.full((batch.size,), -1, dtype=torch.int64)
        local[active] = torch.arange(active.numel())
        index = local[node_of]
        count = active.numel()
        x, weighted_y = inputs[row_of], weight.unsqueeze(1) * targets[row_of]
        node_weight = torch.zeros(count, dtype=torch.float64).index_add_(0, index, weight)
        node_sum = torch.zeros(count, outputs, dtype=torch.float64).index_add_(0, index, weighted_y)
        batch.values[active] = node_sum / node_weight.unsqueeze(1)
        if batch.depth >= config.max_depth:
            break
        split = _best_splits(x, weighted_y, weight, index, node_weight, node_sum, config, generator)
        feature, threshold, splits = split
        if not bool(splits.any()):
            break
        parents = active[splits]
        children = batch.new_nodes(2 * parents.numel()).view(-1, 2)
        batch.feature[parents] = feature[splits]
        batch.threshold[parents] = threshold[splits]
        batch.left[parents], batch.right[parents] = children[:, 0], children[:, 1]
        # Pairs in nodes that stay leaves are done; the others move to a child.
        keep = splits[index]
        chosen = feature[index[keep]].unsqueeze(1)
        goes_left = x[keep].gather(1, chosen).squeeze(1) <= threshold[index[keep]]
        node_of = torch.where(goes_left, batch.left[node_of[keep]], batch.right[node_of[keep]])
        row_of, weight = row_of[keep], weight[keep]
        active = children.reshape(-1)
        batch.depth += 1
    return batch, roots


def _best_splits(
    x: torch.Tensor,
    weighted_y: torch.Tensor,
    weight: torch.Tensor,
    index: torch.Tensor,
    node_weight: torch.Tensor,
    node_sum: torch.Tensor,
    config: ForestConfig,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For each node (pairs grouped by `index`): the input and random threshold that most
    reduce the squared error, and whether splitting there helps with big enough leaves."""
    count, width = node_weight.shape[0], x.shape[1]
    spread = index.unsqueeze(1).expand(-1, width)
    low = torch.full((count, width), torch.inf).scatter_reduce(0, spread, x, "amin")
    high = torch.full((count, width), -torch.inf).scatter_reduce(0, spread, x, "amax")
    uniform = torch.rand(count, width, generator=generator, dtype=torch.float64)
    threshold = (low + uniform * (high - low)).to(torch.float32)
    goes_left = x <= threshold[index]
    left_rows = torch.zeros(count, width, dtype=torch.float64).index_add_(
        0, index, goes_left.to(torch.float64)
    )
    node_rows = torch.bincount(index, minlength=count)
    left_weight = torch.zeros(count, width, dtype=torch.float64).index_add_(
        0, index, goes_left * weight.unsqueeze(1)
    )
    right_weight = node_weight.unsqueeze(1) - left_weight
    # Sum over outputs of (sum y)^2 / weight on both sides: the larger, the smaller the error.
    # Inputs go in chunks so that the (pairs x inputs x outputs) product stays small.
    gain = torch.empty(count, width, dtype=torch.float64)
    chunk = max(1, _MAX_GATHERED // max(1, x.shape[0] * weighted_y.shape[1]))
    for begin in range(0, width, chunk):
        columns = slice(begin, begin + chunk)
        left_sum = torch.zeros(
            count, goes_left[:, columns].shape[1], node_sum.shape[1], dtype=torch.float64
        ).index_add_(0, index, goes_left[:, columns].unsqueeze(2) * weighted_y.unsqueeze(1))
        right_sum = node_sum.unsqueeze(1) - left_sum
        gain[:, columns] = left_sum.square().sum(2) / left_weight[:, columns].clamp_min(
            1e-12
        ) + right_sum.square().sum(2) / right_weight[:, columns].clamp_min(1e-12)
    minimum = config.min_leaf_rows
    valid = (left_rows >= minimum) & (node_rows.unsqueeze(1) - left_rows >= minimum) & (high > low)
    gain = torch.where(valid, gain, -torch.inf)
    best_gain, feature = gain.max(dim=1)
    unsplit = node_sum.square().sum(1) / node_weight
    splits = torch.isfinite(best_gain) & (best_gain > unsplit * (1.0 + 1e-9) + 1e-12)
    return feature, threshold.gather(1, feature.unsqueeze(1)).squeeze(1), splits


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
        self._start = start if getattr(start, "shape", None) == shape else None
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
            for name in ("feature", "threshold", "values"):
                pieces[name].append(getattr(part, name))
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
        envelope = unpack_checkpoint(data, device=device, kind=KIND)
        return load_forest_payload(envelope.shape, envelope.payload, device=device)

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
