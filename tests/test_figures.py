"""Figures as a person sees them: sky axes in arcsec with RA decreasing to
the east, the beam on every map, units on every colour bar (one per figure),
corner titles with enough digits, true values drawn, words in the singular
when there is one."""

from __future__ import annotations

import math

from matplotlib.lines import Line2D
from matplotlib.patches import Ellipse
import numpy as np
import pytest

from eddy_widgets import plots as P
from eddy_widgets.inference.result import FitResult
from eddy_widgets.inference.samplers import Chunk

from helpers import FREE, tutorial_params

TRUTHS = {"PA": 312.0, "mstar": 2.02, "vlsr": 5763.0}


def fake_result(backend="numpyro", nchains=1, nwarm=100, n=400, seed=0):
    """A result with PA ~ N(312.0605, 0.022) deg, mstar ~ N(2.0241, 0.006) Msun
    and vlsr ~ N(5761.7, 1.5) m/s, and a warmup that starts far away."""
    rng = np.random.default_rng(seed)
    centre, sd = np.array([312.0605, 2.0241, 5761.7]), np.array([0.022, 0.006, 1.5])
    result = FitResult(("PA", "mstar", "vlsr"), backend, nchains)
    warm = centre + sd * rng.standard_normal((nchains, nwarm, 3))
    warm[:, :10] += 100 * sd
    lp_warm = -620 - 5 * rng.random((nchains, nwarm))
    lp_warm[:, :10] = -1.0e4                   # far from the posterior at first
    result.append(Chunk("warmup", 0, warm, lp_warm))
    draws = centre + sd * rng.standard_normal((nchains, n, 3))
    result.append(Chunk("sampling", 0, draws, -620 - 5 * rng.random((nchains, n))))
    return result


def map_axes(fig):
    """The axes of a figure that show a map (an image or contours on the sky)."""
    return [ax for ax in fig.axes if ax.get_label() != "<colorbar>" and
            (ax.images or ax.collections) and "RA" in ax.get_xlabel()]


def colorbar_labels(fig):
    return [ax.get_ylabel() for ax in fig.axes if ax.get_label() == "<colorbar>"]


def assert_sky_map(ax, cube):
    """What a person checks on a map: the axis labels, east to the left, the
    beam with the map's size and orientation."""
    assert "RA" in ax.get_xlabel() and "arcsec" in ax.get_xlabel()
    assert "Dec" in ax.get_ylabel() and "arcsec" in ax.get_ylabel()
    left, right = ax.get_xlim()
    assert left > right                         # x decreases to the east (left)
    beams = [p for p in ax.patches if isinstance(p, Ellipse)]
    assert len(beams) == 1
    beam = beams[0]
    assert (beam.height, beam.width) == pytest.approx((cube.bmaj, cube.bmin))
    assert beam.angle == pytest.approx(-cube.bpa)
    x, y = beam.center
    assert min(left, right) < x < max(left, right)   # inside the field of view
    assert ax.get_ylim()[0] < y < ax.get_ylim()[1]


@pytest.fixture(scope="module")
def fitted(small_cube, example):
    """The true parameters as a set of 'samples' and what the fit would plot."""
    params = tutorial_params(small_cube)
    truth = np.array([example.truths[n] for n in FREE])
    samples = truth + 1e-4 * np.abs(truth) * np.random.default_rng(1).standard_normal(
        (100, truth.size))
    model = small_cube.evaluate_models(samples, params, draws=0.5)
    mask = small_cube.fit_mask(params, truth)
    return params, samples, model, mask


# -- Maps ----------------------------------------------------------------------


def test_astro_eddy_map_methods_draw_sky_axes_beam_and_units(small_cube, fitted):
    params, samples, model, mask = fitted
    figures = {
        "plot_data": small_cube.plot_data(return_fig=True),
        "plot_model": small_cube.plot_model(samples, params, mask=mask,
                                            return_fig=True),
        "plot_model_residual": small_cube.plot_model_residual(model=model, mask=mask,
                                                              return_fig=True),
        "plot_model_surface": small_cube.plot_model_surface(samples, params),
    }
    units = {"plot_data": "km/s", "plot_model": "km/s", "plot_model_residual": "m/s"}
    for name, fig in figures.items():
        axes = map_axes(fig)
        assert len(axes) == 1, name
        assert_sky_map(axes[0], small_cube)
        if name in units:
            (cb,) = colorbar_labels(fig)
            assert f"[{units[name]}]" in cb, (name, cb)


