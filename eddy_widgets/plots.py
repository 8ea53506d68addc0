"""Matplotlib figures of a fit and of maps on the sky.

Fit figures (walkers, corner, best-fit, residual, data/model/residual) and
the pieces of every map: a map drawn on sky axes (Delta RA decreasing to the
east, Delta Dec, both in arcsec), its colour bar with its unit, the beam, the
pixels left out of a fit, the disk's axes and its emission surface. One unit
per figure: the fit figures are in m/s, as the package works; astro-eddy's
``plot_data`` / ``plot_model`` show v0 in km/s, as astro-eddy does.

Each function returns its figure or axes; nothing is shown or saved here.
"""

from __future__ import annotations

import math

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.patches import Ellipse
import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator, NullLocator
import numpy as np

from .formatting import decimals_for, fixed, plural, round_posterior  # noqa: F401  (here too)
from .inference.diagnostics import CIRCULAR, unwrap_near_mean
from .parameters import label, label_with_unit

#: Labels of the sky axes (offsets from the image centre).
X_LABEL = r"$\Delta$RA [arcsec]"
Y_LABEL = r"$\Delta$Dec [arcsec]"
#: Colour of true values in every figure.
TRUTH_COLOR = "tab:red"

#: Matplotlib settings for figures shown inside JupyterLab, whose theme the
#: kernel cannot know: no background (the page's shows through, so a dark
#: theme gets no white slab) and text, axes, ticks and corner's histograms in
#: a mid grey that reads on white and on JupyterLab Dark alike.
SCREEN_GREY = "#8c8c8c"
SCREEN_STYLE = {
    "figure.facecolor": "none", "axes.facecolor": "none",
    "savefig.facecolor": "none", "savefig.edgecolor": "none",
    "savefig.transparent": True,
    "text.color": SCREEN_GREY, "axes.labelcolor": SCREEN_GREY,
    "axes.edgecolor": SCREEN_GREY, "axes.titlecolor": SCREEN_GREY,
    "xtick.color": SCREEN_GREY, "ytick.color": SCREEN_GREY,
    "legend.edgecolor": SCREEN_GREY, "legend.facecolor": "none",
}
#: Velocity units a map can be shown in, with their factor from m/s.
VELOCITY_UNITS = {"m/s": 1.0, "km/s": 1.0e-3}


# -- Posterior summaries -------------------------------------------------------


def format_posterior(p16: float, p50: float, p84: float) -> str:
    """``median^{+up}_{-down}`` (mathtext), rounded by :func:`round_posterior`:
    PA ``312.065^{+0.022}_{-0.023}``."""
    median, down, up = round_posterior(p16, p50, p84)
    return f"${median}^{{+{up}}}_{{-{down}}}$"


def display_samples(result) -> np.ndarray:
    """Post-warmup samples with each angle (PA) on the branch of its circular
    median (median in [0, 360), no split at 0/360)."""
    samples = np.array(result.samples, dtype=float)
    for i, name in enumerate(result.names):
        if name in CIRCULAR and samples.shape[0]:
            x = unwrap_near_mean(samples[:, i])
            median = np.median(x)
            samples[:, i] = x - median + median % 360.0
    return samples


def _truths_near(truths, names, centres):
    """True values in parameter order (``None`` where unknown), angles moved
    by whole turns next to ``centres``."""
    out = []
    for name, centre in zip(names, centres):
        t = None if not truths else truths.get(name)
        if t is not None and name in CIRCULAR:
            t = t + 360.0 * round((centre - t) / 360.0)
        out.append(None if t is None else float(t))
    return out


# -- Fit figures --------------------------------------------------------------


