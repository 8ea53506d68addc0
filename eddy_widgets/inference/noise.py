"""The noise of a velocity map: independent pixels, or correlated over the beam.

astro-eddy's likelihood treats the pixels as independent. An interferometric
image is correlated over its beam, and so is the line-centre map made from
it: on beam-correlated mock maps (:mod:`eddy_widgets.mock`) the independent
68% interval held the truth about half of the time. ``noise='correlated'``
uses the residuals ``r = data - model`` on the fitted pixels with covariance

    C = S K S,    S = diag(dv0 * s),    K = (1 - a) B_w + a I,

``B_w`` a Gaussian of the beam's shape with its widths scaled by ``w`` (at
``w = 1`` the beam itself, at ``w = sqrt(2)`` its autocorrelation), ``a`` a
nugget and ``s`` a free noise scale (``noise_scale``): dv0 is the scatter only
when the channel rms and the smoothing it was made with are right. ``a`` and
``w`` (``noise_nugget``, ``noise_width``) are estimated once, from the
correlation of the residuals at lags of 1-3 pixels at the optimised start
(:func:`estimate_kernel`), and fixed for the run; the log-likelihood is

    log L = -0.5 u^T K^-1 u / s^2 - N log s + const,    u = r / dv0.

``u^T K^-1 u`` is taken by a block Vecchia approximation (Vecchia 1988;
Stein, Chi & Welty 2004, J. R. Stat. Soc. B 66, 275; grouping as in
Guinness 2018, Technometrics 60, 415): the fitted pixels are ordered tile by
tile (tiles of ``tile x tile`` pixels, in raster order), and each tile's
pixels are conditioned on the ``neighbours`` earlier pixels nearest to it in
the kernel's own metric. Then ``K^-1 = sum_b`` of one small dense factor per
tile, computed once per fit (the mask and ``K`` are fixed), and each
evaluation is two small batched matrix products per tile: exact gradients of
the approximation, cost linear in the pixels, the same on a CPU, emcee's
walker batch and a GPU. :func:`dense_quadratic` is the exact form, for the
tests (``tests/test_noise.py`` holds the approximation to it).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np

from ..model.beam import FWHM_TO_SIGMA

#: The noise models ``fit_map(..., noise=...)`` accepts.
NOISE_MODELS = ("independent", "correlated")
#: The nugget is kept at least this large: without one, K of a beam of a few
#: pixels is near-singular (condition number ~4e4 at 3 px FWHM).
MIN_NUGGET = 0.02
#: Lags [pixels] whose residual correlation the kernel is fitted to.
MAX_LAG = 3
#: Below this improvement of the fit to the lag correlations (the 0.1% point
#: of chi2 with 2 degrees of freedom) the residuals count as white: K = I.
WHITE_CHI2 = 13.8
#: What the coverage benchmark measured (benchmarks/bench_coverage.py,
#: docs/noise.md), said with every correlated fit.
CALIBRATION_NOTE = ("When the run ends its intervals are widened by the block "
                    "sandwich for the noise's correlation on large scales: on mock "
                    "bettermoments maps the 68% / 95% intervals then held the truth "
                    "71% / 96% of the time (~40% / ~70% before; docs/noise.md).")
#: Tile side [pixels] and conditioning pixels per tile of the Vecchia factor
#: (tests/test_noise.py: log-likelihood differences within 1% of the dense
#: evaluation's, Laplace widths within 2%, for a 3 x 2.4 pixel beam).
TILE = 4
NEIGHBOURS = 64


def beam_metric(bmaj: float, bmin: float, bpa: float, dpix: float) -> np.ndarray:
    """The 2 x 2 matrix ``M`` with ``lag^T M lag = (along / s_maj)^2 +
    (across / s_min)^2`` for a lag ``(rows, columns)`` in pixels: the beam's
    Gaussian is ``exp(-0.5 lag^T M lag)`` (rows run north, columns west, as
    :func:`~eddy_widgets.model.beam_kernel`)."""
    s_maj = bmaj * FWHM_TO_SIGMA / dpix
    s_min = bmin * FWHM_TO_SIGMA / dpix
    pa = np.radians(bpa)
    # along = north cos(pa) + east sin(pa), east = -column.
    u_along = np.array([np.cos(pa), -np.sin(pa)])
    u_across = np.array([-np.sin(pa), -np.cos(pa)])
    return (np.outer(u_along, u_along) / s_maj ** 2
            + np.outer(u_across, u_across) / s_min ** 2)


@dataclass(frozen=True)
class NoiseKernel:
    """``K = (1 - nugget) B_width + nugget I`` for a beam ``metric``
    (:func:`beam_metric`)."""

    nugget: float
    width: float
    metric: np.ndarray

    def correlation(self, drow, dcol) -> np.ndarray:
        """K at pixel lags ``(drow, dcol)`` (arrays of one shape)."""
        drow, dcol = np.asarray(drow, float), np.asarray(dcol, float)
        m = self.metric
        q = m[0, 0] * drow ** 2 + 2 * m[0, 1] * drow * dcol + m[1, 1] * dcol ** 2
        smooth = (1.0 - self.nugget) * np.exp(-0.5 * q / self.width ** 2)
        return smooth + self.nugget * ((drow == 0) & (dcol == 0))

    def correlated_pixels(self) -> float:
        """The sum of K over all lags: how many pixels one pixel's noise is
        shared with; the widths of an independent fit are ~sqrt of it too
        small."""
        half = int(np.ceil(5 * self.width / np.sqrt(np.linalg.eigvalsh(self.metric)[0])))
        lags = np.arange(-half, half + 1)
        dr, dc = np.meshgrid(lags, lags, indexing="ij")
        return float(self.correlation(dr, dc).sum())


def lag_correlations(z: np.ndarray, max_lag: int = MAX_LAG) -> dict:
    """The correlation of ``z`` (a map, NaN where not fitted) at each lag of a
    half-plane with ``max(|drow|, |dcol|) <= max_lag``: ``{(drow, dcol):
    (correlation, number of pairs)}``. Values beyond 5 robust sigma are
    clipped there first, so a few outliers do not set the variance."""
    z = np.array(z, dtype=float)
    good = np.isfinite(z)
    values = z[good]
    centre = np.median(values)
    sigma = 1.4826 * np.median(np.abs(values - centre)) or np.std(values) or 1.0
    z[good] = np.clip(values - centre, -5 * sigma, 5 * sigma)
    z[~good] = 0.0
    variance = np.sum(z * z) / max(good.sum(), 1)
    out = {}
    ny, nx = z.shape
    for dr in range(0, max_lag + 1):
        for dc in range(-max_lag, max_lag + 1):
            if dr == 0 and dc <= 0:
                continue
            a = z[0:ny - dr, max(0, -dc):nx - max(0, dc)]
            b = z[dr:, max(0, dc):nx - max(0, -dc) if dc < 0 else nx]
            b = b[:, :a.shape[1]]
            both = good[0:ny - dr, max(0, -dc):nx - max(0, dc)] & \
                good[dr:, max(0, dc):][:, :a.shape[1]]
            n = int(both.sum())
            if n:
                out[(dr, dc)] = (float(np.sum((a * b)[both]) / n / variance), n)
    return out


def estimate_kernel(z: np.ndarray, metric: np.ndarray,
                    max_lag: int = MAX_LAG) -> tuple[NoiseKernel, dict]:
    """Fit ``(nugget, width)`` of :class:`NoiseKernel` to the correlation of
    the normalised residual map ``z = (data - model) / dv0`` (NaN where not
    fitted) at lags of 1 to ``max_lag`` pixels, by least squares weighted by
    the number of pixel pairs: for each width on a grid, the amplitude
    ``1 - nugget`` is linear (closed form, kept in [0, 1 - MIN_NUGGET]).

    Returns the kernel and what was measured: ``{'lags': {lag: corr},
    'neighbour': (x, y) correlation at one pixel, 'pairs': ...}``.
    """
    measured = lag_correlations(z, max_lag)
    if not measured:
        raise ValueError("Too few fitted pixels to measure the correlation of "
                         "the residuals.")
    lags = np.array(list(measured), dtype=float)
    rho = np.array([measured[k][0] for k in measured])
    weight = np.array([measured[k][1] for k in measured], dtype=float)
    # Widths from where B_w reaches 0.1 at the nearest lag (narrower, it is
    # indistinguishable from the nugget: white noise then gives nugget 1).
    q_min = min(metric[0, 0], metric[1, 1])
    w_min = np.sqrt(q_min / (2 * np.log(10.0)))
    best = None
    for width in np.geomspace(w_min, max(4.0, 8 * w_min), 241):
        g = NoiseKernel(0.0, width, metric).correlation(lags[:, 0], lags[:, 1])
        norm = np.sum(weight * g * g)
        amp = np.sum(weight * rho * g) / norm if norm > 0 else 0.0
        amp = float(np.clip(amp, 0.0, 1.0 - MIN_NUGGET))
        cost = np.sum(weight * (rho - amp * g) ** 2)
        if best is None or cost < best[0]:
            best = (cost, width, amp)
    cost, width, amp = best
    # Pairs at a lag give a correlation of sd ~1/sqrt(pairs), so under white
    # noise sum(pairs * rho^2) - cost is ~chi2 with 2 degrees of freedom (the
    # fitted numbers): below its 0.1% point the correlation is noise, K = I.
    gain = float(np.sum(weight * rho * rho) - cost)
    if gain < WHITE_CHI2:
        amp, width = 0.0, 1.0
    kernel = NoiseKernel(1.0 - amp, float(width), np.asarray(metric, float))
    info = {"lags": {f"{int(r)},{int(c)}": round(v[0], 4) for (r, c), v in measured.items()},
            "neighbour": (measured.get((0, 1), (np.nan,))[0],
                          measured.get((1, 0), (np.nan,))[0]),
            "pairs": int(weight.sum()), "significance_chi2": round(gain, 1)}
    return kernel, info


# ----------------------------------------------------------------------------
# The block Vecchia factor
# ----------------------------------------------------------------------------

def vecchia_factor(rows, cols, kernel: NoiseKernel, tile: int = TILE,
                   neighbours: int = NEIGHBOURS, chunk: int = 4096) -> dict:
    """The block Vecchia factor of ``kernel`` on the pixels ``(rows, cols)``
    (in the order the likelihood sees them).

    Returns numpy arrays: ``block`` ``(nb, B)`` and ``cond`` ``(nb, m)``
    (pixel indices; the padding index is ``N``, a zero appended to the
    residuals), ``a`` ``(nb, B, m)`` = K_IJ K_JJ^-1 and ``linv`` ``(nb, B,
    B)``, the inverse Cholesky factor of K_II - K_IJ K_JJ^-1 K_JI, so that
    tile ``b``'s whitened residuals are ``linv[b] @ (u[block[b]] - a[b] @
    u[cond[b]])``; and ``logdet`` (a float), the approximation's log |K|.
    """
    from scipy.spatial import cKDTree

    rows, cols = np.asarray(rows, int), np.asarray(cols, int)
    n = rows.size
    order = np.lexsort((cols, rows, cols // tile, rows // tile))
    tiles = (rows[order] // tile) * (cols.max() // tile + 2) + cols[order] // tile
    starts = np.flatnonzero(np.r_[True, tiles[1:] != tiles[:-1]])
    ends = np.r_[starts[1:], n]
    size = int(np.max(ends - starts))
    m = min(int(neighbours), max(n - 1, 1))
    # The kernel's metric made Euclidean: |X_i - X_j|^2 = lag^T M lag.
    chol = np.linalg.cholesky(kernel.metric)
    pos = np.stack([rows[order], cols[order]], axis=1).astype(float)
    white = pos @ chol
    tree = cKDTree(white)
    nb = starts.size
    block = np.full((nb, size), n, dtype=np.int64)
    cond = np.full((nb, m), n, dtype=np.int64)
    # Each tile's conditioning pixels: the m earlier pixels nearest to any
    # of its pixels (in the kernel's metric).
    k = min(n, 2 * m + size)
    dist, near = tree.query(white, k=k)
    dist, near = np.atleast_2d(dist), np.atleast_2d(near)
    for b, (s, e) in enumerate(zip(starts, ends)):
        block[b, :e - s] = np.arange(s, e)
        idx, d = near[s:e].ravel(), dist[s:e].ravel()
        keep = idx < s
        idx, d = idx[keep], d[keep]
        first = np.unique(idx[np.argsort(d, kind="stable")], return_index=True)
        earlier = first[0][np.argsort(first[1])][:m]
        cond[b, :earlier.size] = earlier
    out = {"block": np.empty_like(block), "cond": np.empty_like(cond),
           "a": np.zeros((nb, size, m)), "linv": np.zeros((nb, size, size))}
    logdet = 0.0
    pad_pos = np.vstack([pos, [np.nan, np.nan]])
    for lo in range(0, nb, chunk):
        hi = min(nb, lo + chunk)
        bi, ci = block[lo:hi], cond[lo:hi]
        kii = _kernel_matrix(kernel, pad_pos[bi])
        kij = _kernel_matrix(kernel, pad_pos[bi], pad_pos[ci])
        kjj = _kernel_matrix(kernel, pad_pos[ci])
        a = np.linalg.solve(kjj, np.swapaxes(kij, 1, 2)).swapaxes(1, 2)
        schur = kii - a @ np.swapaxes(kij, 1, 2)
        lower = np.linalg.cholesky(0.5 * (schur + np.swapaxes(schur, 1, 2)))
        logdet += 2.0 * float(np.sum(np.log(np.diagonal(lower, axis1=1, axis2=2))))
        eye = np.broadcast_to(np.eye(size), lower.shape)
        out["linv"][lo:hi] = np.linalg.solve(lower, eye)
        out["a"][lo:hi] = a
    # Back to the likelihood's pixel order (the padding index stays n).
    to_original = np.r_[order, n]
    out["block"] = to_original[block]
    out["cond"] = to_original[cond]
    out["logdet"] = logdet
    return out


def _kernel_matrix(kernel: NoiseKernel, p, q=None) -> np.ndarray:
    """``K`` between the positions ``p`` ``(nb, i, 2)`` and ``q`` ``(nb, j,
    2)`` (``q=None``: ``p`` with itself). A NaN position (padding) is
    uncorrelated with everything, with unit variance, so it drops out."""
    square = q is None
    q = p if square else q
    d = p[:, :, None, :] - q[:, None, :, :]
    pad = np.isnan(d[..., 0])
    k = kernel.correlation(np.where(pad, 0.0, d[..., 0]), np.where(pad, 0.0, d[..., 1]))
    k = np.where(pad, 0.0, k)
    if square:
        diag = np.isnan(p[:, :, 0])
        idx = np.arange(p.shape[1])
        k[:, idx, idx] = np.where(diag, 1.0, k[:, idx, idx])
    return k


def vecchia_whiten(u, factor: dict):
    """The whitened residuals ``e`` ``(tiles, B)`` of ``u`` (the normalised
    residuals in the likelihood's pixel order) by the factor of
    :func:`vecchia_factor` (JAX): ``u^T K^-1 u = sum(e^2)``; element ``(b,
    i)`` belongs to pixel ``factor['block'][b, i]`` (0 for the padding)."""
    u = jnp.concatenate([u, jnp.zeros((1,), u.dtype)])
    resid = u[factor["block"]] - jnp.einsum("bij,bj->bi", factor["a"], u[factor["cond"]])
    return jnp.einsum("bij,bj->bi", factor["linv"], resid)


def vecchia_quadratic(u, factor: dict):
    """``u^T K^-1 u`` by the factor of :func:`vecchia_factor` (JAX; ``u`` the
    normalised residuals in the likelihood's pixel order)."""
    e = vecchia_whiten(u, factor)
    return jnp.sum(e * e)


def vecchia_quadratic_batch(u, factor: dict):
    """:func:`vecchia_quadratic` of each column of ``u`` ``(N, W)`` (emcee's
    walkers): one gather of whole rows, so each tile's product runs over all
    walkers at once (a vmap of the single form gathers walker by walker,
    ~5x slower on a CPU)."""
    u = jnp.concatenate([u, jnp.zeros((1, u.shape[1]), u.dtype)])
    resid = u[factor["block"]] - jnp.einsum("bij,bjw->biw", factor["a"],
                                            u[factor["cond"]])
    e = jnp.einsum("bij,bjw->biw", factor["linv"], resid)
    return jnp.sum(e * e, axis=(0, 1))


def dense_quadratic(u, rows, cols, kernel: NoiseKernel):
    """``(u^T K^-1 u, log|K|)`` by a dense Cholesky factorisation (JAX; the
    reference :func:`vecchia_quadratic` is tested against)."""
    rows, cols = np.asarray(rows, float), np.asarray(cols, float)
    k = kernel.correlation(rows[:, None] - rows[None], cols[:, None] - cols[None])
    lower = np.linalg.cholesky(k)
    import jax.scipy.linalg as jsl
    e = jsl.solve_triangular(jnp.asarray(lower), u, lower=True)
    return jnp.sum(e * e), 2.0 * float(np.sum(np.log(np.diag(lower))))


def noise_sentence(info: dict) -> str:
    """One sentence on the noise model of a fit (``settings['noise']``)."""
    estimated = info.get("estimated") or []
    how = ("estimated from the residuals at the optimised start" if estimated
           else "as given")
    clipped = info.get("clipped", 0)
    clip = (f"; {clipped} pixel{'s' if clipped != 1 else ''} with a peak S/N below "
            f"{info.get('noise_clip'):g} left out" if clipped else "")
    if info.get("noise_clip") is not None and info.get("peak_map", "") is None:
        clip += ("; no peak map (X_Fnu.fits and X_dFnu.fits beside the map, or "
                 "rotationmap(..., peak=...)), so no low-S/N pixel was left out: "
                 "expect outliers where the line is faint")
    return (f"Noise correlated over the beam ({how}): uncorrelated share "
            f"{info['nugget']:.2f}, width {info['width']:.2f} x the beam, "
            f"~{info['correlated_pixels']:.1f} pixels share each pixel's noise"
            f"{clip}. {CALIBRATION_NOTE}")


def correlated_noise(shape, kernel: NoiseKernel, rng) -> np.ndarray:
    """A draw of unit-variance noise with correlation ``kernel`` on a grid of
    ``shape``: white noise convolved with the Gaussian whose
    autocorrelation is ``B_w`` (widths / sqrt 2), rescaled, plus the
    nugget's white part. For tests and teaching; :mod:`eddy_widgets.mock`
    makes the realistic kind, through a line cube."""
    from scipy.signal import fftconvolve

    half = int(np.ceil(4 * kernel.width / np.sqrt(np.linalg.eigvalsh(kernel.metric)[0])))
    lags = np.arange(-half, half + 1)
    dr, dc = np.meshgrid(lags, lags, indexing="ij")
    m = kernel.metric
    q = m[0, 0] * dr ** 2 + 2 * m[0, 1] * dr * dc + m[1, 1] * dc ** 2
    g = np.exp(-q / kernel.width ** 2)          # B_w's square root: widths / sqrt 2
    g /= np.sqrt(np.sum(g * g))
    white = rng.standard_normal(np.add(shape, 2 * half))
    smooth = fftconvolve(white, g, mode="same")[half:-half or None, half:-half or None]
    return (np.sqrt(1.0 - kernel.nugget) * smooth
            + np.sqrt(kernel.nugget) * rng.standard_normal(shape))
