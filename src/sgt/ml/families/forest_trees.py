"""Growing a batch of randomised regression trees at once, level by level, with tensor operations:
the training half of the forest family (`forest` serves and stores them). Imports torch only.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

# The split search gathers (pairs x inputs x outputs) values; inputs go in chunks so that this
# stays below about 64 MB of float64.
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
