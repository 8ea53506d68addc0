"""astro-eddy's after-fit methods of ``rotationmap`` that work in the disk
frame: deprojections, residual decompositions, radial profiles and the
rotation curve. A mixin of :class:`eddy_widgets.rotationmap.rotationmap`; the
computations live in :mod:`eddy_widgets.analysis`."""

from __future__ import annotations

import warnings

import numpy as np

from ..analysis import annuli, colour_limits, deprojection, profiles
from ..analysis.deprojection import DiskGeometry
from ..inference.diagnostics import sample_medians
from ..inference.spec import FitSpec
from .map_methods import choices

ANNULI_PLOTS = ("profiles", "model", "residual", "none")
ANNULI_RETURNS = ("profiles", "model", "residual")


class AfterFitMethods:
    """Deprojections, profiles, residuals and annulus fits (astro-eddy's names).

    Geometry keywords everywhere: ``x0``, ``y0`` [arcsec], ``inc``, ``PA``
    [deg], ``z0`` [arcsec], ``psi``, ``r_cavity``, ``r_taper`` [arcsec],
    ``q_taper`` (see :class:`~eddy_widgets.analysis.deprojection.DiskGeometry`),
    ``z_func`` (a callable surface ``z(r)``, where the model layer supports
    it) and ``shadowed`` (not supported: a ``NotImplementedError``).
    """

    # -- Deprojection ------------------------------------------------------------

    def polar_deprojection(self, data, x0=0.0, y0=0.0, inc=0.0, PA=0.0, z0=None,
                           psi=None, r_taper=None, q_taper=1.0, r_cavity=0.0,
                           z_func=None, shadowed=False, rgrid=None, tgrid=None,
                           griddata_kwargs=None):
        """Regrid ``data`` (a map on this grid) onto a disk-frame polar grid.

        Returns:
            ``(rgrid, tgrid, gridded)``: radii [arcsec], polar angles [rad]
            and the map, ``gridded[j, i]`` at ``(tgrid[j], rgrid[i])``
            (``griddata`` ``method='nearest'`` unless ``griddata_kwargs``
            says otherwise).
        """
        geometry = DiskGeometry(x0, y0, inc, PA, z0, psi, r_cavity, r_taper, q_taper,
                                z_func, shadowed)
        return deprojection.polar_deprojection(data, self.xaxis, self.yaxis, geometry,
                                               rgrid, tgrid, griddata_kwargs)

    def cartesian_deprojection(self, data, x0=0.0, y0=0.0, inc=0.0, PA=0.0, z0=None,
                               psi=None, r_taper=None, q_taper=1.0, r_cavity=0.0,
                               z_func=None, shadowed=False, grid=None,
                               griddata_kwargs=None):
        """Regrid ``data`` onto a face-on cartesian grid (default: ``yaxis``).

        Returns:
            ``(grid, gridded)`` [arcsec], ``gridded[i, j]`` at disk
            ``x = grid[i]`` (major axis), ``y = grid[j]`` as in astro-eddy.
        """
        geometry = DiskGeometry(x0, y0, inc, PA, z0, psi, r_cavity, r_taper, q_taper,
                                z_func, shadowed)
        return deprojection.cartesian_deprojection(data, self.xaxis, self.yaxis,
                                                   geometry, grid, griddata_kwargs)

    # -- Radial profiles ---------------------------------------------------------

    def radial_sampling(self, rbins=None, rvals=None, dr=None):
        """``(rbins, rvals)``: bin edges and centres [arcsec] (default bins a
        quarter beam wide from 0 to the edge of the map)."""
        return profiles.radial_sampling(rbins, rvals, dr, bmaj=self.bmaj,
                                        dpix=self.dpix, r_max=float(np.max(self.xaxis)))

    def radial_profile(self, rbins=None, rvals=None, dr=None, x0=0.0, y0=0.0, inc=0.0,
                       PA=0.0, z0=None, psi=None, r_cavity=0.0, r_taper=None,
                       q_taper=1.0, z_func=None, shadowed=False, data=None,
                       assume_correlated=True, percentiles=False):
        """Azimuthally averaged profile of ``data`` (default: the v0 map).

        Returns:
            ``(x, y, dy)``: bin centres [arcsec], the mean (median with
            ``percentiles``) and its uncertainty: the scatter divided by
            ``sqrt(2 pi r / bmaj)`` with ``assume_correlated``, else the
            scatter; ``dy`` has shape ``(2, n)`` with ``percentiles``.
        """
        data = self.data if data is None else data
        rbins, _ = self.radial_sampling(rbins, rvals, dr)
        r = self._pixel_radii(x0, y0, inc, PA, z0, psi, r_cavity, r_taper, q_taper,
                              z_func, shadowed, data)
        return profiles.radial_profile(data, r, rbins, self.bmaj, assume_correlated,
                                       percentiles)

    def background_residual(self, rbins=None, rvals=None, dr=None, x0=0.0, y0=0.0,
                            inc=0.0, PA=0.0, z0=None, psi=None, r_cavity=0.0,
                            r_taper=None, q_taper=1.0, z_func=None, shadowed=False,
                            data=None, return_background=False):
        """``data`` minus its azimuthal average (or that background with
        ``return_background``), on this grid."""
        data = self.data if data is None else data
        rbins, _ = self.radial_sampling(rbins, rvals, dr)
        r = self._pixel_radii(x0, y0, inc, PA, z0, psi, r_cavity, r_taper, q_taper,
                              z_func, shadowed, data)
        return profiles.background_residual(data, r, rbins, self.bmaj,
                                            return_background)

    def _pixel_radii(self, x0, y0, inc, PA, z0, psi, r_cavity, r_taper, q_taper,
                     z_func, shadowed, data):
        geometry = DiskGeometry(x0, y0, inc, PA, z0, psi, r_cavity, r_taper, q_taper,
                                z_func, shadowed)
        r = geometry.coords(self.xaxis, self.yaxis)[0]
        if np.shape(data) != r.shape:
            raise ValueError(f"data has shape {np.shape(data)} but the map is "
                             f"{r.shape}.")
        return r

    # -- Residuals of a fit ------------------------------------------------------

    def _fitted(self, samples, params, model: bool = True):
        """Model parameters (values) at the median of ``samples`` and, with
        ``model``, the map of that model (else ``None``)."""
        spec = FitSpec.parse(params)
        if samples is None:
            if spec.free:
                raise ValueError(f"params has free parameters ({', '.join(spec.free)})"
                                 f" but no samples were given.")
            theta = np.zeros(0)
        else:
            samples = np.atleast_2d(np.asarray(samples, float))
            if samples.shape[1] != spec.ndim:
                raise ValueError(f"samples have {samples.shape[1]} columns but params "
                                 f"has {spec.ndim} free parameters.")
            theta = sample_medians(samples, spec.free)
        values = spec.model_params(theta)
        if not model:
            return values, None
        return values, self.evaluate_models(params=spec.to_params(theta))

    def deproject_model_residuals(self, samples, params):
        """Residuals of the posterior-median model as disk-frame velocities.

        Returns:
            ``(v_p, v_r, v_z)`` [m/s]: ``data - model`` divided by the
            projection of each component alone (``v_r`` positive away from
            the star, ``v_z`` away from the midplane); maps on this grid.
        """
        values, model = self._fitted(samples, params)
        _, phi, z = DiskGeometry.from_params(values).coords(self.xaxis, self.yaxis)
        return profiles.deproject_residual(self.data - model, phi, z, values["inc"])

    def residual_limits(self, residual, phi=None, preset=colour_limits.DEFAULT_PRESET,
                        min_abs_cos=colour_limits.MIN_ABS_COS_PHI):
        """Colour limits ``(-v, v)`` for a residual map [its unit], as the
        dashboard's maps set them: ``v`` is the ``preset`` percentile
        (``'99.5%'``, ``'98%'``, ``'95%'``, ``'min/max'`` or a number) of
        ``|residual|``; with ``phi`` (the pixels' azimuth [rad], as
        :meth:`disk_coords` gives it) the pixels with ``|cos(phi)| <
        min_abs_cos`` are left out, for the v_phi map of
        :meth:`deproject_model_residuals`, which blows up near the minor
        axis (:func:`eddy_widgets.analysis.colour_limits.mask_minor_axis`
        blanks them for display). E.g.
        ``plt.imshow(v_p, vmin=lo, vmax=hi)`` with
        ``lo, hi = cube.residual_limits(v_p, phi=phi)``."""
        return colour_limits.colour_limits(residual, preset, symmetric=True, phi=phi,
                                           min_abs_cos=min_abs_cos)

    def polar_residual(self, samples, params):
        """The residual ``data - model`` of the posterior-median model on a
        disk-frame polar grid (:meth:`polar_deprojection`), blank beyond the
        largest radius the data reach (nearest-neighbour regridding would
        fill those radii with the edge's values).

        ``samples`` may be ``None`` when ``params`` has no free parameters
        (e.g. a posterior median as ``{name: value}``).

        Returns:
            ``(rgrid, phi, residual)``: radii [arcsec], polar angles [deg]
            and the residual [m/s], ``residual[j, i]`` at ``(phi[j],
            rgrid[i])``.
        """
        values, model = self._fitted(samples, params)
        geometry = {k: values[k] for k in deprojection.GEOMETRY_NAMES
                    if values.get(k) is not None}
        residual = self.data - model
        rgrid, tgrid, polar = self.polar_deprojection(residual, **geometry)
        r_pix = self.disk_coords(**geometry)[0]
        r_data = float(np.nanmax(np.where(np.isfinite(residual), r_pix, np.nan)))
        polar = np.where(np.asarray(rgrid)[None, :] <= r_data, polar, np.nan)
        return rgrid, np.degrees(tgrid), polar

    def mirror_residual(self, samples, params, mirror_velocity_residual=True,
                        mirror_axis="minor", return_deprojected=False,
                        deprojected_dpix_scale=1.0):
        """The residual minus its mirror image about the minor or major axis
        (Huang et al. 2018; Izquierdo et al. 2021), for the posterior-median
        model.

        With ``mirror_velocity_residual`` the map is ``data - model``; else
        ``data - vlsr``, whose mirror image about the minor axis is added
        (rotation is antisymmetric about it) and about the major axis
        subtracted.

        Returns:
            ``(x, y, residual)``: the sky axes and the map on the sky, or
            with ``return_deprojected`` the face-on axis twice and the
            face-on map (``[i, j]`` at ``(x[i], y[j])``).
        """
        values, model = self._fitted(samples, params)
        if mirror_velocity_residual:
            to_mirror = self.data - model
        else:
            to_mirror = self.data - values["vlsr"]
        add = not mirror_velocity_residual and mirror_axis.lower() == "minor"
        return profiles.mirror_residual(
            to_mirror, self.xaxis, self.yaxis, DiskGeometry.from_params(values),
            mirror_axis, add, return_deprojected, deprojected_dpix_scale)

    # -- The rotation curve ------------------------------------------------------

    def fit_annuli(self, rpnts=None, rbins=None, x0=0.0, y0=0.0, inc=0.0, PA=0.0,
                   z0=0.0, psi=1.0, r_cavity=0.0, r_taper=np.inf, q_taper=1.0,
                   z_func=None, shadowed=False, phi_min=None, phi_max=None,
                   exclude_phi=False, abs_phi=False, mask_frame="disk",
                   user_mask=None, fit_vrad=True, fix_vlsr=None, beam_spacing=0,
                   niter=1, plots=None, returns=None, optimize_kwargs=None,
                   MCMC=False, assume_correlated=False, mcmc_kwargs=None, seed=None):
        """v_phi, v_r and v_lsr (or v_z) in annuli at a fixed geometry.

        Each annulus is fitted with ``v0 = v_phi cos(phi) sin|i| - v_r
        sin(phi) sin(i) - v_z cos(i) + v_lsr`` (``v_r > 0``: away from the
        star) by weighted linear least squares with the uncertainty map, or
        sampled with emcee (``MCMC=True``; ``mcmc_kwargs``: ``nwalkers``,
        ``nburnin``, ``nsteps``, ``seed``).

        Args:
            rpnts, rbins: annulus centres or edges [arcsec] (default: edges
                every quarter beam from half a beam to the map's edge).
            phi_min, phi_max, exclude_phi, abs_phi, mask_frame, user_mask:
                which pixels to use (polar angles in deg).
            fit_vrad: fit v_r too. fix_vlsr: report v_z for this v_lsr [m/s].
            beam_spacing, niter: thin to pixels ~``beam_spacing`` beams
                apart (random start, ``seed``), ``niter`` times.
            plots: any of ``'profiles'``, ``'model'``, ``'residual'``,
                ``'none'`` (default all three; kept in ``self.figures``).
            returns: any of ``'profiles'`` (``rpnts, velo, dvelo``),
                ``'model'``, ``'residual'`` (default ``'profiles'``).
            optimize_kwargs: not used (the fit is linear and exact).
            assume_correlated: noise correlated over the beam: uncertainties
                times ``sqrt(pixels per beam)``.

        Returns:
            A list: for ``'profiles'`` ``rpnts`` [arcsec], ``velo`` and
            ``dvelo`` (``(4, n)``: v_phi, v_r, v_z, v_lsr [m/s]); for
            ``'model'`` the v0 map of the profiles; for ``'residual'`` data
            minus it.
        """
        plots = choices(plots, ANNULI_PLOTS, ("profiles", "model", "residual"),
                         "plots")
        returns = choices(returns, ANNULI_RETURNS, ("profiles",), "returns")
        if optimize_kwargs:
            warnings.warn("optimize_kwargs is not used: each annulus is a linear "
                          "least-squares fit, solved exactly.", UserWarning,
                          stacklevel=2)
        geometry = DiskGeometry(x0, y0, inc, PA, z0, psi, r_cavity, r_taper, q_taper,
                                z_func, shadowed)
        rpnts, rbins = annuli.annulus_bins(rpnts, rbins, bmaj=self.bmaj,
                                           r_max=float(np.max(self.xaxis)))
        fit = annuli.fit_annuli(
            self.data, self.error, self.xaxis, self.yaxis, geometry, rbins, phi_min,
            phi_max, exclude_phi, abs_phi, mask_frame, user_mask, fit_vrad, fix_vlsr,
            beam_spacing, niter, (self.bmaj, self.bmin), assume_correlated, MCMC,
            mcmc_kwargs, seed)
        r, phi, _ = geometry.coords(self.xaxis, self.yaxis)
        model = fit.model(r, phi)
        self._annuli_figures(plots, rpnts, fit, model)
        out = []
        for item in returns:
            if item == "profiles":
                out += [rpnts, fit.velo, fit.dvelo]
            elif item == "model":
                out.append(model)
            else:
                out.append(self.data - model)
        return out

    def _annuli_figures(self, plots, rpnts, fit, model):
        from .. import plots as P

        figures = {}
        if "profiles" in plots:
            figures["profiles"] = P.plot_velocity_profiles(rpnts, fit.velo, fit.dvelo)
        if "model" in plots:
            figures["model"] = P.plot_bestfit(self.map, model)
        if "residual" in plots:
            figures["residual"] = P.plot_residual(self.map, model)
        if figures:
            self.figures = figures

    def plot_velocity_profiles(self, rpnts, velo, dvelo, params=None, samples=None):
        """v_phi, v_r and v_lsr (or v_z) against radius; with ``params``
        (values, or astro-eddy's dict with ``samples``) the Keplerian
        rotation of that mass and emission surface is drawn beside v_phi.

        Returns:
            The figure.
        """
        from .. import plots as P

        keplerian = None
        if params is not None:
            values = self._fitted(samples, params, model=False)[0]
            r = np.linspace(np.nanmin(rpnts), np.nanmax(rpnts), 200)
            keplerian = (r, annuli.keplerian_profile(r, values))
        return P.plot_velocity_profiles(rpnts, velo, dvelo, keplerian=keplerian)