def plot_walkers(result, truths: dict | None = None):
    """One panel per free parameter (plus ln p): every walker or chain against
    draw number, burn-in/warmup shaded, true values in red. The ln p panel
    spans the post-warmup values (1st percentile to maximum)."""
    chains = np.concatenate([result.chains["warmup"], result.chains["sampling"]],
                            axis=1)
    nwarm = result.chains["warmup"].shape[1]
    ndim = len(result.names)
    # Fixed margins [inches] instead of a layout engine, which would measure
    # every label again at each draw.
    height = 1.2 * (ndim + 1) + 0.7
    fig, axes = plt.subplots(ndim + 1, 1, figsize=(7, height), sharex=True,
                             gridspec_kw=dict(left=1.0 / 7, right=1 - 0.15 / 7,
                                              bottom=0.5 / height, top=1 - 0.4 / height,
                                              hspace=0.12))
    logp = np.concatenate([result.log_prob["warmup"], result.log_prob["sampling"]],
                          axis=1)
    centres = np.median(display_samples(result), axis=0) if result.n_draws() else \
        np.median(chains.reshape(-1, ndim), axis=0)
    series = [chains[:, :, i] for i in range(ndim)] + [logp]
    names = [label_with_unit(n) for n in result.names] + [r"$\ln p$"]
    truth_values = _truths_near(truths, result.names, centres) + [None]
    for ax, values, name, truth in zip(axes, series, names, truth_values):
        draw_chains(ax, values, nwarm, truth)
        ax.set_ylabel(name, fontsize=9)
        ax.tick_params(labelsize=8)
    fig.align_ylabels(axes)
    axes[-1].set_xlabel("draw (shaded: burn-in / warmup)", fontsize=9)
    axes[-1].set_ylim(*_logp_range(result.log_prob))
    word = result.backend_spec.unit
    title = f"{result.backend}: {plural(result.nchains, word)}"
    if truth_values and any(t is not None for t in truth_values):
        title += " (red: true values)"
    fig.suptitle(title, fontsize=10)
    return fig


def draw_chains(ax, values, nwarm: int = 0, truth: float | None = None) -> None:
    """Every chain (rows of ``values``) against draw number, as one
    collection (one artist, not one line per walker), warmup shaded, the
    true value (if known) as a red line; the y range shows them all."""
    values = np.asarray(values, dtype=float)
    nchains, nsteps = values.shape
    alpha = max(0.05, min(0.6, 3.0 / max(nchains, 1)))
    steps = np.broadcast_to(np.arange(nsteps, dtype=float), values.shape)
    ax.add_collection(LineCollection(np.stack([steps, values], axis=-1), colors="k",
                                     linewidths=0.6, alpha=alpha))
    finite = values[np.isfinite(values)]
    if truth is not None:
        ax.axhline(truth, color=TRUTH_COLOR, lw=1.2, label="truth")
        finite = np.append(finite, truth)
    lo, hi = (finite.min(), finite.max()) if finite.size else (-1.0, 1.0)
    pad = 0.05 * (hi - lo) if hi > lo else 0.5 * max(abs(hi), 1.0)
    ax.set_xlim(0, max(nsteps - 1, 1))
    ax.set_ylim(lo - pad, hi + pad)
    if nwarm:
        ax.axvspan(0, nwarm, color="0.88", zorder=0, lw=0)