def test_fit_figures_have_one_unit_and_a_beam_on_every_map(small_cube, fitted):
    params, samples, model, mask = fitted
    for fig in (P.plot_bestfit(small_cube.map, model, mask),
                P.plot_residual(small_cube.map, model, mask),
                P.plot_maps(small_cube.map, model, mask)):
        for ax in map_axes(fig):
            assert_sky_map(ax, small_cube)
        labels = colorbar_labels(fig)
        assert labels and all("[m/s]" in lab for lab in labels), labels
        assert not any("km/s" in lab for lab in labels)
    assert len(map_axes(P.plot_maps(small_cube.map, model, mask))) == 3


def test_map_methods_draw_on_a_given_axes(small_cube, fitted):
    import matplotlib.pyplot as plt

    params, samples, model, mask = fitted
    fig, axes = plt.subplots(1, 2)
    assert small_cube.plot_model(model=model, ax=axes[0], return_fig=True) is fig
    assert small_cube.plot_model_residual(model=model, ax=axes[1]) is None
    assert axes[0].images and axes[1].images
    assert small_cube.plot_disk_axes(PA=30.0, ax=axes[0]) is axes[0]


def test_disk_axes_point_along_pa_and_shrink_by_cos_inc(small_cube):
    """PA = 90 deg puts the major axis east-west; the minor axis is
    2 major cos(inc) long, north-south."""
    ax = small_cube.plot_disk_axes(x0=0.5, y0=-0.2, inc=60.0, PA=90.0, major=2.0)
    assert_sky_map(ax, small_cube)
    major, minor = ax.lines[-2:]
    np.testing.assert_allclose(major.get_xdata(), [2.5, -1.5], atol=1e-12)
    np.testing.assert_allclose(major.get_ydata(), [-0.2, -0.2], atol=1e-12)
    np.testing.assert_allclose(np.ptp(minor.get_ydata()), 2 * 2.0 * 0.5, atol=1e-12)
    np.testing.assert_allclose(minor.get_xdata(), [0.5, 0.5], atol=1e-12)


def test_surface_radius_contour_of_a_face_on_flat_disk_is_a_circle(small_cube):
    fig = small_cube.plot_surface(inc=0.0, PA=0.0, contour_kwargs={"levels": [2.0]},
                                  r_max=3.0)
    ax = map_axes(fig)[0]
    rings = [p for c in ax.collections[:1] for p in c.get_paths()]
    vertices = np.concatenate([p.vertices for p in rings])
    radii = np.hypot(*vertices.T)
    # The contour levels are 2 arcsec and 0.99 r_max.
    assert np.all((np.abs(radii - 2.0) < 0.01) | (np.abs(radii - 2.97) < 0.01))


def test_plot_beam_is_astro_eddys_ellipse(small_cube):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.set_xlim(4, -4)
    ax.set_ylim(-4, 4)
    beam = small_cube.plot_beam(ax, x0=0.25, y0=0.75, color="w")
    assert beam in ax.patches
    assert beam.center == pytest.approx((2.0, 2.0))
    assert (beam.width, beam.height, beam.angle) == pytest.approx(
        (small_cube.bmin, small_cube.bmaj, -small_cube.bpa))


# -- Chains and corner ---------------------------------------------------------------


def test_corner_titles_show_the_uncertainty_and_truth_lines():
    result = fake_result()
    fig = P.plot_corner(result, TRUTHS)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    pa = next(t for t in titles if "PA" in t)
    # PA 312.06 +- 0.022: three decimals, not '312 +0.022/-0.023'.
    p16, p50, p84 = result.percentiles()[:, 0]
    assert f"{p50:.3f}" in pa and f"{p84 - p50:.3f}" in pa and f"{p50 - p16:.3f}" in pa
    vlsr = next(t for t in titles if "LSR" in t)
    assert f"{result.percentiles([50])[0, 2]:.1f}" in vlsr        # 1.5 m/s wide
    assert "e+03" not in "".join(titles)
    red = [line for ax in fig.axes for line in ax.lines
           if isinstance(line, Line2D) and line.get_color() == P.TRUTH_COLOR]
    xs = {round(float(np.atleast_1d(line.get_xdata())[0]), 6) for line in red}
    assert {312.0, 2.02, 5763.0} <= xs
    # Axis labels carry units and lie inside the figure.
    labels = [ax.get_xlabel() for ax in fig.axes if ax.get_xlabel()]
    assert any("[deg]" in lab for lab in labels)
    assert any("[m/s]" in lab for lab in labels)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    box = fig.bbox
    for ax in fig.axes:
        for text in (ax.xaxis.label, ax.yaxis.label, ax.title):
            if text.get_text():
                ext = text.get_window_extent(renderer)
                assert ext.x0 >= box.x0 and ext.y0 >= box.y0, text.get_text()
                assert ext.x1 <= box.x1 and ext.y1 <= box.y1, text.get_text()


