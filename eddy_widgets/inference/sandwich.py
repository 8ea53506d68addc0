"""Intervals that hold what they claim: the block sandwich adjustment.

The likelihood of a velocity map is never exactly right: its noise kernel is
estimated from lags of 1-3 pixels (:mod:`.noise`), or absent
(``noise='independent'``), while the parameters of a disk are set by its
large-scale pattern, so what decides their uncertainty is the noise's power on
scales of many beams. On mock bettermoments maps that power is larger than any
kernel fitted at short lags says, and the posterior's 68% intervals held the
truth ~40% of the time (docs/noise.md).

The estimate does not need the kernel to be right; its spread does. For an
estimator solving ``sum_i g_i(theta) = 0`` (``g_i`` the score contributions)
the covariance is the sandwich ``H^-1 J H^-1`` (Godambe 1960; White 1982),
``H`` the curvature of the log-likelihood and ``J`` the variance of the total
score. Under spatially correlated noise ``J`` is estimated from the scores
summed over blocks of the map many beams wide, treated as independent (the
window-subsampling / cluster estimator: Heagerty & Lumley 2000, J. R. Stat.
Soc. B 62, 89; Conley 1999, J. Econometrics 92, 1; :func:`block_covariance`).

The draws are then moved by the open-faced sandwich adjustment (Shaby 2014,
J. Comput. Graph. Stat. 23, 853): ``theta* = theta_hat + Omega (theta -
theta_hat)``, ``Omega = chol(V) chol(H^-1)^-1`` (``V = H^-1 J H^-1``), so
that their covariance is ``V`` while their shape (skewness, the prior's bounds'
effect) is the posterior's. ``theta_hat`` is the posterior's mode near the
median. The adjustment only widens (:func:`never_narrower`): a direction
where the block estimate is narrower than the posterior is the estimate's
error. The chains themselves (what the sampler made, its diagnostics and
trace plots) are kept unchanged; ``FitResult.samples`` and everything read
from it (percentiles, corner, returns) are the adjusted draws.

Under ``noise='correlated'`` the residuals are the Vecchia-whitened ones
(:func:`.noise.vecchia_factor`), each placed at its pixel; otherwise each
pixel's ``(data - model) / dv0``. ``noise_scale`` is held at
its mode (its draws are not moved): the sandwich does not depend on it.

Blocks are :data:`BLOCK_BEAMS` beam FWHM on a side. Measured on the coverage
benchmark's bettermoments maps (3-pixel beam, 12-pixel blocks): the 68% /
95% intervals held the truth 71% / 96%, 72% / 98% and 71% / 97% of the time
in its three noise regimes (40 + 15 + 15 maps; 35-41% / 68-71% before).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

#: Block side in beam FWHM (major axis).
BLOCK_BEAMS = 4.0
#: Fewest blocks per adjusted parameter: with fewer, J is too noisy, and the
#: blocks are made smaller (down to one beam) to reach it.
MIN_BLOCKS_PER_PARAMETER = 4


def block_covariance(jacobian: np.ndarray, residual: np.ndarray, rows, cols,
                     block: int) -> tuple[np.ndarray, np.ndarray, int]:
    """The block sandwich covariance of the estimate, the Laplace covariance
    ``H^-1`` and the number of blocks, for whitened residuals ``residual``
    ``(n,)`` with Jacobian ``jacobian`` ``(n, k)`` (``d residual / d
    theta``) at the estimate, element ``i`` placed at pixel ``(rows[i],
    cols[i])``, in square blocks of ``block`` pixels:

        V = H^-1 J H^-1,   J = G/(G-1) sum_b (S_b - mean)(S_b - mean)^T,

    ``S_b = sum_{i in b} g_i``, ``g_i = -e_i grad e_i`` (the score of ``-e_i^2
    / 2``), ``H = sum_i grad e_i grad e_i^T`` (Gauss-Newton; within 1% of the
    exact curvature at the mode on the coverage maps).

    Pairs of pixels across block borders and the share of the variance the
    fit absorbs are lost: on stationary beam-shaped noise (tests/test_sandwich.py)
    ``V`` is 0.74-0.85 of the exact variance. The delete-one-block jackknife,
    which corrects that there (0.92-0.96), gave 68% intervals holding the
    truth 80-90% of the time on the bettermoments mocks, whose noise has more
    power on large scales; these block sums 70-75% (docs/noise.md).
    """
    jacobian = np.asarray(jacobian, float)
    residual = np.asarray(residual, float)
    rows, cols = np.asarray(rows), np.asarray(cols)
    key = (rows // block) * (int(cols.max()) // block + 2) + cols // block
    _, which = np.unique(key, return_inverse=True)
    g = int(which.max()) + 1
    if g < 2:
        raise ValueError("one block holds every pixel: no variance of the score "
                         "can be measured")
    sums = np.zeros((g, jacobian.shape[1]))
    np.add.at(sums, which, -residual[:, None] * jacobian)
    sums -= sums.mean(axis=0)
    h_inv = np.linalg.inv(jacobian.T @ jacobian)
    return h_inv @ (sums.T @ sums * g / (g - 1)) @ h_inv, h_inv, g


@dataclass
class Sandwich:
    """The adjustment of one run (JSON-ready through :meth:`to_json`)."""

    names: list            #: the parameters moved (free, noise_scale left out)
    centre: list           #: theta_hat of those parameters
    omega: list            #: (k, k) matrix
    block: int             #: block side [pixels]
    blocks: int            #: number of blocks
    widening: list         #: sandwich sd / posterior (Laplace) sd, per parameter

    def to_json(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, d: dict) -> "Sandwich":
        return cls(**{k: d[k] for k in ("names", "centre", "omega", "block", "blocks",
                                        "widening")})

    def apply(self, samples: np.ndarray, names) -> np.ndarray:
        """``samples`` ``(n, ndim)`` (columns ``names``) with the adjusted
        parameters moved; the others as they are."""
        out = np.array(samples, dtype=float, copy=True)
        idx = [list(names).index(n) for n in self.names]
        centre = np.asarray(self.centre, float)
        out[:, idx] = centre + (out[:, idx] - centre) @ np.asarray(self.omega, float).T
        return out


def never_narrower(cov: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """``cov`` with every direction in which it is narrower than the
    posterior's covariance ``lower lower^T`` brought up to it: the
    adjustment widens, never narrows. Where the likelihood is right the
    block estimate scatters around it and, with a few blocks holding most of
    a parameter's information (x0, y0 near the centre), falls below it (on
    the bundled example's white noise: 0.74x for x0 and y0), so a narrower
    direction is the estimator's error, not the noise's."""
    inv = np.linalg.inv(lower)
    relative = inv @ cov @ inv.T
    values, vectors = np.linalg.eigh(0.5 * (relative + relative.T))
    relative = vectors @ np.diag(np.maximum(values, 1.0)) @ vectors.T
    return lower @ relative @ lower.T


def block_side(posterior, nparams: int) -> int:
    """Blocks of :data:`BLOCK_BEAMS` beams, smaller (to one beam, at least 2
    pixels) where fewer than ``MIN_BLOCKS_PER_PARAMETER x nparams`` blocks
    would hold the fitted pixels."""
    data = posterior.data
    beam = max(float(data.bmaj) / float(data.dpix), 0.5)
    rows, cols = posterior._rows, posterior._cols
    side = max(int(round(BLOCK_BEAMS * beam)), 2)
    smallest = max(int(round(beam)), 2)
    while side > smallest:
        key = np.unique((rows // side) * 100003 + cols // side)
        if key.size >= MIN_BLOCKS_PER_PARAMETER * nparams:
            break
        side -= 1
    return side


def block_sandwich(posterior, theta) -> Sandwich:
    """The adjustment for ``posterior`` at its mode ``theta`` (the free
    values, ``noise_scale`` included where the likelihood has it)."""
    names = [n for n in posterior.names if n != "noise_scale"]
    idx = jnp.asarray([posterior.names.index(n) for n in names])
    theta = jnp.asarray(theta, dtype=float)
    rows, cols = posterior.whitened_pixels()
    # Residuals in units of the noise the posterior assumes (dv0 x s), so
    # that H^-1 is the posterior's covariance (the draws' the adjustment
    # moves); V = H^-1 J H^-1 does not depend on s.
    scale = float(posterior.spec.noise_value("noise_scale", theta)) \
        if posterior.scaled else 1.0

    def of(sub):
        return posterior.whitened_residuals(theta.at[idx].set(sub)) / scale

    sub = theta[idx]
    residual = np.asarray(of(sub))
    jacobian = np.asarray(jax.jacfwd(of)(sub))
    side = block_side(posterior, len(names))
    cov, laplace, blocks = block_covariance(jacobian, residual, rows, cols, side)
    try:
        lower = np.linalg.cholesky(laplace)
        cov = never_narrower(cov, lower)
        omega = np.linalg.cholesky(cov) @ np.linalg.inv(lower)
    except np.linalg.LinAlgError:
        raise ValueError(f"the sandwich covariance over {blocks} blocks of {side} "
                         f"pixels is not positive definite (too few blocks for "
                         f"{len(names)} parameters, or a start away from the "
                         f"mode)") from None
    return Sandwich(names=names, centre=np.asarray(sub).tolist(), omega=omega.tolist(),
                    block=int(side), blocks=int(blocks),
                    widening=(np.sqrt(np.diag(cov) / np.diag(laplace))).tolist())


def sandwich_line(adjustment: Sandwich) -> str:
    """One line on the adjustment, for the summary table."""
    widening = np.asarray(adjustment.widening)
    return (f"Intervals widened by the block sandwich for the noise's correlation "
            f"on large scales ({adjustment.blocks} blocks of {adjustment.block} x "
            f"{adjustment.block} pixels): {widening.min():.1f}-{widening.max():.1f}x "
            f"the posterior's (docs/noise.md).")
