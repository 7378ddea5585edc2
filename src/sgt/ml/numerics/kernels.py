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


def leading_variance_basis(
    inputs_scaled: torch.Tensor,
    signal: torch.Tensor,
    noise: float,
    family: str,
    *,
    tolerance: float,
    max_share: float,
) -> torch.Tensor | None:
    """P (rows, r) such that ‖k P‖² is the part of kᵀ(K + noise·I)⁻¹k that the r leading
    eigenvectors of K carry, for the smallest r (a sixteenth of the rows at a time, at most
    `max_share` of them) whose left-out part stays within `tolerance` of the predictive
    variance at every conditioning row; None when no such r exists.

    The left-out eigen-components only ever add explained variance, so a variance served through
    P is never below the exact one. At conditioning row j (k = K e_j) component i explains
    λᵢ² Uⱼᵢ² / (λᵢ + noise), and the predictive variance there is noise · (1 + Σᵢ Uⱼᵢ² λᵢ /
    (λᵢ + noise)): sums of non-negative terms, so both are exact even when the noise is tiny."""
    gram = covariance(inputs_scaled, inputs_scaled, signal, family)
    values, vectors = torch.linalg.eigh(gram)
    values, vectors = values.flip(0).clamp_min(0.0), vectors.flip(1)
    rows = gram.shape[0]
    squared = vectors.square()  # (conditioning row j, component i)
    explained = squared * (values.square() / (values + noise))
    left_out = explained.flip(1).cumsum(dim=1).flip(1)  # [j, i]: components i and after
    predictive = noise * (1.0 + (squared * (values / (values + noise))).sum(dim=1))
    for sixteenths in range(1, 17):
        rank = math.ceil(rows * sixteenths / 16)
        if rank > max_share * rows or rank >= rows:
            break
        if float((left_out[:, rank] / predictive).max()) <= tolerance:
            basis: torch.Tensor = vectors[:, :rank] / torch.sqrt(values[:rank] + noise)
            return basis
    return None
