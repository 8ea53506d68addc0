"""astro-eddy's figure and export methods of ``rotationmap``: maps of the
data, model and residual, the emission surface, disk axes, the beam, and the
model / residual written to FITS. A mixin of
:class:`eddy_widgets.rotationmap.rotationmap`; the drawing lives in
:mod:`eddy_widgets.plots`, the FITS writing in :mod:`eddy_widgets.analysis`.

Every map is drawn on sky axes (Delta RA decreasing to the east, Delta Dec,
in arcsec) with the beam in its lower-left corner and one unit per colour bar,
said on it: v0 in km/s (``plot_data``, ``plot_model``, as astro-eddy),
residuals in m/s. Where astro-eddy takes ``ax``, so do these; with
``return_fig=True`` they return the figure (also when drawn on a given
``ax``, where astro-eddy would fail).

:meth:`FigureMethods.fit_figures` makes the figures of ``fit_map(plots=...)``
in astro-eddy 3.2's layout: a walker figure per free parameter, the corner
plot, the model (km/s) and the residual (m/s), opened in that order, so that
a script that takes figures by number gets the same plots.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from .. import plots as P
from ..analysis.export import map_header, output_paths, write_map
from ..inference.diagnostics import sample_medians
from ..inference.spec import FitSpec
from ..parameters import label, label_with_unit

#: ``plot_surface(fill=...)``: what may be shown under the contours.
SURFACE_FILLS = ("data", "rvals", "tvals", "zvals")


#: ``fit_map``'s figures when ``plots`` is not given (astro-eddy's).
FIT_PLOTS = ("walkers", "corner", "bestfit", "residual")


class FigureMethods:
    """Figures and FITS export (astro-eddy's names)."""

    # -- The figures of a fit ---------------------------------------------------------

    def fit_figures(self, run, plots=FIT_PLOTS, truths: dict | None = None) -> dict:
        """The figures of ``fit_map(plots=...)`` by name, in astro-eddy 3.2's
        layout and order, each a pyplot figure (numbered in that order):

        - ``'walkers'``: one figure per free parameter, in the order of
          ``p0`` (``'walkers_x0'``, ``'walkers_PA'``, ...), each titled by
          its parameter: every walker or chain against step, burn-in /
          warmup shaded, and the histogram of the post-burn-in draws beside;
        - ``'corner'``: :func:`eddy_widgets.plots.plot_corner`;
        - ``'bestfit'``: :meth:`plot_model`, v0 in km/s, the unfitted
          pixels shaded;
        - ``'residual'``: :meth:`plot_model_residual`, in m/s, likewise;
        - ``'mask'`` (which astro-eddy 3.2 accepts and does not draw): last,
          so that the others keep astro-eddy's numbers: :meth:`plot_data`
          with the unfitted pixels shaded.

        One model map (at the posterior medians, as ``returns='model'``)
        serves both maps; astro-eddy averages 10 random draws for each.
        Without post-warmup draws (a stopped run) only the walkers and the
        mask are drawn. ``truths`` (``{name: value}``) draws true values on
        the walkers and the corner plot.
        """
        plots = list(FIT_PLOTS if plots is None else np.atleast_1d(plots))
        figures = {}
        if "none" in plots:
            return figures
        result = run.result
        sampled = result.n_draws("sampling") > 0
        if "walkers" in plots:
            for i, name in enumerate(result.names):
                figures[f"walkers_{name}"] = walker_figure(
                    result, i, None if not truths else truths.get(name))
        if sampled and "corner" in plots:
            figures["corner"] = P.plot_corner(result, truths)
        mask = run.posterior.mask
        if sampled and ("bestfit" in plots or "residual" in plots):
            model = self.median_model(run)
            if "bestfit" in plots:
                fig = self.plot_model(model=model, mask=mask, return_fig=True)
                fig.axes[0].set_title("model at the posterior medians", fontsize=10)
                figures["bestfit"] = fig
            if "residual" in plots:
                fig = self.plot_model_residual(model=model, mask=mask, return_fig=True)
                fig.axes[0].set_title("data - model (fitted pixels)", fontsize=10)
                figures["residual"] = fig
        if "mask" in plots:
            figures["mask"] = self.plot_data(ivar=mask.astype(float), return_fig=True)
        for name, fig in figures.items():
            fig.set_label(name)
        return figures

    # -- Maps -------------------------------------------------------------------

    def plot_data(self, vmin=None, vmax=None, ivar=None, return_fig=False):
        """The v0 map [km/s] on a colour scale centred on the systemic
        velocity (the map's median; 2-98 percentile range).

        Args:
            vmin, vmax: colour limits [km/s].
            ivar: inverse variances (or any map, > 0 = used): pixels where it
                is 0 are shaded and a line drawn around the others.
            return_fig: return the figure.
        """
        fig, ax = plt.subplots(figsize=(5.6, 4.6), constrained_layout=True)
        P.show_map(ax, self.map, self.map.data, "km/s", vmin, vmax,
                   symmetric_about=self.vlsr)
        if ivar is not None:
            P.shade_unfitted(ax, self.map, ivar)
        return fig if return_fig else None

    def plot_model(self, samples=None, params=None, model=None, draws=0.5,
                   mask=None, ax=None, imshow_kwargs=None, cb_label=None,
                   return_fig=False):
        """A v0 model [km/s] on the scale of :meth:`plot_data`.

        Args:
            samples, params: make the model with :meth:`evaluate_models`
                (``draws``: an int averages that many random draws, a float
                in (0, 1) takes that percentile of the samples).
            model: a model map [m/s] instead.
            mask: fitted pixels (> 0); the others are shaded.
            ax: axes to draw on (default: a new figure).
            imshow_kwargs: more ``imshow`` arguments (``cmap``, ``vmin``...).
            cb_label: colour-bar label (the unit is added); ``''`` for none.
            return_fig: return the figure.
        """
        model = self._model(samples, params, model, draws)
        ax = self._axes(ax)
        P.show_map(ax, self.map, model, "km/s",
                   cb_label=r"$v_{0,\rm model}$" if cb_label is None else cb_label,
                   symmetric_about=self.vlsr, imshow_kwargs=imshow_kwargs)
        if mask is not None:
            P.shade_unfitted(ax, self.map, mask)
        return ax.figure if return_fig else None

    def plot_model_residual(self, samples=None, params=None, model=None, draws=0.5,
                            mask=None, ax=None, imshow_kwargs=None, return_fig=False):
        """data - model [m/s] on a scale symmetric about zero; with ``mask``
        only the fitted pixels (> 0) are shown and the others shaded.
        Arguments as :meth:`plot_model`."""
        model = self._model(samples, params, model, draws)
        ax = self._axes(ax)
        inside = None if mask is None else np.asarray(mask, dtype=float) > 0
        P.show_residual(ax, self.map, model, inside, imshow_kwargs)
        if mask is not None:
            P.shade_unfitted(ax, self.map, inside)
        return ax.figure if return_fig else None

    # -- Geometry on the sky --------------------------------------------------------

    def plot_surface(self, x0=0.0, y0=0.0, inc=0.0, PA=0.0, z0=None, psi=1.0,
                     r_cavity=0.0, r_taper=np.inf, q_taper=1.0, r_max=None,
                     mask=None, fill=None, ax=None, contour_kwargs=None,
                     imshow_kwargs=None, return_fig=True, **_):
        """Contours of the emission surface: radius every 0.5 arcsec and
        azimuth every 22.5 deg, out to ``r_max`` [arcsec].

        Args:
            x0, y0, inc, PA, z0, psi, r_cavity, r_taper, q_taper: the disk
                (astro-eddy's units: arcsec, deg).
            r_max: outermost radius drawn (default the largest in the field).
            mask: draw only where true (e.g. ``np.isfinite(cube.data)``).
            fill: show under the contours ``'data'`` (v0, km/s) or the disk
                coordinate ``'rvals'``, ``'tvals'``, ``'zvals'``.
            ax: axes to draw on; then nothing is returned.
            contour_kwargs: ``levels`` (radii), ``colors``, ``linewidths``...
            imshow_kwargs: for the ``fill`` image.
            return_fig: return the new figure.
        """
        r, phi, z = self.disk_coords(x0, y0, inc, PA, z0, psi, r_cavity, r_taper,
                                     q_taper)
        new = ax is None
        ax = self._axes(ax)
        if fill is not None:
            if fill not in SURFACE_FILLS:
                raise ValueError(f"fill={fill!r}: choose from "
                                 f"{', '.join(SURFACE_FILLS)}.")
            if fill == "data":
                P.show_map(ax, self.map, self.map.data, "km/s",
                           symmetric_about=self.vlsr, imshow_kwargs=imshow_kwargs)
            else:
                image = {"rvals": r, "tvals": np.degrees(phi), "zvals": z}[fill]
                unit = "deg" if fill == "tvals" else "arcsec"
                im = ax.imshow(image, origin="lower", extent=self.map.extent,
                               **dict(imshow_kwargs or {}))
                ax.figure.colorbar(im, ax=ax, label=f"{fill[0]} [{unit}]", shrink=0.9)
        if fill != "data":
            P.decorate_map(ax, self.map)
        P.draw_surface(ax, self.map, r, phi, r_max=r_max, mask=mask,
                       contour_kwargs=contour_kwargs)
        return ax.figure if new and return_fig else None

    def plot_model_surface(self, samples, params, plot_surface_kwargs=None,
                           mask_with_data=True, return_fig=True):
        """:meth:`plot_surface` at the median of ``samples`` (the fitted
        surface), only where the data are finite if ``mask_with_data``.
        ``plot_surface_kwargs`` go to :meth:`plot_surface` (``ax``, ``fill``,
        ``r_max``, ``contour_kwargs``...)."""
        values = self._median_params(samples, params)
        kwargs = dict(plot_surface_kwargs or {})
        kwargs.setdefault("mask",
                          np.isfinite(self.map.data) if mask_with_data else None)
        kwargs.setdefault("return_fig", True)
        given_ax = kwargs.get("ax")
        fig = self.plot_surface(**{**values, **kwargs})
        if given_ax is not None:
            fig = given_ax.figure
        return fig if return_fig else None

    def plot_disk_axes(self, x0=0.0, y0=0.0, inc=0.0, PA=0.0, major=1.0, ax=None,
                       plot_kwargs=None, return_ax=True):
        """The disk's major axis (``2 major`` long [arcsec], at ``PA`` east of
        north) and minor axis (``2 major cos(inc)``) through ``(x0, y0)``;
        dotted black lines unless ``plot_kwargs`` say otherwise. Returns the
        axes if ``return_ax`` (astro-eddy's docstring says so, its code
        returns nothing)."""
        if ax is None:
            ax = self._axes(None)
            P.decorate_map(ax, self.map)
        P.draw_disk_axes(ax, x0, y0, inc, PA, major, **dict(plot_kwargs or {}))
        return ax if return_ax else None

    def plot_beam(self, ax, x0=0.1, y0=0.1, **kwargs):
        """The beam on ``ax`` at axes fraction ``(x0, y0)`` (set the limits
        first). ``kwargs``: ``fill``, ``hatch``, ``lw``, ``color``,
        ``zorder``. Returns the :class:`~matplotlib.patches.Ellipse`."""
        return P.draw_beam(ax, self.map, x0, y0, **kwargs)

    # -- FITS ---------------------------------------------------------------------

    def to_fits(self, path, data=None, header=None, overwrite=False):
        """Write a map on this map's grid to FITS.

        Args:
            path: the file to write.
            data: the values, ``(ny, nx)`` like :attr:`data`, in m/s (default:
                the map itself, in m/s).
            header: written as given; by default the map's header with its
                pixel grid rebuilt for the pixels in memory (FOV, downsample),
                so each pixel keeps its RA/Dec, its beam and ``BUNIT = 'm/s'``
                (for values in other units pass
                ``eddy_widgets.analysis.export.map_header(cube.map, bunit)``).
            overwrite: replace an existing file (default ``False``: an
                existing file is a :class:`FileExistsError`).

        Returns:
            The path written (the file is written whole or not at all).
        """
        values = self.map.data if data is None else np.asarray(data, dtype=float)
        if header is None:
            if values.shape != self.map.shape:
                raise ValueError(f"data has shape {values.shape} but the map is "
                                 f"{self.map.shape}: pass a header for another grid.")
            header = map_header(self.map, "m/s")
        return write_map(path, values, header, overwrite=overwrite)

    def save_model(self, samples=None, params=None, model=None, filename=None,
                   overwrite=True):
        """Write the model and the residual (data - model) to FITS, both in
        m/s on this map's grid (its WCS, as :meth:`to_fits`, also after
        ``FOV`` and ``downsample``, where astro-eddy cannot).

        Args:
            samples, params: make the model with :meth:`evaluate_models`.
            model: a model map [m/s] instead.
            filename: the model's file; default: the map's path with
                ``.fits`` -> ``_model.fits`` (astro-eddy's). The residual goes
                next to it, ``_model.fits`` -> ``_residual.fits`` (or
                ``X.fits`` -> ``X_residual.fits``).
            overwrite: replace existing files (astro-eddy's default ``True``);
                with ``False`` an existing file is a :class:`FileExistsError`
                and nothing is written.

        Returns:
            ``(model path, residual path)``. The residual is NaN where the
            map has no data. The two are written both or neither: if one
            cannot be written (a full disk), neither is, and files written
            before are left as they were.
        """
        from astropy.io import fits

        from ..atomic import write_group

        model = self._model(samples, params, model, draws=50)
        if filename is None:
            path = Path(str(self.map.path))
            filename = path.with_name(path.name.replace(".fits", "") + "_model.fits")
        model_path = Path(filename).expanduser()
        stem = model_path.name[:-len(".fits")] if model_path.name.endswith(".fits") \
            else model_path.name
        stem = stem[:-len("_model")] if stem.endswith("_model") else stem
        residual_path = model_path.with_name(stem + "_residual.fits")
        output_paths([model_path, residual_path], overwrite)
        residual = np.where(np.isfinite(self.map.data), self.map.data - model, np.nan)
        files = []
        for path, values, what in ((model_path, model, "v0 model"),
                                   (residual_path, residual, "v0 data - model")):
            header = map_header(self.map, "m/s", f"eddy_widgets: {what} [m/s].")
            header["BTYPE"] = "Velocity"
            hdu = fits.PrimaryHDU(np.asarray(values), header=header)
            files.append((path, hdu.writeto))
        return tuple(write_group(files, overwrite=overwrite))

    # -- Helpers ------------------------------------------------------------------

    def _model(self, samples, params, model, draws):
        """The model map [m/s]: ``model`` checked, or made from the samples."""
        if model is None:
            if params is None:
                raise ValueError("Give model= (a map in m/s) or params= (with "
                                 "samples= if it has free parameters).")
            return np.asarray(self.evaluate_models(samples, dict(params), draws=draws))
        model = np.asarray(model, dtype=float)
        if model.shape != self.map.shape:
            raise ValueError(f"model has shape {model.shape} but the map is "
                             f"{self.map.shape}.")
        return model

    def _median_params(self, samples, params) -> dict:
        """Model parameters with the free ones at the samples' medians (angles
        on the circle)."""
        spec = FitSpec.parse(dict(params))
        samples = np.atleast_2d(np.asarray(samples, dtype=float))
        if samples.shape[1] != spec.ndim:
            raise ValueError(f"samples have {samples.shape[1]} columns but params has "
                             f"{spec.ndim} free parameters.")
        values = spec.model_params(sample_medians(samples, spec.free))
        return {k: v for k, v in values.items() if v is not None}

    @staticmethod
    def _axes(ax):
        if ax is not None:
            return ax
        return plt.subplots(figsize=(5.6, 4.6), constrained_layout=True)[1]


def walker_figure(result, index: int, truth: float | None = None):
    """astro-eddy's walker figure of one free parameter (``result.names
    [index]``), titled by it: every walker or chain against step with the
    burn-in / warmup shaded and the true value (if given) in red, and on the
    right the histogram of the post-burn-in draws on the same y axis (10
    to 40 bins over their range, sqrt of their number)."""
    name = result.names[index]
    width, height = 7.0, 3.0
    left, bottom, right, top, gap, side = 0.95, 0.5, 0.15, 0.35, 0.05, 1.4
    fig = plt.figure(figsize=(width, height))
    main = fig.add_axes([left / width, bottom / height,
                         (width - left - right - gap - side) / width,
                         (height - bottom - top) / height])
    hist = fig.add_axes([(width - right - side) / width, bottom / height,
                         side / width, (height - bottom - top) / height], sharey=main)
    chains = np.concatenate([result.chains["warmup"][:, :, index],
                             result.chains["sampling"][:, :, index]], axis=1)
    P.draw_chains(main, chains, result.chains["warmup"].shape[1], truth)
    main.set_ylabel(label_with_unit(name))
    main.set_xlabel("step (shaded: burn-in / warmup)")
    word = result.backend_spec.unit
    main.set_title(f"{label(name)}: {P.plural(result.nchains, word)} ({result.backend})",
                   fontsize=10)
    post = result.chains["sampling"][:, :, index].ravel()
    post = post[np.isfinite(post)]
    if post.size:
        lo, hi = post.min(), post.max()
        bins = int(np.clip(np.sqrt(post.size), 10, 40))
        edges = np.linspace(lo, hi, bins + 1) if hi > lo else np.array([lo - 0.5, lo + 0.5])
        hist.hist(post, bins=edges, orientation="horizontal", histtype="stepfilled",
                  color="0.6", lw=0)
    hist.set_xlim(left=0)
    hist.set_ylim(main.get_ylim())
    hist.tick_params(left=False, labelleft=False, bottom=False, labelbottom=False)
    for spine in ("top", "right", "bottom"):
        hist.spines[spine].set_visible(False)
    return fig