def test_corner_without_truths_draws_no_truth_lines():
    fig = P.plot_corner(fake_result())
    assert not [line for ax in fig.axes for line in ax.lines
                if line.get_color() == P.TRUTH_COLOR]


@pytest.mark.parametrize("value, low, high, text", [
    (312.0605, 312.0385, 312.0835, "312.060^{+0.023}_{-0.022}"),
    (5761.73, 5760.2, 5763.4, "5761.7^{+1.7}_{-1.5}"),
    (123456.0, 122000.0, 125000.0, "123500^{+1500}_{-1500}"),
])
def test_posterior_text_rounds_to_two_figures_of_the_error(value, low, high, text):
    assert P.format_posterior(low, value, high) == f"${text}$"


def test_walkers_say_one_chain_and_show_the_post_warmup_ln_p():
    result = fake_result(nchains=1)
    fig = P.plot_walkers(result, TRUTHS)
    title = fig._suptitle.get_text()
    assert "1 chain" in title and "1 chains" not in title
    lo, hi = fig.axes[-1].get_ylim()
    post = result.log_prob["sampling"]
    assert lo < post.min() and hi > post.max()
    assert hi - lo < 3 * np.ptp(post)               # not squashed by the warmup's -1e4
    red = [ax for ax in fig.axes[:3] if any(line.get_color() == P.TRUTH_COLOR
                                            for line in ax.lines)]
    assert len(red) == 3
    assert "32 walkers" in P.plot_walkers(fake_result("emcee", 32, 10, 20)) \
        ._suptitle.get_text()
    assert P.plural(1, "walker") == "1 walker" and P.plural(0, "chain") == "0 chains"


def test_decimals_follow_the_width():
    assert P.decimals_for(0.022) == 3
    assert P.decimals_for(1.5) == 1
    assert P.decimals_for(150.0) == -1
    assert P.decimals_for(math.nan) == 3


# -- fit_map's figures in astro-eddy's layout (issue 20, item 5) ----------------------

#: The tutorial's plots list.
TUTORIAL_PLOTS = ["walkers", "corner", "bestfit", "residual"]


@pytest.fixture(scope="module")
def short_run(small_cube):
    """A short emcee run on the small map: 20 walkers x (5 burn-in + 10 steps)."""
    from helpers import P0

    small_cube.fit_map(P0, tutorial_params(small_cube), nwalkers=20, nburnin=5,
                       nsteps=10, mcmc_kwargs={"progress": False, "seed": 0},
                       plots="none", returns="none", verdict=False)
    return small_cube.last_run


def open_figures():
    """The open pyplot figures by number, as a script's ``plt.figure(n)``."""
    import matplotlib.pyplot as plt

    return [plt.figure(n) for n in plt.get_fignums()]


def test_tutorial_plots_open_astro_eddys_twelve_figures_in_its_order(small_cube,
                                                                     short_run):
    """astro-eddy 3.2 opens, for the tutorial's plots list, one walker figure
    per free parameter (in p0's order), then the corner plot, the model and
    the residual: 12 figures for 9 parameters. A script that saves figure n
    gets the same plot."""
    import matplotlib.pyplot as plt

    plt.close("all")
    figures = small_cube.fit_figures(short_run, TUTORIAL_PLOTS)
    names = [f"walkers_{n}" for n in FREE] + ["corner", "bestfit", "residual"]
    assert list(figures) == names
    shown = open_figures()
    assert len(shown) == 12
    assert [fig.get_label() for fig in shown] == names
    assert shown == list(figures.values())
    # The walker figures come in p0's order: figure 3 is PA's.
    assert "PA" in shown[2].axes[0].get_title()


