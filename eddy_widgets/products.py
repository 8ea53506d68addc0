"""The products of a fit, written into a folder: one home for the command
line (``eddy-widgets-example``, ``eddy-widgets-fit``) and the dashboard's
Export panel.

:func:`write_products` writes the result file, the fit's figures, the model
and residual as FITS, the residual on the disk's (r, phi) plane and the
rotation curve from annuli, each file whole or not at all
(:func:`eddy_widgets.atomic.write_atomic`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .analysis.deprojection import GEOMETRY_NAMES
from .atomic import write_atomic

__all__ = ["PRODUCTS", "save_figure", "write_products"]


#: What :func:`write_products` can write: the result file, the fit's figures,
#: the model and residual FITS, and the disk-frame products (the polar
#: residual and the rotation curve, data and figures).
PRODUCTS = ("result", "figures", "fits", "disk_frame")


def save_figure(fig, path: Path, dpi: int = 110) -> None:
    """Write ``fig`` to ``path`` (format from its suffix) whole or not at all."""
    write_atomic(path, lambda fh: fig.savefig(fh, dpi=dpi, format=path.suffix[1:]))


def write_products(cube, result, out: Path, overwrite: bool = False,
                   parts=PRODUCTS, figure_format: str = "png",
                   figures: dict | None = None) -> list[str]:
    """Write into ``out`` the result, the fit's figures, the model of the
    posterior medians and the residual as FITS (``v0_model.fits``,
    ``v0_residual.fits``: the map's own WCS and beam), the residual
    deprojected onto (r, phi), and the rotation curve in annuli at the
    fitted geometry (CSV and figure); returns the file names. The FITS
    files are never replaced unless ``overwrite``.

    ``parts``: which of :data:`PRODUCTS` to write (default all);
    ``figure_format``: ``'png'`` or ``'pdf'``; ``figures``: ``{name: Figure}``
    to write instead of ``cube.figures`` (those of the last ``fit_map``).
    Every file is written whole or not at all."""
    from . import plots as P

    out = Path(out)
    ext = figure_format.lower()
    figures = cube.figures if figures is None else figures
    written = [result.save(out / "result.npz").name] if "result" in parts else []
    if "figures" in parts:
        for name, fig in figures.items():
            save_figure(fig, out / f"{name}.{ext}")
            written.append(f"{name}.{ext}")
    if result.n_draws("sampling") == 0:
        return written
    median = cube.last_run.posterior.spec.to_params(result.percentiles([50])[0])
    model = cube.evaluate_models(params=median)
    if "fits" in parts:
        paths = cube.save_model(model=model, filename=str(out / "v0_model.fits"),
                                overwrite=overwrite)
        written += [Path(p).name for p in paths]
    if "disk_frame" not in parts:
        return written
    geometry = {k: median[k] for k in GEOMETRY_NAMES if median.get(k) is not None}
    rgrid, phi, polar = cube.polar_residual(None, median)
    write_atomic(out / "polar_residual.npz",
                 lambda fh: np.savez_compressed(fh, r=rgrid, phi=phi, residual=polar))
    fig = P.plot_polar_residual(rgrid, phi, polar)
    save_figure(fig, out / f"polar_residual.{ext}")
    written += ["polar_residual.npz", f"polar_residual.{ext}"]
    rpnts, velo, dvelo = cube.fit_annuli(**geometry, plots="none", returns="profiles")
    columns = ["r_arcsec"]
    for name in ("v_phi", "v_r", "v_z", "v_lsr"):
        columns += [f"{name}_m_s", f"d{name}_m_s"]
    table = np.column_stack([rpnts, *[x for pair in zip(velo, dvelo) for x in pair]])
    write_atomic(out / "rotation_curve.csv",
                 lambda fh: np.savetxt(fh, table, delimiter=",", fmt="%.6g",
                                       header=",".join(columns), comments=""))
    fig = cube.plot_velocity_profiles(rpnts, velo, dvelo, params=median)
    save_figure(fig, out / f"rotation_curve.{ext}")
    written += ["rotation_curve.csv", f"rotation_curve.{ext}"]
    return written