def _logp_range(log_prob: dict) -> tuple[float, float]:
    """y range of the ln p panel: the post-warmup values (the last half of
    the warmup if there are none), 1st percentile to maximum, padded."""
    values = log_prob["sampling"]
    if not np.isfinite(values).any():
        warm = log_prob["warmup"]
        values = warm[:, warm.shape[1] // 2:]
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return -1.0, 1.0
    lo, hi = np.percentile(finite, 1), finite.max()
    pad = 0.15 * (hi - lo) + 0.5
    return float(lo - pad), float(hi + pad)


#: The most draws a corner plot shows as points (outside its contours):
#: drawing an emcee run's 48,000 in each of 36 panels is most of the
#: figure's cost. Histograms, contours, titles and quantiles use every draw.
CORNER_POINTS = 6000


def thinned(samples, most: int = CORNER_POINTS) -> np.ndarray:
    """Every k-th row of ``samples``, k the smallest that leaves at most
    ``most`` rows (all of them if there are no more)."""
    return samples[::max(1, -(-len(samples) // most))]


def plot_corner(result, truths: dict | None = None):
    """Corner plot of the post-warmup samples with units on the axes, the
    16/50/84 percentiles as titles (to two significant figures of the
    smaller error) and dashed lines, and the true values as red lines when
    ``truths`` is given.

    corner's look (its ``hist2d`` in every pair's panel) on a grid of the
    lower triangle only, from every draw; of the points outside the
    contours at most :data:`CORNER_POINTS` evenly spaced ones are drawn
    (:func:`thinned`)."""
    import corner

    samples = display_samples(result)
    names = result.names
    ndim = len(names)
    p16, p50, p84 = result.percentiles()
    p50 = np.median(samples, axis=0)
    truth_values = _truths_near(truths, names, p50)
    ranges = []
    for i, col in enumerate(samples.T):
        lo, hi = np.percentile(col, [0.2, 99.8])
        t = truth_values[i]
        width = max(p84[i] - p16[i], 1e-12)
        if t is not None and abs(t - p50[i]) < 8 * width:
            lo, hi = min(lo, t), max(hi, t)
        pad = 0.05 * (hi - lo) if hi > lo else 0.5
        ranges.append((lo - pad, hi + pad))
    axes = _triangle(ndim)
    fig = axes[0, 0].figure
    # Drawn in the text colour (corner's default is black), so that the
    # histograms read on a dark page under SCREEN_STYLE.
    color = plt.rcParams["text.color"]
    shown = thinned(samples)
    quantiles = np.percentile(samples, [16, 50, 84], axis=0)
    # A figure made in a fit's thread may have a plain FigureCanvasBase (no
    # renderer): measure on an explicit Agg canvas then.
    renderer = (fig.canvas.get_renderer() if hasattr(fig.canvas, "get_renderer")
                else FigureCanvasAgg(fig).get_renderer())
    for i, name in enumerate(names):
        ax = axes[i, i]
        counts, _, _ = ax.hist(samples[:, i], bins=np.linspace(*ranges[i], 21),
                               histtype="step", color=color)
        ax.set_ylim(0, 1.1 * max(counts.max(), 1))
        ax.yaxis.set_major_locator(NullLocator())
        for q in quantiles[:, i]:
            ax.axvline(q, ls="dashed", color=color)
        for j in range(i):
            # corner's points (its data_kwargs), thinned; the rest from all.
            axes[i, j].plot(shown[:, j], shown[:, i], "o", zorder=-1, rasterized=True,
                            color=color, ms=2.0, mec="none", alpha=0.1)
            corner.hist2d(samples[:, j], samples[:, i], ax=axes[i, j],
                          range=[ranges[j], ranges[i]], color=color, quiet=True,
                          plot_datapoints=False)
        for j in range(i + 1):
            panel = axes[i, j]
            panel.set_xlim(ranges[j])
            if j < i:
                panel.set_ylim(ranges[i])
                panel.yaxis.set_major_locator(_InnerLocator(5))
            panel.xaxis.set_major_locator(_InnerLocator(5))
            panel.tick_params(labelsize="small", labelrotation=45,
                              labelbottom=i == ndim - 1, labelleft=j == 0 < i)
            tj, ti = truth_values[j], truth_values[i]
            if tj is not None:
                panel.axvline(tj, color=TRUTH_COLOR)
            if j < i and ti is not None:
                panel.axhline(ti, color=TRUTH_COLOR)
                if tj is not None:
                    panel.plot(tj, ti, "s", color=TRUTH_COLOR)
        value = format_posterior(p16[i], p50[i], p84[i])
        title = ax.set_title(f"{label(name)} = {value}", fontsize="medium")
        if title.get_window_extent(renderer).width > ax.bbox.width:
            # Wider than its panel (large type): the value on a line of its own.
            title.set_text(f"{label(name)} =\n{value}")
    for k, name in enumerate(names):
        axes[-1, k].set_xlabel(label_with_unit(name), fontsize="medium")
        axes[-1, k].xaxis.set_label_coords(0.5, -0.42)
        if k:
            axes[k, 0].set_ylabel(label_with_unit(name), fontsize="medium")
            axes[k, 0].yaxis.set_label_coords(-0.42, 0.5)
    return fig


def _triangle(ndim: int, panel: float = 1.7) -> np.ndarray:
    """A figure of ``ndim`` x ``ndim`` square panels [inches], made only in
    the lower triangle and on the diagonal (``None`` above): corner's layout
    without the empty axes it makes, measures and draws."""
    left, bottom, top, right = 1.3, 1.2, 0.8, 0.2
    size = panel * ndim
    width, height = size + left + right, size + bottom + top
    fig = plt.figure(figsize=(width, height))
    grid = fig.add_gridspec(ndim, ndim, left=left / width, right=1 - right / width,
                            bottom=bottom / height, top=1 - top / height,
                            wspace=0.05, hspace=0.05)
    axes = np.full((ndim, ndim), None, dtype=object)
    for i in range(ndim):
        for j in range(i + 1):
            axes[i, j] = fig.add_subplot(grid[i, j])
    return axes


class _InnerLocator(MaxNLocator):
    """Ticks at least 12% of the axis away from its ends, so that the
    rotated labels of neighbouring corner panels never meet."""

    def __call__(self):
        lo, hi = sorted(self.axis.get_view_interval())
        margin = 0.12 * (hi - lo)
        return [t for t in super().__call__() if lo + margin <= t <= hi - margin]


# -- Maps ---------------------------------------------------------------------


def draw_beam(ax, data, x0: float = 0.1, y0: float = 0.1, **kwargs) -> Ellipse:
    """The beam as an ellipse centred at axes fraction ``(x0, y0)`` (set the
    axis limits first), FWHM ``bmin`` x ``bmaj`` at ``bpa`` east of north.

    ``kwargs``: ``fill`` (default True), ``hatch``, ``lw``, ``color`` /
    ``c``, ``facecolor``, ``zorder``.
    """
    centre = ax.transData.inverted().transform(ax.transAxes.transform((x0, y0)))
    color = kwargs.get("color", kwargs.get("c", "k"))
    fill = kwargs.get("fill", True)
    beam = Ellipse(tuple(centre), width=data.bmin, height=data.bmaj,
                   angle=-data.bpa, fill=fill, hatch=kwargs.get("hatch"),
                   lw=kwargs.get("linewidth", kwargs.get("lw", 1.0)), edgecolor=color,
                   facecolor=kwargs.get("facecolor", "0.5") if fill else "none",
                   zorder=kwargs.get("zorder", 1000), label="beam")
    ax.add_patch(beam)
    return beam


def decorate_map(ax, data, beam: bool = True) -> None:
    """Sky axes for a map of ``data``: Delta RA (decreasing to the east) and
    Delta Dec in arcsec, equal aspect, the full field, the beam."""
    ax.set_aspect(1)
    ax.set_xlim(data.extent[0], data.extent[1])
    ax.set_ylim(data.extent[2], data.extent[3])
    ax.set_xlabel(X_LABEL)
    ax.set_ylabel(Y_LABEL)
    ax.tick_params(which="both", right=True, top=True, direction="in")
    ax.grid(ls="--", color="k", alpha=0.15, lw=0.5)
    if beam:
        draw_beam(ax, data)


def velocity_limits(values, centre: float | None = None) -> tuple[float, float]:
    """Colour limits [unit of ``values``]: the 2-98 percentile range made
    symmetric about ``centre`` (the median of ``values`` by default)."""
    finite = np.asarray(values)[np.isfinite(values)]
    if finite.size == 0:
        return -1.0, 1.0
    centre = float(np.median(finite)) if centre is None else centre
    lo, hi = np.percentile(finite, [2, 98])
    half = max(abs(lo - centre), abs(hi - centre)) or 1.0
    return centre - half, centre + half


def show_map(ax, data, values, unit: str = "m/s", vmin=None, vmax=None,
             cb_label: str | None = None, symmetric_about=None,
             imshow_kwargs: dict | None = None, colorbar: bool = True, cax=None):
    """``values`` [m/s] on ``data``'s sky grid, shown in ``unit``, with a
    colour bar saying the unit.

    Args:
        ax: the axes.
        data: the map (its grid and beam).
        values: the image [m/s].
        unit: ``'m/s'`` or ``'km/s'``.
        vmin, vmax: colour limits [unit]; default: the 2-98 percentile range
            symmetric about ``symmetric_about`` [m/s] (the median by default).
        cb_label: colour-bar label; ``'[unit]'`` is added if it has no unit;
            ``''`` draws no colour bar.
        imshow_kwargs: more arguments for ``imshow`` (``cmap``, ...).
        cax: the colour bar's axes (default: taken from ``ax``).

    Returns:
        The image.
    """
    factor = VELOCITY_UNITS[unit]
    shown = np.asarray(values, dtype=float) * factor
    lo, hi = velocity_limits(shown, None if symmetric_about is None
                             else symmetric_about * factor)
    kw = dict(imshow_kwargs or {})
    kw.setdefault("cmap", "RdBu_r")
    kw.setdefault("vmin", lo if vmin is None else vmin)
    kw.setdefault("vmax", hi if vmax is None else vmax)
    kw.update(origin="lower", extent=data.extent)
    im = ax.imshow(shown, **kw)
    decorate_map(ax, data)
    if colorbar and cb_label != "":
        text = r"$v_0$" if cb_label is None else cb_label
        if unit not in text and "s^{-1}" not in text:
            text = f"{text} [{unit}]"
        where = {"cax": cax} if cax is not None else {"ax": ax, "shrink": 0.9}
        ax.figure.colorbar(im, label=text, extend="both", **where)
    return im


def residual_image(data, model, mask=None) -> np.ndarray:
    """data - model [m/s]; NaN where there is no data or outside ``mask``."""
    resid = np.asarray(data.data) - np.asarray(model)
    return resid if mask is None else np.where(mask, resid, np.nan)


def show_residual(ax, data, model, mask=None, imshow_kwargs=None,
                  colorbar: bool = True, unit: str = "m/s", cax=None):
    """data - model on a colour scale symmetric about zero, as astro-eddy:
    the larger of |2nd| and |98th| percentile over the fitted pixels."""
    resid = residual_image(data, model, mask)
    finite = resid[np.isfinite(resid)]
    rlim = 1.0
    if finite.size:
        rlim = float(np.max(np.abs(np.percentile(finite, [2, 98]))))
        rlim *= VELOCITY_UNITS[unit]
    return show_map(ax, data, resid, unit, -rlim, rlim,
                    r"$v_0 - v_{0,\rm model}$" if colorbar else "",
                    imshow_kwargs=imshow_kwargs, cax=cax)


def shade_unfitted(ax, data, mask) -> None:
    """Grey over the pixels outside ``mask`` (bool or number, > 0 = fitted)
    and a line around the fitted ones."""
    inside = np.asarray(mask, dtype=float) > 0
    ax.contour(data.xaxis, data.yaxis, inside.astype(float), [0.5], colors="k",
               linewidths=0.7)
    ax.contourf(data.xaxis, data.yaxis, inside.astype(float), [-0.5, 0.5],
                colors="k", alpha=0.35)


def plot_maps(data, model, mask=None, title: str = "model"):
    """Data, model and residual (data - model) side by side, all in m/s; data
    and model share one colour scale, the residual is centred on zero."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.0), constrained_layout=True)
    shown = np.where(np.isfinite(data.data), model, np.nan)
    lo, hi = velocity_limits(data.data)
    for ax, values, name in zip(axes[:2], [data.data, shown], ["data", title]):
        show_map(ax, data, values, "m/s", lo, hi, colorbar=ax is axes[1])
        ax.set_title(name, fontsize=10)
    show_residual(axes[2], data, model, mask)
    axes[2].set_title(_residual_title(mask), fontsize=10)
    return fig


def _residual_title(mask):
    return "data - model (fitted pixels)" if mask is not None else "data - model"


def _map_panels(data, n: int, panel: float = 3.4):
    """A figure of ``n`` maps of ``data``'s shape side by side and a colour
    bar's axes right of them, at fixed margins [inches]: no layout engine
    measuring every label again at each draw."""
    x0, x1, y0, y1 = data.extent
    left, gap, bottom, top, bar, right = 0.75, 0.8, 0.55, 0.35, 0.15, 0.95
    height = panel * abs(y1 - y0) / abs(x1 - x0)
    w, h = left + n * panel + (n - 1) * gap + 0.12 + bar + right, bottom + height + top
    fig = plt.figure(figsize=(w, h))
    axes = [fig.add_axes(((left + i * (panel + gap)) / w, bottom / h, panel / w,
                          height / h)) for i in range(n)]
    cax = fig.add_axes(((w - right - bar) / w, (bottom + 0.05 * height) / h, bar / w,
                        0.9 * height / h), label="<colorbar>")
    return fig, axes, cax


def plot_bestfit(data, model, mask=None):
    """The best-fit model map beside the data, on one colour scale [m/s]; a
    line around the fitted pixels."""
    fig, axes, cax = _map_panels(data, 2)
    shown = np.where(np.isfinite(data.data), model, np.nan)
    lo, hi = velocity_limits(data.data)
    for ax, values in zip(axes, [data.data, shown]):
        show_map(ax, data, values, "m/s", lo, hi, colorbar=ax is axes[1], cax=cax)
    if mask is not None:
        axes[1].contour(data.xaxis, data.yaxis, np.asarray(mask, float), [0.5],
                        colors="k", linewidths=0.7)
    axes[0].set_title("data", fontsize=10)
    axes[1].set_title("best-fit model (line: fitted pixels)" if mask is not None
                      else "best-fit model", fontsize=10)
    return fig


def plot_residual(data, model, mask=None):
    """Residual map data - model [m/s] on a scale symmetric about zero."""
    fig, (ax,), cax = _map_panels(data, 1)
    show_residual(ax, data, model, mask, cax=cax)
    ax.set_title(_residual_title(mask), fontsize=10)
    return fig


# -- Disk geometry on a map ----------------------------------------------------


def draw_disk_axes(ax, x0: float = 0.0, y0: float = 0.0, inc: float = 0.0,
                   PA: float = 0.0, major: float = 1.0, **plot_kwargs) -> None:
    """The disk's major axis (length ``2 major``, at ``PA`` east of north) and
    minor axis (``2 major cos(inc)``) through ``(x0, y0)`` [arcsec]."""
    pa, ci = math.radians(PA), math.cos(math.radians(inc))
    kw = {"color": plot_kwargs.pop("c", plot_kwargs.pop("color", "k")),
          "ls": plot_kwargs.pop("linestyle", plot_kwargs.pop("ls", ":")),
          "lw": plot_kwargs.pop("linewidth", plot_kwargs.pop("lw", 1.0)), **plot_kwargs}
    ux, uy = math.sin(pa), math.cos(pa)          # along the major axis
    ax.plot([x0 + major * ux, x0 - major * ux], [y0 + major * uy, y0 - major * uy],
            **kw)
    ax.plot([x0 + major * ci * uy, x0 - major * ci * uy],
            [y0 - major * ci * ux, y0 + major * ci * ux], **kw)


def draw_surface(ax, data, r, phi, r_max=None, r_min=None, mask=None,
                 contour_kwargs: dict | None = None) -> None:
    """Contours of the emission surface's radius (every 0.5 arcsec) and
    azimuth (every 22.5 deg) on ``data``'s grid.

    Args:
        r, phi: disk-frame radius [arcsec] and azimuth [rad] of every pixel.
        r_max: outermost contour [arcsec] (default: the largest ``r``).
        r_min: no azimuth lines inside it (default half the beam).
        mask: draw only where true.
        contour_kwargs: ``levels`` (radii), ``colors``, ``linewidths``, ...
    """
    r = np.array(r, dtype=float)
    phi = np.array(phi, dtype=float)
    r_max = float(np.nanmax(r)) if r_max is None else float(r_max)
    r_min = 0.5 * data.bmaj if r_min is None else float(r_min)
    keep = r <= r_max
    if mask is not None:
        keep &= np.asarray(mask, dtype=bool)
    r = np.where(keep, r, np.nan)
    kw = dict(contour_kwargs or {})
    levels = kw.pop("levels", np.arange(0.5, 0.99 * r_max, 0.5))
    kw.setdefault("colors", "k")
    kw.setdefault("linewidths", 0.8)
    ax.contour(data.xaxis, data.yaxis, r, np.append(levels, 0.99 * r_max), **kw)
    phi = np.where(keep & (r >= r_min), phi, np.nan)
    for t in np.arange(-np.pi, np.pi, np.pi / 8.0):
        # The angle from t, wrapped to (-pi, pi] and kept within 90 deg of
        # it, crosses zero only along the azimuth t (not at the seam).
        d = (phi - t + np.pi) % (2 * np.pi) - np.pi
        d = np.where(np.abs(d) < 0.5 * np.pi, d, np.nan)
        if np.nanmin(d, initial=np.inf) < 0 < np.nanmax(d, initial=-np.inf):
            ax.contour(data.xaxis, data.yaxis, d, [0.0], **kw)


def plot_velocity_profiles(rpnts, velo, dvelo, keplerian=None):
    """Rotation curve from annulus fits: v_phi [km/s], v_r [m/s] and v_lsr
    (or v_z when a fixed v_lsr was given) [m/s] against radius [arcsec].

    Args:
        rpnts: annulus centres [arcsec].
        velo, dvelo: ``(4, n)`` arrays of v_phi, v_r, v_z, v_lsr and their
            uncertainties [m/s] (``fit_annuli``'s profiles).
        keplerian: optional ``(r, v)`` [arcsec, m/s], a Keplerian curve drawn
            on the v_phi panel.
    """
    rpnts = np.asarray(rpnts, float)
    velo, dvelo = np.asarray(velo, float), np.asarray(dvelo, float)
    fig, axes = plt.subplots(3, 1, figsize=(6.75, 6.25), sharex=True,
                             constrained_layout=True)
    axes[0].errorbar(rpnts, velo[0] / 1e3, dvelo[0] / 1e3, fmt="-o", ms=3,
                     label="annuli")
    axes[0].set_ylabel(r"$v_{\phi}$ [km/s]")
    if keplerian is not None:
        axes[0].plot(keplerian[0], np.asarray(keplerian[1]) / 1e3, color="tab:red",
                     lw=1, label="Keplerian", zorder=3)   # above the error bars
        axes[0].legend(fontsize=8)
    axes[1].errorbar(rpnts, velo[1], dvelo[1], fmt="-o", ms=3)
    axes[1].axhline(0.0, color="0.6", lw=0.8)
    axes[1].set_ylabel(r"$v_r$ [m/s]")
    for y, va, text in ((0.92, "top", "away from star"), (0.08, "bottom", "towards star")):
        axes[1].text(0.98, y, text, ha="right", va=va, transform=axes[1].transAxes,
                     color="0.5", fontsize=8)
    if np.isfinite(velo[2]).any() and np.nanmax(np.abs(velo[2])) > 0.0:
        axes[2].errorbar(rpnts, velo[2], dvelo[2], fmt="-o", ms=3)
        axes[2].axhline(0.0, color="0.6", lw=0.8)
        axes[2].set_ylabel(r"$v_z$ [m/s]")
        axes[2].text(0.02, 0.92, rf"$v_{{\rm LSR}}$ = {np.nanmedian(velo[3]):.0f} m/s",
                     ha="left", va="top", transform=axes[2].transAxes, color="0.5",
                     fontsize=8)
    else:
        axes[2].errorbar(rpnts, velo[3], dvelo[3], fmt="-o", ms=3)
        axes[2].set_ylabel(r"$v_{\rm LSR}$ [m/s]")
    axes[2].set_xlabel("radius [arcsec]")
    for ax in axes:
        ax.grid(ls="--", color="0.9", lw=1.0)
    if rpnts.size > 1:
        axes[2].set_xlim(rpnts.min(), rpnts.max())
    return fig


def plot_polar_residual(rgrid, phi_deg, residual, vmax=None):
    """A residual map deprojected onto the disk's (r, phi) [arcsec, deg]
    plane, in m/s on a symmetric diverging scale: a ring is a vertical band
    of constant r, a localised perturbation a spot."""
    residual = np.asarray(residual, float)
    if vmax is None:
        finite = residual[np.isfinite(residual)]
        vmax = float(np.percentile(np.abs(finite), 98)) if finite.size else 1.0
    fig, ax = plt.subplots(figsize=(6.75, 4.0), constrained_layout=True)
    image = ax.pcolormesh(rgrid, phi_deg, residual, cmap="RdBu_r", vmin=-vmax,
                          vmax=vmax, shading="auto")
    ax.set_xlabel("radius [arcsec]")
    ax.set_ylabel(r"azimuth $\phi$ [deg] (0: red-shifted major axis)")
    ax.set_yticks(np.arange(-180, 181, 60))
    fig.colorbar(image, ax=ax, label="residual v0 [m/s]")
    return fig
