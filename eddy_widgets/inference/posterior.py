"""The log-posterior of a rotation map: compiled, batched and differentiated.

A :class:`Posterior` binds a map, a :class:`FitSpec` and priors. It keeps only
the fitted pixels (``r_min <= r <= r_max``, finite data, error > 0, optional
azimuth and velocity limits, user mask), so one evaluation costs what those
pixels cost. With ``beam=True`` the model is evaluated on the whole grid
padded by the beam kernel's half-width, convolved with the beam, cropped and
then read at the fitted pixels.

The map's arrays (:attr:`Posterior.arrays`) reach the compiled programs as
arguments, never as constants: a program depends on the fit set-up and the
shapes only, so its compilation time and its entry in the persistent cache do
not grow with the map, and posteriors of one set-up on maps of one shape
share their programs (:func:`programs`).

Two parameterisations are offered:

- the *constrained* one, ``theta`` (the user's values, in ``spec.free`` order),
  used by emcee and the optimiser: :meth:`log_prob`, :meth:`log_prob_batch`,
  :meth:`value_and_grad`;
- an *unconstrained* one, ``u``, used by NUTS: each free parameter is mapped to
  the real line by the bijection of its prior's support (numpyro's
  ``biject_to``) and then shifted and scaled to order one by a
  :class:`Standardizer`. :meth:`potential` is minus the log-density in ``u``
  including the Jacobian.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import replace
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np

from ..model import (
    FLARED_NITER,
    beam_kernel,
    beam_padding,
    convolve_padded,
    padded_axes,
    v0_map,
    v0_model,
)
from ..model.pixels import pixel_coords, region_mask
from ..parameters import PARAMETERS
from .noise import (
    NoiseKernel,
    beam_metric,
    estimate_kernel,
    vecchia_factor,
    vecchia_quadratic,
    vecchia_quadratic_batch,
    vecchia_whiten,
)
from .priors import Prior
from .spec import FitInputError, FitSpec


def fit_mask(data, spec: FitSpec, theta) -> np.ndarray:
    """Boolean map of the pixels to fit, for the geometry at ``theta``.

    Uses astro-eddy's mask settings from ``spec.mask``: ``r_min``, ``r_max``,
    ``exclude_r``, ``phi_min``, ``phi_max`` (deg), ``exclude_phi``,
    ``abs_phi``, ``v_min``, ``v_max`` (m/s), ``exclude_v``, ``user_mask``.
    """
    m = spec.mask
    params = spec.model_params(np.asarray(theta, dtype=float))
    r, phi, _ = pixel_coords(data.xaxis, data.yaxis, params)
    region = region_mask(r, phi, 0.0 if m["r_min"] is None else m["r_min"],
                         np.inf if m["r_max"] is None else m["r_max"], m["exclude_r"],
                         m["phi_min"], m["phi_max"], m["exclude_phi"], m["abs_phi"])
    finite = np.isfinite(data.data) & np.isfinite(data.error) & (data.error > 0.0)
    with np.errstate(invalid="ignore"):
        v = data.data
        v_min = -np.inf if m["v_min"] is None else m["v_min"]
        v_max = np.inf if m["v_max"] is None else m["v_max"]
        keep_v = (v >= v_min) & (v <= v_max)
    keep_v = ~keep_v if m["exclude_v"] else keep_v
    mask = region & finite & keep_v
    clip = noise_clip(data, spec, mask)
    if clip is not None:
        mask &= ~clip
    if m["user_mask"] is not None:
        mask &= user_mask(m["user_mask"], mask.shape)
    return mask


def unusable_error_pixels(data, spec: FitSpec, theta) -> int:
    """How many pixels of the fitted region have a v0 but no usable dv0 (0,
    negative or NaN: left out of the fit, as astro-eddy does), filled
    pixels (``fill``) aside."""
    bad = ~(np.isfinite(data.error) & (data.error > 0.0)) & np.isfinite(data.data)
    if getattr(data, "fill", None) is not None:
        bad &= data.data != data.fill * (1000.0 if data.velocity_unit == "km/s"
                                         else 1.0)
    if not bad.any():
        return 0
    ones = replace(data, error=np.where(bad, 1.0, data.error)) \
        if hasattr(data, "__dataclass_fields__") else data
    return int((fit_mask(ones, spec, theta) & bad).sum())


def user_mask(user, shape) -> np.ndarray:
    """``params['user_mask']`` as booleans (True: fit the pixel), checked:
    booleans or numbers 0 and 1 on the map's grid. Anything else is refused
    rather than read as True (a float mask with NaN once fitted every
    pixel: NaN is truthy)."""
    user = np.asarray(user)
    if user.shape != tuple(shape):
        raise ValueError(f"user_mask has shape {user.shape} but the map is "
                         f"{tuple(shape)}.")
    if user.dtype == bool:
        return user
    if user.dtype.kind not in "iuf":
        raise ValueError(f"user_mask holds {user.dtype} values: give booleans "
                         f"(True: fit the pixel) or 0 / 1.")
    with np.errstate(invalid="ignore"):
        bad = ~((user == 0) | (user == 1))
    if bad.any():
        nan = int(np.isnan(user).sum()) if user.dtype.kind == "f" else 0
        example = user[bad].flat[0]
        raise ValueError(
            f"user_mask has {int(bad.sum())} value{'s' if bad.sum() > 1 else ''} "
            f"that are neither 0 nor 1 (e.g. {example!r}"
            f"{f'; {nan} NaN' if nan else ''}): give booleans (True: fit the "
            f"pixel) or 0 / 1, e.g. np.isfinite(mask) & (mask > 0).")
    return user == 1


def noise_clip(data, spec: FitSpec, mask) -> np.ndarray | None:
    """Under ``noise='correlated'``, the pixels of ``mask`` left out as low
    S/N before sampling: those whose peak S/N (bettermoments' ``Fnu /
    dFnu``, ``data.snr``), corrected by the scale of dv0 measured at the
    start (``noise_snr_scale``: dFnu is off by the factor dv0 is, as both
    come from the rms bettermoments was given), is below ``noise_clip`` or
    unknown (``None`` without a clip, a peak map or that scale).

    The quadratic method's line centre jumps to a noise spike at low S/N: on
    mock maps (:mod:`eddy_widgets.mock`, 3-pixel beam, independent
    channels) 12% of the pixels with peak S/N < 10 lie beyond 5 dv0, 5% at
    10-15, 1.3% at 15-20 and 0.4-0.7% above 20. dv0 does not find them: the
    spike makes a sharp peak, so the outliers' dv0 is typical (2.5% beyond
    5 dv0 in every dv0 quartile), and the S/N has to come from the peak
    map. Chosen by S/N, never by the residual, which would bias the noise
    scale low."""
    clip = spec.mask.get("noise_clip")
    scale = spec.mask.get("noise_snr_scale")
    if spec.noise != "correlated" or clip is None or scale is None \
            or data.snr is None or not mask.any():
        return None
    with np.errstate(invalid="ignore"):
        return mask & ~(data.snr / scale >= clip)


#: Above this many fitted pixels (no beam) the log-likelihood and its
#: gradient are taken block by block; at or below it (the standard problem:
#: 4,288 pixels) in one piece. Blocks are faster from here on: at 65,443
#: pixels (a 256^2 map) the gradient cost 1.8x per pixel the standard
#: problem's in one piece and 0.8x in blocks (benchmarks/bench_scale.py).
BLOCK_MIN_POINTS = 16384
#: With the beam the model on the whole grid is rematerialised block by block
#: under ``jax.checkpoint`` above this many points: it saves memory but
#: computes the model twice (at 256^2, 10 ms against 5.6 ms in one piece),
#: so only where the memory matters.
BEAM_BLOCK_MIN_POINTS = 65536
#: emcee's batch evaluates its walkers together (``vmap``) while walkers x
#: the map's largest array hold at most this many points; beyond it in
#: groups of that size (``lax.map`` with a ``batch_size``), so the batch's
#: memory stops growing with the number of walkers (16 walkers on a 2048^2
#: map: groups of one, each walker's intermediate arrays in turn).
BATCH_POINTS = 4 * 1024 * 1024
#: Points per block: small enough that one block's intermediate arrays stay
#: in the CPU's caches.
BLOCK_POINTS = 8192


def model_points(x, y, params: dict, niter: int = FLARED_NITER):
    """Model v0 [m/s] at sky offsets ``x``, ``y`` (any equal shape), as
    :func:`~eddy_widgets.model.v0_model` (unrolled, for gradients).

    Above :data:`BEAM_BLOCK_MIN_POINTS` points the model runs over blocks of
    :data:`BLOCK_POINTS` (``jax.lax.map``), each under ``jax.checkpoint``:
    reverse mode then keeps the inputs of each block and recomputes its
    intermediate arrays (about 50 per point for a flared surface) one block
    at a time while taking the gradient, so memory no longer grows with them.
    Each point's value is computed by the same expression either way.
    """
    if x.size <= BEAM_BLOCK_MIN_POINTS:
        return v0_model(x, y, params, niter)
    shape, n = x.shape, x.size
    nblock = -(-n // BLOCK_POINTS)
    pad = nblock * BLOCK_POINTS - n

    def blocks(a):
        # Padded with the last point (a real position: finite model), cut after.
        return jnp.pad(a.ravel(), (0, pad), mode="edge").reshape(nblock, BLOCK_POINTS)

    @partial(jax.checkpoint, prevent_cse=False)
    def block(xy):
        return v0_model(xy[0], xy[1], params, niter)

    v0 = jax.lax.map(block, (blocks(x), blocks(y)))
    return v0.reshape(-1)[:n].reshape(shape)


class Standardizer:
    """Affine map ``u = (w - centre) / scale`` on the unconstrained space."""

    def __init__(self, centre, scale):
        self.centre = jnp.asarray(centre, dtype=float)
        self.scale = jnp.asarray(scale, dtype=float)


class Posterior:
    """Log-posterior of a rotation map for one fit set-up.

    Args:
        data: a :class:`~eddy_widgets.data.RotationMapData`.
        spec: free/fixed parameters and mask settings.
        priors: prior of each free parameter (others are ignored).
        theta_mask: free-parameter values whose geometry defines the mask.
        niter: fixed-point iterations of the flared surface.
    """

    def __init__(self, data, spec: FitSpec, priors: dict[str, Prior], theta_mask,
                 niter: int = FLARED_NITER):
        self.data = data
        self.spec = spec
        self.priors = [priors[name] for name in spec.free]
        self.niter = niter
        self.mask = fit_mask(data, spec, theta_mask)
        self.npix = int(self.mask.sum())
        if self.npix == 0:
            raise ValueError("No pixel is left to fit: check r_min / r_max, the "
                             "phi and velocity limits, x0 / y0 and the uncertainty map.")
        self.beam = bool(spec.mask.get("beam", False))
        x_sky, y_sky = np.meshgrid(data.xaxis, data.yaxis)
        rows, cols = np.nonzero(self.mask)
        self._rows, self._cols = rows, cols
        #: The map's arrays, passed to the compiled programs as arguments.
        self.arrays = {"x": jnp.asarray(x_sky[rows, cols]),
                       "y": jnp.asarray(y_sky[rows, cols]),
                       "data": jnp.asarray(data.data[rows, cols]),
                       "ivar": jnp.asarray(data.error[rows, cols] ** -2.0)}
        #: Whether the likelihood has a noise scale (``noise='correlated'``)
        #: and whether it uses the correlated kernel (once its numbers are
        #: known: before, at the optimisation that finds them, pixels are
        #: taken as independent).
        self.scaled = spec.noise == "correlated"
        self.kernel = noise_kernel(data, spec) if self.scaled else None
        self.correlated = self.kernel is not None
        if self.correlated:
            factor = vecchia_factor(rows, cols, self.kernel)
            self.logdet = factor.pop("logdet")
            self.arrays["vecchia"] = {k: jnp.asarray(v) for k, v in factor.items()}
        if self.beam:
            # The model on the grid padded by the kernel's half-width, so that
            # the border is convolved with the model beyond the field.
            kernel = jnp.asarray(beam_kernel(data.bmaj, data.bmin, data.bpa, data.dpix))
            x_grid, y_grid = np.meshgrid(*padded_axes(data.xaxis, data.yaxis,
                                                      beam_padding(kernel)))
            self.arrays.update(x_grid=jnp.asarray(x_grid), y_grid=jnp.asarray(y_grid),
                               kernel=kernel,
                               rows=jnp.asarray(rows), cols=jnp.asarray(cols))
            del self.arrays["x"], self.arrays["y"]
        self._bijections = None
        self.standardizer = Standardizer(np.zeros(spec.ndim), np.ones(spec.ndim))
        #: The compiled programs of this set-up, shared with every posterior
        #: of the same set-up (each takes the arrays as its first argument).
        self.programs = programs(self)
        self.log_prob_jit = partial(self.programs.log_prob, self.arrays)
        self.log_prob_batch = partial(self.programs.log_prob_batch, self.arrays)
        self.value_and_grad = partial(self.programs.value_and_grad, self.arrays)
        # Compiled on first use (the bijections are built lazily too).
        self._bijection_jit = jax.jit(self._bijection_vector)
        self._inverse_jit = jax.jit(self._inverse_vector)

    @property
    def _d(self):
        return self.arrays["data"]

    @property
    def _ivar(self):
        return self.arrays["ivar"]

    @property
    def _kernel(self):
        return self.arrays.get("kernel")

    # -- Constrained space -----------------------------------------------------

    @property
    def names(self) -> tuple[str, ...]:
        return self.spec.free

    def model_pixels(self, theta, value_only: bool = False, arrays=None):
        """Model v0 [m/s] at the fitted pixels (of ``arrays``, by default
        :attr:`arrays`; compiled programs pass them as an argument).

        ``value_only=True`` builds the program for when no gradient is taken
        (emcee, the reported log-probability): the fixed-point loop is rolled
        and the geometry runs in float32 (velocities to ~1 mm/s, far below
        any map's noise), 3-4x faster on a CPU. Gradients always use float64.
        """
        a = self.arrays if arrays is None else arrays
        if value_only:
            theta = jnp.asarray(theta).astype(jnp.float32)
        params = self.spec.model_params(theta)
        if self.beam:
            x, y = a["x_grid"], a["y_grid"]
        else:
            x, y = a["x"], a["y"]
        if value_only:
            x, y = x.astype(jnp.float32), y.astype(jnp.float32)
            v0 = v0_model(x, y, params, self.niter, rolled=True).astype(float)
        else:
            v0 = model_points(x, y, params, self.niter)
        if self.beam:
            return convolve_padded(v0, a["kernel"])[a["rows"], a["cols"]]
        return v0

    def log_likelihood(self, theta, value_only: bool = False, arrays=None):
        """``-0.5 * sum(ivar * (data - model)^2)`` over the fitted pixels
        (residuals and sum in float64); with ``noise='correlated'``
        ``-0.5 u^T K^-1 u / s^2 - N log s``, ``u = (data - model) / dv0``
        (:mod:`~eddy_widgets.inference.noise`)."""
        a = self.arrays if arrays is None else arrays
        if self.correlated:
            u = (a["data"] - self.model_pixels(theta, value_only, a)) * jnp.sqrt(a["ivar"])
            return self._scaled(theta, -0.5 * vecchia_quadratic(u, a["vecchia"]), a)
        if not (value_only or self.beam) and a["x"].size > BLOCK_MIN_POINTS:
            return self._scaled(theta, self._blocked_log_likelihood(theta, a), a)
        resid = a["data"] - self.model_pixels(theta, value_only, a)
        return self._scaled(theta, -0.5 * jnp.sum(a["ivar"] * resid * resid), a)

    def whitened_residuals(self, theta):
        """The residuals whose squares the log-likelihood sums (before the
        noise scale): ``(data - model) / dv0`` of each fitted pixel, or under
        ``noise='correlated'`` their Vecchia-whitened values (flat, padding
        included as zeros); :meth:`whitened_pixels` places them."""
        a = self.arrays
        u = (a["data"] - self.model_pixels(theta)) * jnp.sqrt(a["ivar"])
        return vecchia_whiten(u, a["vecchia"]).ravel() if self.correlated else u

    def whitened_pixels(self) -> tuple[np.ndarray, np.ndarray]:
        """``(rows, cols)`` of each element of :meth:`whitened_residuals`
        (a padding element: its tile's first pixel)."""
        if not self.correlated:
            return self._rows, self._cols
        tiles = np.asarray(self.arrays["vecchia"]["block"])
        pixel = np.where(tiles < self.npix, tiles, tiles[:, :1]).ravel()
        return self._rows[pixel], self._cols[pixel]

    def _scaled(self, theta, log_like, a):
        """``log_like / s^2 - N log s`` with the noise scale ``s``
        (``noise_scale``) under ``noise='correlated'``; as is otherwise."""
        if not self.scaled:
            return log_like
        s = self.spec.noise_value("noise_scale", theta)
        return log_like / s ** 2 - a["data"].size * jnp.log(s)

    def _blocked_log_likelihood(self, theta, a):
        """:meth:`log_likelihood` (float64, no beam) summed block by block.

        Under reverse mode each block's value and gradient are taken together
        inside the loop over blocks, so no per-pixel intermediate outlives
        its block and nothing is computed twice; the gradient is the sum of
        the blocks' gradients. Padding pixels carry ``ivar = 0``.
        """
        n = a["x"].size
        nblock = -(-n // BLOCK_POINTS)
        pad = nblock * BLOCK_POINTS - n
        blocks = tuple(
            jnp.pad(a[k], (0, pad), mode="constant" if k == "ivar" else "edge")
            .reshape(nblock, BLOCK_POINTS) for k in ("x", "y", "data", "ivar"))
        niter, spec = self.niter, self.spec

        def block_ll(theta, block):
            x, y, data, ivar = block
            resid = data - v0_model(x, y, spec.model_params(theta), niter)
            return -0.5 * jnp.sum(ivar * resid * resid)

        @jax.custom_vjp
        def total(theta, blocks):
            return jnp.sum(jax.lax.map(partial(block_ll, theta), blocks))

        def total_fwd(theta, blocks):
            values, grads = jax.lax.map(
                partial(jax.value_and_grad(block_ll), theta), blocks)
            return jnp.sum(values), jnp.sum(grads, axis=0)

        def total_bwd(grad, cotangent):
            return cotangent * grad, None

        total.defvjp(total_fwd, total_bwd)
        return total(theta, blocks)

    def log_prob_correlated_batch(self, thetas, arrays, group=None):
        """:meth:`log_prob` (``value_only``) of each row of ``thetas`` under
        the correlated likelihood: the walkers' residuals first, then one
        quadratic form over all of them
        (:func:`~eddy_widgets.inference.noise.vecchia_quadratic_batch`)."""
        a = arrays
        weight = jnp.sqrt(a["ivar"])

        def resid(t):
            return (a["data"] - self.model_pixels(t, True, a)) * weight
        if group is None or group >= thetas.shape[0]:
            u = jax.vmap(resid)(thetas)
        else:   # memory, as the independent batch (BATCH_POINTS)
            u = jax.lax.map(resid, thetas, batch_size=group)
        quad = vecchia_quadratic_batch(u.T, a["vecchia"])
        ll = jax.vmap(lambda t, q: self._scaled(t, -0.5 * q, a))(thetas, quad)
        lp = jax.vmap(self.log_prior)(thetas)
        return jnp.where(jnp.isfinite(lp) & jnp.isfinite(ll), lp + ll, -jnp.inf)

    def log_prior(self, theta):
        return sum(prior.log_density(theta[i]) for i, prior in enumerate(self.priors))

    def log_prob(self, theta, value_only: bool = False, arrays=None):
        """Log-posterior (up to a constant); ``-inf`` outside the prior support.
        Pass ``value_only=True`` where no gradient is taken (see
        :meth:`model_pixels`)."""
        theta = jnp.asarray(theta)
        lp = self.log_prior(theta)
        ll = self.log_likelihood(theta, value_only, arrays)
        total = lp + ll
        return jnp.where(jnp.isfinite(lp) & jnp.isfinite(ll), total, -jnp.inf)

    def log_prob_numpy(self, thetas: np.ndarray) -> np.ndarray:
        """Batch log-posterior for emcee: ``(n, ndim)`` -> ``(n,)`` numpy."""
        return np.asarray(self.log_prob_batch(jnp.asarray(thetas, dtype=float)))

    def model_map(self, theta) -> np.ndarray:
        """Model v0 map [m/s] on the whole grid of the data."""
        params = self.spec.model_params(jnp.asarray(theta, dtype=float))
        kernel = self._kernel if self.beam else None
        return np.asarray(v0_map(self.data.xaxis, self.data.yaxis, params, kernel,
                                 self.niter))

    def in_support(self, theta) -> list[str]:
        """Names of the free parameters whose value lies outside its prior."""
        return [name for name, prior, v in zip(self.names, self.priors, theta)
                if not prior.contains(float(v))]

    # -- Unconstrained space (NUTS) --------------------------------------------

    @property
    def bijections(self):
        if self._bijections is None:
            from numpyro.distributions.transforms import biject_to
            self._distributions = [p.distribution() for p in self.priors]
            self._bijections = [biject_to(d.support) for d in self._distributions]
        return self._bijections

    def unbounded(self) -> list[str]:
        """Free parameters whose flat prior has an infinite bound."""
        return [n for n, p in zip(self.names, self.priors) if not p.bounded]

    def set_standardizer(self, centre, scale) -> None:
        """Set the affine rescaling of the unconstrained space (see module doc)."""
        self.standardizer = Standardizer(centre, scale)

    def _bijection_vector(self, w):
        """Each prior's bijection at its own coordinate: ``(theta, log|J|)``."""
        x = [t(w[i]) for i, t in enumerate(self.bijections)]
        log_det = [t.log_abs_det_jacobian(w[i], xi)
                   for i, (t, xi) in enumerate(zip(self.bijections, x))]
        return jnp.stack(x), jnp.stack(log_det)

    def _inverse_vector(self, theta):
        return jnp.stack([t.inv(theta[i]) for i, t in enumerate(self.bijections)])

    def bijection(self, w) -> tuple[np.ndarray, np.ndarray]:
        """``(theta, log|J|)`` of plain unconstrained ``w`` (numpy, compiled once)."""
        x, log_det = self._bijection_jit(jnp.asarray(w, dtype=float))
        return np.asarray(x), np.asarray(log_det)

    def to_unconstrained(self, theta) -> np.ndarray:
        """Constrained ``theta`` -> standardised unconstrained ``u``."""
        w = self._inverse_jit(jnp.asarray(theta, dtype=float))
        return np.asarray((w - self.standardizer.centre) / self.standardizer.scale)

    def to_constrained(self, u, centre=None, scale=None):
        """Standardised unconstrained ``u`` -> constrained ``theta`` (JAX).

        ``centre`` and ``scale`` default to the current standardiser; compiled
        code passes them as arguments so that the program does not depend on
        their values (and a compiled program can be reused from the cache).
        """
        centre = self.standardizer.centre if centre is None else centre
        scale = self.standardizer.scale if scale is None else scale
        return self._bijection_vector(centre + scale * u)[0]

    def potential(self, u, centre=None, scale=None, arrays=None):
        """Minus the log-density of ``u``: NUTS' potential energy (see
        :meth:`to_constrained` for ``centre`` and ``scale``, :meth:`model_pixels`
        for ``arrays``)."""
        centre = self.standardizer.centre if centre is None else centre
        scale = self.standardizer.scale if scale is None else scale
        theta, log_det = self._bijection_vector(centre + scale * u)
        log_prior = sum(d.log_prob(theta[i]) for i, d in enumerate(self._distributions))
        # The constant log|scale| of the standardisation is dropped.
        return -(self.log_likelihood(theta, arrays=arrays) + log_prior
                 + jnp.sum(log_det))


# ----------------------------------------------------------------------------
# Compiled programs, shared between posteriors of one set-up
# ----------------------------------------------------------------------------

#: Programs of the most recent set-ups (a set-up is what is free, the fixed
#: values, the priors, the surface iterations and the beam switch).
_PROGRAMS: OrderedDict = OrderedDict()
_MAX_SETUPS = 16


def programs(posterior: Posterior) -> SimpleNamespace:
    """The compiled programs of ``posterior``'s set-up, each taking the map's
    arrays (:attr:`Posterior.arrays`) as its first argument:

    - ``log_prob(arrays, theta)`` and ``log_prob_batch(arrays, thetas)``
      (``value_only``, for emcee and reports);
    - ``value_and_grad(arrays, theta)`` (float64 throughout);
    - ``potential(arrays, u, centre, scale)`` (NUTS' potential energy).

    Posteriors of the same set-up share them, so a second map of the same
    shape runs without compiling anything.
    """
    setup = _setup_of(posterior)
    try:
        key = _setup_key(posterior)
        hash(key)
    except TypeError:  # an unhashable fixed value or surface: not shared
        return _compile(setup)
    found = _PROGRAMS.get(key)
    if found is None:
        found = _PROGRAMS[key] = _compile(setup)
        while len(_PROGRAMS) > _MAX_SETUPS:
            _PROGRAMS.popitem(last=False)
    _PROGRAMS.move_to_end(key)
    return found


def _setup_key(posterior: Posterior) -> tuple:
    spec = posterior.spec
    fixed = tuple(sorted((k, type(v).__name__, v) for k, v in spec.fixed.items()))
    # The kernel's numbers reach the programs through the arrays (its factor).
    fixed = tuple(f for f in fixed if f[0] not in ("noise_nugget", "noise_width"))
    return (spec.free, fixed, spec.z_func, tuple(posterior.priors), posterior.niter,
            posterior.beam, posterior.scaled, posterior.correlated)


def _setup_of(posterior: Posterior) -> Posterior:
    """A posterior without its map: what the shared programs close over."""
    setup = object.__new__(Posterior)
    setup.data, setup.arrays, setup.mask = None, None, None
    setup.spec = replace(posterior.spec, mask={"noise": posterior.spec.noise})
    setup.priors, setup.niter = posterior.priors, posterior.niter
    setup.beam = posterior.beam
    setup.scaled, setup.correlated = posterior.scaled, posterior.correlated
    setup._bijections = None
    setup.standardizer = Standardizer(np.zeros(setup.spec.ndim),
                                      np.ones(setup.spec.ndim))
    return setup


def _compile(setup: Posterior) -> SimpleNamespace:
    def value(arrays, theta):
        return setup.log_prob(theta, value_only=True, arrays=arrays)

    def log_prob(arrays, theta):
        return setup.log_prob(theta, arrays=arrays)

    def potential(arrays, u, centre, scale):
        return setup.potential(u, centre, scale, arrays)

    def batch(arrays, thetas):
        # Shapes are static under jit: the grouping is fixed per map size
        # (the noise factor is shared by the walkers, not per walker).
        points = max(int(np.size(a)) for k, a in arrays.items() if k != "vecchia")
        group = max(1, BATCH_POINTS // max(points, 1))
        if setup.correlated:
            return setup.log_prob_correlated_batch(thetas, arrays, group)
        if group >= thetas.shape[0]:
            return jax.vmap(value, in_axes=(None, 0))(arrays, thetas)
        return jax.lax.map(lambda theta: value(arrays, theta), thetas, batch_size=group)

    return SimpleNamespace(
        log_prob=jax.jit(value),
        log_prob_batch=jax.jit(batch),
        value_and_grad=jax.jit(jax.value_and_grad(log_prob, argnums=1)),
        potential=jax.jit(potential))


# ----------------------------------------------------------------------------
# The correlated noise model's kernel
# ----------------------------------------------------------------------------

def noise_kernel(data, spec: FitSpec) -> NoiseKernel | None:
    """The :class:`~eddy_widgets.inference.noise.NoiseKernel` of ``spec``'s
    fixed ``noise_nugget`` and ``noise_width`` on ``data``'s beam, or
    ``None`` while they are not yet known (estimated)."""
    nugget, width = spec.fixed.get("noise_nugget"), spec.fixed.get("noise_width")
    if nugget is None or width is None:
        return None
    if not (0.0 < nugget <= 1.0 and width > 0.0):
        raise ValueError(f"noise_nugget must lie in (0, 1] and noise_width be "
                         f"positive; got {nugget!r} and {width!r}.")
    return NoiseKernel(float(nugget), float(width), beam_metric(
        data.bmaj, data.bmin, data.bpa, data.dpix))


def estimate_noise(posterior: Posterior, theta) -> tuple[FitSpec, dict]:
    """Under ``noise='correlated'``, the set-up with the noise kernel
    estimated from the residuals at ``theta`` (the optimised start) where
    ``noise_nugget`` or ``noise_width`` is not given, and what was measured
    (``settings['noise']`` of the result)."""
    spec, data = posterior.spec, posterior.data
    z = residual_map(posterior, theta)
    metric = beam_metric(data.bmaj, data.bmin, data.bpa, data.dpix)
    kernel, info = estimate_kernel(z, metric)
    given = {k: spec.fixed.get(k) for k in ("noise_nugget", "noise_width")}
    fixed = dict(spec.fixed)
    fixed["noise_nugget"] = kernel.nugget if given["noise_nugget"] is None \
        else given["noise_nugget"]
    fixed["noise_width"] = kernel.width if given["noise_width"] is None \
        else given["noise_width"]
    used = NoiseKernel(fixed["noise_nugget"], fixed["noise_width"], metric)
    mask = dict(spec.mask)
    if mask.get("noise_snr_scale") is None:
        finite = z[np.isfinite(z)]
        mask["noise_snr_scale"] = float(1.4826 * np.median(np.abs(
            finite - np.median(finite))))
    spec = replace(spec, mask=mask)
    region = fit_mask(data, replace(spec, mask={**spec.mask, "noise_clip": None}), theta)
    clipped = fit_mask(data, spec, theta)
    info.update(model="correlated", nugget=float(used.nugget), width=float(used.width),
                estimated=[k for k, v in given.items() if v is None],
                correlated_pixels=used.correlated_pixels(),
                clipped=int(region.sum() - clipped.sum()),
                snr_scale=mask["noise_snr_scale"],
                noise_clip=spec.mask.get("noise_clip"),
                peak_map=None if data.snr_path is None else Path(data.snr_path).name)
    return replace(spec, fixed=fixed), info


def residual_map(posterior: Posterior, theta) -> np.ndarray:
    """``(data - model) / dv0`` at ``theta`` on the map's grid, NaN where not
    fitted."""
    model = np.asarray(posterior.model_pixels(jnp.asarray(theta, dtype=float)))
    z = np.full(posterior.mask.shape, np.nan)
    rows, cols = posterior._rows, posterior._cols
    z[rows, cols] = (posterior.data.data[rows, cols] - model) / posterior.data.error[rows, cols]
    return z


def check_defined(posterior: "Posterior", theta, what: str = "p0") -> None:
    """Raise :class:`FitInputError` if the model is undefined at the start
    (a non-finite log-likelihood inside the prior), naming the free values
    that make it so where setting one back to the table's default mends it,
    instead of a run whose every log-probability is NaN."""
    theta = np.asarray(theta, dtype=float)
    ll = float(posterior.log_likelihood(theta, True))
    if np.isfinite(ll):
        return
    model = np.asarray(posterior.model_pixels(theta))
    nan = int(np.sum(~np.isfinite(model)))
    culprits = []
    for i, name in enumerate(posterior.names):
        default = PARAMETERS[name].default if name in PARAMETERS else None
        if default is None or default == theta[i]:
            continue
        trial = theta.copy()
        trial[i] = default
        if np.isfinite(float(posterior.log_likelihood(trial, True))):
            culprits.append(f"{name} = {theta[i]:g}")
    fixed = {k: v for k, v in posterior.spec.fixed.items() if v is not None}
    raise FitInputError(
        f"The model is not defined at {what} (log-likelihood {ll}; {nan} of "
        f"{model.size} fitted pixels NaN): "
        + (f"{' and '.join(culprits)} make{'s' if len(culprits) == 1 else ''} it so. "
           if culprits else
           f"check {what} = {dict(zip(posterior.names, theta.round(6).tolist()))} "
           f"and the fixed values {fixed}. ")
        + "Nothing was run.")