def test_each_walker_figure_is_titled_by_its_parameter(small_cube, short_run):
    from matplotlib.collections import LineCollection

    from eddy_widgets.parameters import label, label_with_unit

    figures = small_cube.fit_figures(short_run, ["walkers"])
    assert len(figures) == len(FREE)
    result = short_run.result
    for i, (name, fig) in enumerate(zip(FREE, figures.values())):
        main, hist = fig.axes
        assert main.get_title().startswith(label(name)), (name, main.get_title())
        assert "20 walkers" in main.get_title()
        assert main.get_ylabel() == label_with_unit(name)
        # Every walker over every step, burn-in included.
        (walkers,) = [c for c in main.collections if isinstance(c, LineCollection)]
        paths = walkers.get_paths()
        assert len(paths) == 20 and all(len(p.vertices) == 15 for p in paths)
        np.testing.assert_allclose(paths[3].vertices[:, 1],
                                   np.concatenate([result.chains["warmup"][3, :, i],
                                                   result.chains["sampling"][3, :, i]]))
        # Beside it, the histogram of the 20 x 10 post-burn-in draws.
        (bars,) = hist.patches
        assert hist.get_ylim() == main.get_ylim()
        assert bars.get_path().vertices[:, 0].max() > 0


def test_model_colour_bar_in_kms_and_residual_in_ms(small_cube, short_run):
    """As astro-eddy: the model in km/s, the residual in m/s, both on sky axes
    with the beam and the pixels the fit left out shaded."""
    figures = small_cube.fit_figures(short_run, TUTORIAL_PLOTS)
    for name, unit in (("bestfit", "[km/s]"), ("residual", "[m/s]")):
        fig = figures[name]
        (ax,) = map_axes(fig)
        assert_sky_map(ax, small_cube)
        (cb,) = colorbar_labels(fig)
        assert unit in cb and "km/s" not in cb.replace(unit, ""), (name, cb)
        assert len(ax.collections) >= 2                   # the fitted pixels' outline
    model = small_cube.median_model(short_run)
    image = map_axes(figures["bestfit"])[0].images[0].get_array()
    np.testing.assert_allclose(image, model / 1e3)       # km/s, of the medians


def test_the_mask_figure_comes_after_astro_eddys(small_cube, short_run):
    """astro-eddy 3.2 accepts 'mask' and draws nothing for it: ours is drawn
    last, so that the others keep astro-eddy's numbers."""
    import matplotlib.pyplot as plt

    plt.close("all")
    figures = small_cube.fit_figures(short_run, ["mask", "walkers"])
    assert list(figures) == [f"walkers_{n}" for n in FREE] + ["mask"]
    assert open_figures()[-1] is figures["mask"]
    (cb,) = colorbar_labels(figures["mask"])
    assert "[km/s]" in cb
    assert small_cube.fit_figures(short_run, ["none"]) == {}


def test_corner_contours_use_every_draw_and_thin_only_the_points():
    """The corner plot's histograms and quantile lines are those of every
    draw; of the points outside the contours at most CORNER_POINTS are
    drawn (they cost most of the figure)."""
    result = fake_result(nchains=4, nwarm=10, n=5000)     # 20,000 draws
    fig = P.plot_corner(result)
    samples = P.display_samples(result)
    axes = {(round(ax.get_position().x0, 3), round(ax.get_position().y0, 3)): ax
            for ax in fig.axes}
    assert len(axes) == 6                                  # 3 x 3, lower triangle
    diagonal = [ax for ax in fig.axes if ax.get_title()]
    for i, ax in enumerate(diagonal):
        counts = ax.patches[0].get_path().vertices[:, 1]
        lo, hi = ax.get_xlim()
        inside = np.sum((samples[:, i] >= lo) & (samples[:, i] <= hi))
        # histtype='step' outlines the bars: each count appears twice.
        assert counts.max() > 0 and abs(counts[1:-1:2].sum() - inside) <= 1
        dashed = sorted(line.get_xdata()[0] for line in ax.lines
                        if line.get_linestyle() == "--")
        np.testing.assert_allclose(dashed, np.percentile(samples[:, i], [16, 50, 84]))
    points = [line for ax in fig.axes for line in ax.lines if line.get_marker() == "o"]
    assert len(points) == 3
    assert all(len(line.get_xdata()) <= P.CORNER_POINTS for line in points)


def test_fit_map_opens_astro_eddys_figures(small_cube):
    import matplotlib.pyplot as plt

    from helpers import P0

    plt.close("all")
    small_cube.fit_map(P0, tutorial_params(small_cube), nwalkers=20, nburnin=5,
                       nsteps=10, mcmc_kwargs={"progress": False, "seed": 0},
                       plots=TUTORIAL_PLOTS, returns="none", verdict=False)
    assert len(plt.get_fignums()) == 12
    assert list(small_cube.figures) == [f"walkers_{n}" for n in FREE] + [
        "corner", "bestfit", "residual"]
