"""Exact Gaussian-process algebra in torch: RBF-ARD kernel, marginal likelihood, leave-one-out.

Everything here works in float64 on standardised data. Imports torch only.
"""

from __future__ import annotations

import math

import torch

# Added to the noise variance so a Cholesky factorisation exists even for noise-free targets.
JITTER = 1e-6


class KernelNotPositiveDefinite(ArithmeticError):
    """The kernel matrix could not be factorised even with added jitter."""


def squared_distances(left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """Pairwise squared Euclidean distances between rows, clamped at 0 against round-off."""
    cross = torch.matmul(left, right.T)
    distances = left.square().sum(dim=1, keepdim=True) + right.square().sum(dim=1) - 2.0 * cross
    return distances.clamp_min(0.0)


def covariance(
    left_scaled: torch.Tensor, right_scaled: torch.Tensor, signal: torch.Tensor, family: str
) -> torch.Tensor:
    """signal * k(|a - b|) for inputs already divided by their length scales; `family` is "rbf"
    (infinitely smooth) or "matern52" (twice differentiable, copes better with kinks)."""
    distances = squared_distances(left_scaled, right_scaled)
    if family == "rbf":
        return signal * torch.exp(-0.5 * distances)
    # The clamp keeps the gradient finite at zero distance (the diagonal).
    scaled = torch.sqrt(5.0 * distances.clamp_min(1e-12))
    return signal * (1.0 + scaled + scaled.square() / 3.0) * torch.exp(-scaled)


def factorise(
    inputs_scaled: torch.Tensor, signal: torch.Tensor, noise: torch.Tensor, family: str
) -> torch.Tensor:
    """Lower Cholesky factor of K + (noise + jitter) I, adding jitter until it exists."""
    gram = covariance(inputs_scaled, inputs_scaled, signal, family)
    eye = torch.eye(gram.shape[0], dtype=gram.dtype, device=gram.device)
    jitter = JITTER
    for _ in range(6):
        factor, info = torch.linalg.cholesky_ex(gram + (noise + jitter) * eye)
        if int(info) == 0:
            lower: torch.Tensor = factor
            return lower
        jitter *= 10.0
    raise KernelNotPositiveDefinite("kernel matrix is not positive definite")


def negative_log_likelihood(factor: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Negative log marginal likelihood per row and output, given the Cholesky factor."""
    rows, outputs = targets.shape
    weights = torch.cholesky_solve(targets, factor)
    fit = 0.5 * (targets * weights).sum() / outputs
    complexity = torch.log(torch.diagonal(factor)).sum()
    return (fit + complexity) / rows + 0.5 * math.log(2.0 * math.pi)


def leave_one_out_residuals(factor: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Each row's leave-one-out residual (rows, outputs), exact for fixed hyper-parameters."""
    weights = torch.cholesky_solve(targets, factor)
    eye = torch.eye(factor.shape[0], dtype=factor.dtype, device=factor.device)
    inverse_factor = torch.linalg.solve_triangular(factor, eye, upper=False)
    inverse_diagonal = inverse_factor.square().sum(dim=0)
    residuals: torch.Tensor = weights / inverse_diagonal.unsqueeze(1)
    return residuals
