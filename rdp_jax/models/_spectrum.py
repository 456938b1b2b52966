"""A symmetric eigendecomposition that gives the same bits on every machine (NumPy, float64).

LAPACK's `eigh` (NumPy's or XLA's) differs in the last bits from one machine to another: its
blocked kernels sum in an order set by the CPU and the BLAS. A one-shot codec prior built from
a model's Gaussian fit steers decoding (the prior's standard deviations set the rcc stream's
candidates), so it is computed here by the cyclic Jacobi method from IEEE 754 basic operations
only (+, −, ×, ÷ and √, which every conforming platform rounds identically), one NumPy ufunc
per operation (each result is rounded to float64 in memory, so no FMA contraction can happen),
in a fixed order, with no reduction whose summation order a kernel could choose.
"""

import functools

import numpy as np
from jaxtyping import Float

# The rotation of (p, q) is skipped once |a_pq| ≤ TOL·√|a_pp·a_qq| (Demmel & Veselić 1992):
# each eigenvalue of a positive definite matrix is then within a few TOL of itself, not only of
# λ_max.
TOL = 4 * np.finfo(np.float64).eps
# Quadratic convergence leaves nothing to rotate after ~10 sweeps at d ≤ 1000 (Golub & Van Loan
# §8.5.3); this bound only turns a failure into an error.
MAX_SWEEPS = 60


def _rounds(d: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The round-robin pairing: d − 1 rounds (d even) of disjoint pairs (p < q) that together
    visit every pair once per sweep; for odd d a phantom index d sits out one pair a round."""
    m = d + d % 2
    players = list(range(m))
    rounds = []
    for _ in range(m - 1):
        pairs = [
            (min(a, b), max(a, b))
            for a, b in zip(players[: m // 2], players[::-1][: m // 2], strict=True)
            if max(a, b) < d
        ]
        if pairs:
            rounds.append(tuple(np.array(side, np.intp) for side in zip(*pairs, strict=True)))
        players = [players[0], players[-1], *players[1:-1]]
    return rounds


def _geometric_mean(app: np.ndarray, aqq: np.ndarray) -> np.ndarray:
    """√|a_pp·a_qq|, also where the product overflows or underflows (entries beyond ~1e±154),
    as √|a_pp|·√|a_qq| there: the product alone would make every pair look converged (∞) or
    never converged (0). Elsewhere it is the product's root, bit for bit."""
    with np.errstate(over="ignore", under="ignore"):
        product = np.abs(app * aqq)
        either_zero = (app == 0) | (aqq == 0)
        exact = np.isfinite(product) & ((product >= np.finfo(np.float64).tiny) | either_zero)
        split = np.sqrt(np.abs(app)) * np.sqrt(np.abs(aqq))
    return np.where(exact, np.sqrt(product), split)


def portable_eigh(
    cov: Float[np.ndarray, "d d"],
) -> tuple[Float[np.ndarray, " d"], Float[np.ndarray, "d d"]]:
    """λ ascending and U orthogonal with Σ = U diag(λ) Uᵀ, the same bits on every machine.

    Cyclic Jacobi (Golub & Van Loan §8.5) in round-robin order: each round rotates d/2
    disjoint pairs at once. For a pair, θ = (a_qq − a_pp)/(2a_pq), t = sign(θ)/(|θ| + √(θ²+1)),
    c = 1/√(t²+1), s = t·c zero a_pq; rows p, q then columns p, q of A, and columns p, q of U,
    are rotated, and A's lower triangle is copied from its upper one (exact) so that rounding
    cannot make A drift from symmetry. It ends after a sweep that rotates nothing (`TOL`).

    **Arguments:** `cov` (d, d), symmetric (only its upper triangle is read), d ≥ 1.

    **Returns:** `(eigenvalues, eigenvectors)`, float64, eigenvalues ascending (ties in index
    order), eigenvector j in column j.

    **Raises:** `ValueError` naming `cov` when it is not a finite square matrix, or when
    Jacobi does not converge in `MAX_SWEEPS` sweeps.
    """
    a = np.asarray(cov, np.float64)
    if a.ndim != 2 or a.shape[0] != a.shape[1] or not a.size or not np.all(np.isfinite(a)):
        raise ValueError(f"portable_eigh: `cov` must be a finite square matrix, got {a.shape}.")
    d = a.shape[0]
    upper = np.triu(np.ones((d, d), bool), 1)
    a = np.where(upper.T, a.T, a)
    u = np.eye(d)
    rounds = _rounds(d)
    for _ in range(MAX_SWEEPS):
        rotated = False
        for p, q in rounds:
            app, aqq, apq = a[p, p], a[q, q], a[p, q]
            active = np.abs(apq) > TOL * _geometric_mean(app, aqq)
            if not np.any(active):
                continue
            rotated = True
            theta = (aqq - app) / np.where(active, 2.0 * apq, 1.0)
            t = np.where(theta >= 0, 1.0, -1.0) / (np.abs(theta) + np.sqrt(theta * theta + 1.0))
            t = np.where(active, t, 0.0)
            c = 1.0 / np.sqrt(t * t + 1.0)
            s = t * c
            rows_p, rows_q = a[p], a[q]
            a[p] = c[:, None] * rows_p - s[:, None] * rows_q
            a[q] = s[:, None] * rows_p + c[:, None] * rows_q
            for m in (a, u):
                cols_p, cols_q = m[:, p], m[:, q]
                m[:, p] = cols_p * c - cols_q * s
                m[:, q] = cols_p * s + cols_q * c
            a[p, q] = np.where(active, 0.0, a[p, q])
            a = np.where(upper.T, a.T, a)
        if not rotated:
            eigenvalues = np.diagonal(a).copy()
            order = np.argsort(eigenvalues, kind="stable")
            return eigenvalues[order], u[:, order]
    raise ValueError(f"portable_eigh: Jacobi did not converge on `cov` in {MAX_SWEEPS} sweeps.")


def cached_portable_eigh(
    cov: Float[np.ndarray, "d d"],
) -> tuple[Float[np.ndarray, " d"], Float[np.ndarray, "d d"]]:
    """`portable_eigh` of `cov` (as float64), computed once per covariance: the Jacobi sweeps
    cost O(d³) each (seconds at d = 256), and a model's spectrum serves every file coded
    against it. The arrays returned are read-only."""
    cov = np.asarray(cov, np.float64)
    if cov.ndim != 2:
        raise ValueError(f"portable_eigh: `cov` must be a finite square matrix, got {cov.shape}.")
    return _spectrum(cov.tobytes(), cov.shape[0], cov.shape[1])


@functools.lru_cache(maxsize=8)
def _spectrum(cov: bytes, rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    eigenvalues, eigenvectors = portable_eigh(np.frombuffer(cov, np.float64).reshape(rows, cols))
    eigenvalues.flags.writeable = eigenvectors.flags.writeable = False
    return eigenvalues, eigenvectors
