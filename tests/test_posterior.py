"""The log-posterior: masks, beam, gradients inside the prior support, the
unconstrained space NUTS works in."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from eddy_widgets.inference.optimize import hessian_fd
from eddy_widgets.inference.posterior import Posterior, fit_mask
from eddy_widgets.inference.priors import Prior
from eddy_widgets.inference.run import unconstrained_hessian
from eddy_widgets.inference.spec import FitSpec

from helpers import FREE, P0, tutorial_params


def _posterior(cube, params, theta):
    spec = FitSpec.parse(params, theta)
    return Posterior(cube.map, spec, cube.priors, theta)


def test_radial_mask_follows_the_deprojected_radius(small_cube):
    # r_min/r_max select an annulus of the (flared) disk, exclude_r inverts it.
    theta = np.array(P0)
    params = tutorial_params(small_cube)
    params.update(r_min=1.0, r_max=2.5)
    r = small_cube.disk_coords(**dict(zip(FREE, theta)), inc=46.7)[0]
    finite = np.isfinite(small_cube.data)
    mask = small_cube.fit_mask(params, theta)
    np.testing.assert_array_equal(mask, finite & (r >= 1.0) & (r <= 2.5))
    params["exclude_r"] = True
    np.testing.assert_array_equal(small_cube.fit_mask(params, theta),
                                  finite & ~((r >= 1.0) & (r <= 2.5)))


def test_phi_velocity_and_user_masks(small_cube):
    theta = np.array(P0)
    params = tutorial_params(small_cube)
    base = small_cube.fit_mask(params, theta)
    r, phi, _ = small_cube.disk_coords(**dict(zip(FREE, theta)), inc=46.7)
    red = small_cube.fit_mask({**params, "phi_min": -90.0, "phi_max": 90.0}, theta)
    np.testing.assert_array_equal(red, base & (np.abs(np.degrees(phi)) <= 90.0))
    # The red-shifted half: v0 above vlsr (within noise) almost everywhere.
    assert np.mean(small_cube.data[red] > 5763.0) > 0.95
    fast = small_cube.fit_mask({**params, "v_min": 6000.0}, theta)
    np.testing.assert_array_equal(fast, base & (small_cube.data >= 6000.0))
    user = np.zeros(small_cube.data.shape, bool)
    user[:, :20] = True
    np.testing.assert_array_equal(small_cube.fit_mask({**params, "user_mask": user},
                                                      theta), base & user)
    with pytest.raises(ValueError, match="user_mask has shape"):
        small_cube.fit_mask({**params, "user_mask": user[:5]}, theta)
    # 0 / 1 numbers are a mask; NaN or other values are refused, never read
    # as True (NaN is truthy: a float mask with NaN once fitted every pixel).
    np.testing.assert_array_equal(
        small_cube.fit_mask({**params, "user_mask": user.astype(float)}, theta),
        base & user)
    for bad, words in ((np.where(user, 1.0, np.nan), "NaN"), (user * 0.5, "0.5"),
                       (user.astype(str), "give booleans")):
        with pytest.raises(ValueError, match="user_mask") as err:
            small_cube.fit_mask({**params, "user_mask": bad}, theta)
        assert words in str(err.value)


def test_beam_convolved_fit_is_differentiable(small_cube, example):
    # With beam=True the model is convolved on the full grid; the posterior
    # and its gradient stay finite, and the truths still fit the map well.
    params = {**tutorial_params(small_cube), "beam": True}
    theta = np.array([example.truths[n] for n in FREE])
    post = _posterior(small_cube, params, theta)
    value, grad = post.value_and_grad(jnp.asarray(theta))
    assert np.isfinite(value) and np.all(np.isfinite(grad))
    # The convolution changes the model (most near the centre, where v0
    # changes fastest), but on this coarse grid (0.2 arcsec pixels, 0.1 arcsec
    # beam) barely the fit.
    plain = _posterior(small_cube, tutorial_params(small_cube), theta)
    model_beam = np.asarray(post.model_pixels(jnp.asarray(theta)))
    model_plain = np.asarray(plain.model_pixels(jnp.asarray(theta)))
    assert 0.1 < np.max(np.abs(model_beam - model_plain)) < 500.0
    chi2_plain = -2 * float(plain.log_likelihood(jnp.asarray(theta)))
    chi2_beam = -2 * float(post.log_likelihood(jnp.asarray(theta)))
    assert abs(chi2_beam - chi2_plain) < 0.05 * chi2_plain
    assert 0.8 < chi2_plain / post.npix < 1.2


def test_gradient_finite_everywhere_inside_the_support(small_cube):
    # Random points inside the (bounded) priors, with r_cavity free and the
    # disk centre placed exactly on a pixel for some of them.
    free = FREE + ["r_cavity"]
    params = {n: i for i, n in enumerate(free)}
    params.update(inc=46.7, dist=101.0)
    priors = dict(small_cube.priors)
    priors.update(x0=Prior("flat", -0.2, 0.2), y0=Prior("flat", -0.2, 0.2),
                  z0=Prior("flat", 0.0, 0.6), psi=Prior("flat", 0.2, 3.0),
                  r_cavity=Prior("flat", 0.0, 2.0), q_taper=Prior("flat", 0.5, 5.0),
                  r_taper=Prior("flat", 0.5, 50.0), mstar=Prior("flat", 0.5, 3.0),
                  vlsr=Prior("flat", 5000.0, 6500.0), PA=Prior("flat", 0.0, 360.0))
    theta0 = np.array(P0 + [0.0])
    spec = FitSpec.parse(params, theta0)
    post = Posterior(small_cube.map, spec, priors, theta0)
    rng = np.random.default_rng(0)
    xs, ys = small_cube.xaxis, small_cube.yaxis
    for k in range(12):
        theta = np.array([rng.uniform(priors[n].a, priors[n].b) for n in free])
        if k % 3 == 0:  # centre on a pixel, cavity edge through a pixel
            theta[0], theta[1] = xs[len(xs) // 2], ys[len(ys) // 2]
            theta[-1] = float(abs(xs[len(xs) // 2 + 3] - theta[0]))
        value, grad = post.value_and_grad(jnp.asarray(theta))
        assert np.isfinite(value), theta
        assert np.all(np.isfinite(grad)), (theta, grad)
        u = post.to_unconstrained(theta)
        assert np.all(np.isfinite(jax.grad(post.potential)(jnp.asarray(u))))


def test_unconstrained_round_trip_and_hessian(small_cube):
    # The bijections invert each other; the chain-rule Hessian of the
    # potential equals JAX's own Hessian.
    theta = np.array(P0)
    post = _posterior(small_cube, tutorial_params(small_cube), theta)
    u = post.to_unconstrained(theta)
    np.testing.assert_allclose(np.asarray(post.to_constrained(jnp.asarray(u))), theta,
                               rtol=1e-10)
    ours = unconstrained_hessian(post, theta)
    exact = np.asarray(jax.hessian(post.potential)(jnp.asarray(u)))
    np.testing.assert_allclose(ours, exact, rtol=1e-4, atol=1e-6 * np.abs(exact).max())
    # And the finite-difference Hessian of the constrained posterior.
    exact_c = np.asarray(jax.hessian(post.log_prob)(jnp.asarray(theta)))
    np.testing.assert_allclose(hessian_fd(post.value_and_grad, theta), exact_c,
                               rtol=1e-4, atol=1e-6 * np.abs(exact_c).max())


def test_value_only_and_gradient_programs_agree(small_cube):
    # The value-only program (rolled loop, float32 geometry) and the gradient
    # program (unrolled, float64) agree to a hundredth of a unit of
    # log-probability, far below what moves a sampler; the batch matches
    # single calls.
    theta = np.array(P0)
    post = _posterior(small_cube, tutorial_params(small_cube), theta)
    batch = np.stack([theta, theta * 1.001])
    exact = [float(post.value_and_grad(jnp.asarray(t))[0]) for t in batch]
    fast = post.log_prob_numpy(batch)
    np.testing.assert_allclose(fast, exact, rtol=0, atol=0.01)
    assert abs((fast[1] - fast[0]) - (exact[1] - exact[0])) < 0.01
    assert float(post.log_prob_jit(jnp.asarray(theta))) == pytest.approx(fast[0],
                                                                         rel=1e-12)
    outside = theta.copy()
    outside[FREE.index("x0")] = 0.9  # prior is [-0.5, 0.5]
    assert post.log_prob_numpy(outside[None])[0] == -np.inf
    assert fit_mask(small_cube.map, post.spec, theta).sum() == post.npix
