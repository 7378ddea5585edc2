"""Batched MLP ensembles: K independent networks of one architecture evaluated in one matmul each.

Imports torch only. Weights are initialised from an explicit generator, never torch's global RNG,
so that runs in concurrent threads stay reproducible.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def ensemble_parameter_count(
    in_size: int, out_size: int, *, width: int, depth: int, members: int
) -> int:
    """Trainable parameters of an `EnsembleMlpNet`, computed without building it."""
    sizes = [in_size] + [width] * depth + [out_size]
    per_member = sum(
        fan_in * fan_out + fan_out for fan_in, fan_out in zip(sizes, sizes[1:], strict=False)
    )
    return members * per_member


class EnsembleMlpNet(nn.Module):
    """`members` MLPs with SiLU activations; forward gives every member's output, (K, n, out)."""

    def __init__(
        self, in_size: int, out_size: int, *, width: int, depth: int, members: int
    ) -> None:
        super().__init__()
        sizes = [in_size] + [width] * depth + [out_size]
        self.members = members
        self.weights = nn.ParameterList(
            nn.Parameter(torch.zeros(members, fan_in, fan_out))
            for fan_in, fan_out in zip(sizes, sizes[1:], strict=False)
        )
        self.biases = nn.ParameterList(
            nn.Parameter(torch.zeros(members, 1, fan_out)) for fan_out in sizes[1:]
        )

    def initialise(self, generator: torch.Generator) -> None:
        """He-scaled normal hidden weights; a small output layer so untrained outputs are near 0."""
        last = len(self.weights) - 1
        with torch.no_grad():
            for index, weight in enumerate(self.weights):
                fan_in = weight.shape[1]
                gain = 0.1 if index == last else math.sqrt(2.0)
                values = torch.randn(weight.shape, generator=generator) * (gain / math.sqrt(fan_in))
                weight.copy_(values)
            for bias in self.biases:
                bias.zero_()

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        # inputs: (n, in) shared by every member, or (K, n, in) one batch per member.
        hidden = inputs
        last = len(self.weights) - 1
        for index, (weight, bias) in enumerate(zip(self.weights, self.biases, strict=True)):
            hidden = (
                torch.baddbmm(bias, hidden, weight)
                if hidden.dim() == 3
                else torch.matmul(hidden, weight) + bias
            )
            if index != last:
                hidden = nn.functional.silu(hidden)
        return hidden

    def member_state(self, member: int) -> list[torch.Tensor]:
        """Copies of one member's tensors, in `weights` then `biases` order."""
        return [tensor[member].detach().clone() for tensor in [*self.weights, *self.biases]]

    def load_member_state(self, member: int, state: list[torch.Tensor]) -> None:
        """Overwrite one member's tensors with a `member_state` result."""
        with torch.no_grad():
            for tensor, values in zip([*self.weights, *self.biases], state, strict=True):
                tensor[member].copy_(values)

    def fold_affine_input(self, scale: torch.Tensor, shift: torch.Tensor) -> None:
        """Make the net compute f(x * scale + shift) from what was f(x); exact."""
        with torch.no_grad():
            first_weight, first_bias = self.weights[0], self.biases[0]
            first_bias.add_(torch.matmul(shift, first_weight).unsqueeze(1))
            first_weight.mul_(scale.view(1, -1, 1))

    def fold_affine_output(self, scale: torch.Tensor, shift: torch.Tensor) -> None:
        """Make the net compute f(x) * scale + shift from what was f(x); exact."""
        with torch.no_grad():
            last_weight, last_bias = self.weights[-1], self.biases[-1]
            last_weight.mul_(scale.view(1, 1, -1))
            last_bias.mul_(scale.view(1, 1, -1)).add_(shift.view(1, 1, -1))
