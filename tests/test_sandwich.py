"""The block sandwich adjustment (inference/sandwich.py): its covariance
against the exact one of a linear fit under known correlated noise, and what
a correlated fit of a bettermoments map reports with it."""

import numpy as np
import pytest

from eddy_widgets.inference.noise import NoiseKernel, beam_metric, correlated_noise
from eddy_widgets.inference.sandwich import Sandwich, block_covariance


def test_block_covariance_matches_the_exact_covariance_of_a_fit_under_correlated_noise():
    """A least-squares fit of a plane to a 64 x 64 map (an annulus) whose
    noise is correlated over a 3 x 2.4 pixel beam: the exact covariance of
    its estimate is (X^T X)^-1 X^T C X (X^T X)^-1. The block sandwich
    (blocks of 12 pixels, one noise draw each) averages to 0.7-0.85 of it
    over 120 draws (it loses the pairs across block borders and what the
    fit absorbs; docs/noise.md says what that does to coverage), 80% of
    the single draws' estimates within 0.3-1.5 of it; the independent
    formula (X^T X)^-1 is 3x too small and more in variance."""
    n = 64
    kernel = NoiseKernel(0.2, 1.0, beam_metric(0.15, 0.12, 30.0, 0.05))
    rows, cols = np.nonzero(np.ones((n, n), bool))
    r = np.hypot(rows - n / 2, cols - n / 2)
    keep = (r > 8) & (r < 30)
    rows, cols = rows[keep], cols[keep]
    x = np.column_stack([np.ones(rows.size), (cols - n / 2) / n, (rows - n / 2) / n])
    c = kernel.correlation(rows[:, None] - rows[None], cols[:, None] - cols[None])
    h_inv = np.linalg.inv(x.T @ x)
    exact = h_inv @ x.T @ c @ x @ h_inv
    rng = np.random.default_rng(5)
    estimates, fits = [], []
    for _ in range(120):
        noise = correlated_noise((n, n), kernel, rng)[rows, cols]
        beta = h_inv @ x.T @ noise
        resid = noise - x @ beta                  # d resid / d beta = -x
        cov, laplace, blocks = block_covariance(-x, resid, rows, cols, 12)
        estimates.append(np.diag(cov))
        fits.append(beta)
    assert 15 < blocks < 40
    np.testing.assert_allclose(laplace, h_inv)
    ratio = np.array(estimates) / np.diag(exact)
    assert np.all((ratio.mean(axis=0) > 0.7) & (ratio.mean(axis=0) < 0.9)), \
        ratio.mean(axis=0)
    assert np.all((np.percentile(ratio, 10, axis=0) > 0.3)
                  & (np.percentile(ratio, 90, axis=0) < 1.5)), ratio
    # The draws' own scatter is the exact one (the set-up is right) ...
    np.testing.assert_allclose(np.var(fits, axis=0) / np.diag(exact), 1, atol=0.3)
    # ... and the independent formula is far off.
    assert np.all(np.diag(exact) / np.diag(h_inv) > 3)


def test_the_adjustment_moves_draws_to_the_sandwich_covariance():
    """Omega maps draws of covariance H^-1 to draws of covariance V, about
    the centre, and leaves the other columns alone."""
    rng = np.random.default_rng(0)
    laplace = np.array([[1.0, 0.3], [0.3, 0.5]])
    target = np.array([[4.0, 0.5], [0.5, 2.0]])
    omega = np.linalg.cholesky(target) @ np.linalg.inv(np.linalg.cholesky(laplace))
    adj = Sandwich(names=["b", "c"], centre=[1.0, -2.0], omega=omega.tolist(), block=12,
                   blocks=30, widening=[2.0, 2.0])
    draws = np.column_stack([rng.normal(size=200_000),
                             rng.multivariate_normal([1.0, -2.0], laplace, 200_000)])
    moved = adj.apply(draws, ["a", "b", "c"])
    np.testing.assert_array_equal(moved[:, 0], draws[:, 0])
    np.testing.assert_allclose(np.cov(moved[:, 1:].T), target, rtol=0.02)
    np.testing.assert_allclose(moved[:, 1:].mean(axis=0), [1.0, -2.0], atol=0.01)


@pytest.mark.usefixtures("in_tmp_path")
def test_a_correlated_fit_reports_widened_intervals_and_keeps_its_chains(tmp_path):
    """noise='correlated' on a bettermoments map: the samples, percentiles
    and summary are the adjusted draws, wider than the chains by the stored
    factors; the chains (diagnostics, traces) are the sampler's; a saved
    result reads back the same samples."""
    from eddy_widgets import rotationmap
    from eddy_widgets.inference.result import FitResult
    from eddy_widgets.mock import mock_observation

    truth = {"x0": 0.0, "y0": 0.0, "inc": 40.0, "PA": 60.0, "mstar": 1.5,
             "vlsr": 5000.0, "dist": 100.0, "z0": 0.25, "psi": 1.25}
    paths = mock_observation(truth, npix=96, seed=21).write(tmp_path, "mock")
    cube = rotationmap(paths["v0"], uncertainty=paths["dv0"])
    params = {**truth, "inc": 0, "PA": 1, "mstar": 2, "vlsr": 3,
              "r_min": 0.6, "r_max": 2.2}
    result = cube.fit_map([40.0, 60.0, 1.5, 5000.0], params, mcmc="numpyro",
                          nwalkers=1, nburnin=150, nsteps=300, noise="correlated",
                          plots="none", returns="result",
                          mcmc_kwargs={"progress": False})
    adjustment = result.sandwich
    assert adjustment is not None and adjustment.names == ["inc", "PA", "mstar", "vlsr"]
    assert adjustment.blocks >= 16 and adjustment.block == 12      # 4 beams of 3 pixels
    widening = np.asarray(adjustment.widening)
    assert np.all(widening > 1.2), widening       # on these maps: ~1.5-3.5
    raw, adjusted = result.raw_samples, result.samples
    np.testing.assert_array_equal(raw, result.get_chain(discard=150, flat=True))
    ratio = adjusted.std(axis=0)[:4] / raw.std(axis=0)[:4]
    # The draws' widening is the stored one (up to the chain's own spread
    # around the Laplace width).
    np.testing.assert_allclose(ratio, widening, rtol=0.25)
    np.testing.assert_array_equal(adjusted[:, 4], raw[:, 4])     # noise_scale
    p16, p50, p84 = result.percentiles()
    assert np.all(p84[:4] - p16[:4] > 1.2 * np.diff(np.percentile(raw[:, :4], [16, 84],
                                                                 axis=0), axis=0)[0])
    assert "Intervals widened by the block sandwich" in result.summary_table()
    result.save(tmp_path / "r.npz")
    np.testing.assert_array_equal(FitResult.load(tmp_path / "r.npz").samples, adjusted)
    # A checkpoint written before the run's end holds no adjustment yet: its
    # samples are the chains' and its summary says so.
    del result.settings["noise"]["sandwich"]
    np.testing.assert_array_equal(result.samples, raw)
    assert "not yet widened" in result.summary_table()


def test_white_noise_is_not_widened(small_cube):
    """The bundled example's noise is white: its kernel is the identity and
    the block sandwich leaves the widths as they are, never narrower (its
    raw estimate falls to 0.74x for x0 and y0, whose information a few
    central blocks hold), at most by the scatter of its estimate wider."""
    from eddy_widgets.data.example import TUTORIAL_P0
    from eddy_widgets.inference.optimize import find_map
    from eddy_widgets.inference.posterior import Posterior, estimate_noise
    from eddy_widgets.inference.sandwich import block_sandwich
    from eddy_widgets.inference.spec import with_noise

    from helpers import tutorial_params

    p, p0 = with_noise(tutorial_params(small_cube), TUTORIAL_P0, "correlated")
    post = small_cube.posterior(p, p0)
    theta = find_map(post, p0).theta
    spec, _ = estimate_noise(post, theta)
    post = Posterior(small_cube.map, spec, small_cube.priors, theta)
    theta = find_map(post, theta).theta
    adjustment = block_sandwich(post, theta)
    assert adjustment.blocks > 100
    widening = np.asarray(adjustment.widening)
    assert np.all((widening >= 1 - 1e-9) & (widening < 1.25)), widening
