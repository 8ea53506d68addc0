"""Write the bundled examples: v0 / dv0 pairs with known truths.

Run from the repository root::

    python scripts/make_example.py

It writes ``eddy_widgets/data/example/HD163296_like_v0.fits``,
``HD163296_like_dv0.fits`` (bettermoments' naming, float32, BUNIT 'm/s') and
``truths.json``; and the second example, ``kink_v0.fits``, ``kink_dv0.fits``
and ``kink_truths.json``: the same disk on a coarser grid with a localised,
planet-like kinematic perturbation whose radius, azimuth, amplitude and size
are stated in its truths file. The output is deterministic (fixed seeds).

How the map is made:

- grid of 400 x 400 pixels of 0.025 arcsec, offsets from the image centre in
  astro-eddy's convention (x decreasing to the east);
- v0 = ``eddy_widgets.model.v0_map`` of the truths, with no beam convolution
  (the ALMA-like beam in the header is metadata only);
- dv0 = 20 m/s * (1 + (r / 2 arcsec)^2), with r the deprojected radius of the
  emission surface, and v0 gets white Gaussian noise of that standard
  deviation per pixel (independent pixels);
- both maps are NaN where r > R_OUT (outside the emitting disk).

The second example adds to v0 a Gaussian bump of the line-of-sight velocity,
``A * exp(-d^2 / (2 w^2))`` with d the distance in the disk plane (on the
emission surface's r, phi) from the point (R_KINK, PHI_KINK): a "kink" of
amplitude A = 100 m/s and width w = 0.15 arcsec (about 1.5 beams), as a
planet's wake makes in channel maps. It is 200 x 200 pixels of 0.05 arcsec.
"""

from __future__ import annotations

import json
from pathlib import Path
import sys

from astropy.io import fits
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from eddy_widgets.model import disk_coords, v0_map  # noqa: E402

OUT = ROOT / "eddy_widgets" / "data" / "example"
NAME = "HD163296_like"

SEED = 163296
NPIX = 400
DPIX = 0.025            # arcsec
BEAM = (0.104, 0.095, -80.0)  # bmaj, bmin [arcsec], bpa [deg]
SIGMA0 = 20.0           # m/s, noise at the centre
R_SIGMA = 2.0           # arcsec, radius where the noise has doubled
R_OUT = 4.47            # arcsec, outer edge of the emitting disk
RA, DEC = 269.08866, -21.95615  # deg, HD 163296

TRUTHS = {
    "x0": 0.02, "y0": -0.015, "inc": 46.7, "PA": 312.0, "mstar": 2.02,
    "dist": 101.0, "vlsr": 5763.0, "z0": 0.26, "psi": 1.7, "r_taper": 3.0,
    "q_taper": 2.0, "r_cavity": 0.0,
}
GEOMETRY = ("x0", "y0", "inc", "PA", "z0", "psi", "r_cavity", "r_taper", "q_taper")

#: The second example: a localised perturbation of the line-of-sight velocity.
KINK_NAME = "kink"
KINK = {"r": 1.6, "phi": 40.0, "amplitude": 100.0, "width": 0.15}
KINK_SEED = 2024
KINK_NPIX, KINK_DPIX = 200, 0.05


def axes(npix=NPIX, dpix=DPIX):
    """Sky x (decreasing) and y (increasing) offsets of the pixels [arcsec]."""
    offsets = dpix * (np.arange(npix) - 0.5 * (npix - 1))
    return -offsets, offsets


def kink(r, phi, r_kink, phi_kink, amplitude, width):
    """Line-of-sight velocity of the perturbation [m/s] at disk-frame ``r``
    [arcsec] and ``phi`` [rad]: a Gaussian of ``width`` [arcsec] in the disk
    plane around (``r_kink`` [arcsec], ``phi_kink`` [deg])."""
    phi_k = np.radians(phi_kink)
    d2 = (r * np.cos(phi) - r_kink * np.cos(phi_k)) ** 2 + (
        r * np.sin(phi) - r_kink * np.sin(phi_k)) ** 2
    return amplitude * np.exp(-0.5 * d2 / width ** 2)


def make_maps(npix=NPIX, dpix=DPIX, seed=SEED, perturbation=None):
    """``(v0, dv0)`` float32 maps [m/s], NaN outside the disk; with
    ``perturbation`` (a dict like :data:`KINK`) the kink is added to v0."""
    xaxis, yaxis = axes(npix, dpix)
    x_sky, y_sky = np.meshgrid(xaxis, yaxis)
    r, phi, _ = (np.asarray(a) for a in disk_coords(
        x_sky, y_sky, **{k: TRUTHS[k] for k in GEOMETRY}))
    model = np.asarray(v0_map(xaxis, yaxis, TRUTHS))
    if perturbation is not None:
        model = model + kink(r, phi, perturbation["r"], perturbation["phi"],
                             perturbation["amplitude"], perturbation["width"])
    dv0 = SIGMA0 * (1.0 + (r / R_SIGMA) ** 2)
    rng = np.random.default_rng(seed)
    v0 = model + dv0 * rng.standard_normal(model.shape)
    outside = r > R_OUT
    v0[outside] = np.nan
    dv0[outside] = np.nan
    return v0.astype(np.float32), dv0.astype(np.float32)


def header(kind: str, npix=NPIX, dpix=DPIX, name=NAME) -> fits.Header:
    """FITS header of the ``'v0'`` or ``'dv0'`` map."""
    h = fits.Header()
    comment = "line-of-sight velocity" if kind == "v0" else "uncertainty of v0"
    h["BUNIT"] = ("m/s", comment)
    h["BTYPE"] = "Velocity" if kind == "v0" else "Velocity uncertainty"
    h["OBJECT"] = name
    h["BMAJ"] = (BEAM[0] / 3600.0, "deg")
    h["BMIN"] = (BEAM[1] / 3600.0, "deg")
    h["BPA"] = (BEAM[2], "deg")
    h["CTYPE1"] = "RA---SIN"
    h["CRVAL1"] = RA
    h["CDELT1"] = -dpix / 3600.0
    h["CRPIX1"] = 0.5 * (npix + 1)
    h["CUNIT1"] = "deg"
    h["CTYPE2"] = "DEC--SIN"
    h["CRVAL2"] = DEC
    h["CDELT2"] = dpix / 3600.0
    h["CRPIX2"] = 0.5 * (npix + 1)
    h["CUNIT2"] = "deg"
    h["RADESYS"] = "ICRS"
    h["EQUINOX"] = 2000.0
    h["COMMENT"] = "Synthetic rotation map, not an observation."
    h["HISTORY"] = "Made by scripts/make_example.py of eddy_widgets (synthetic)."
    h["HISTORY"] = "Model: eddy_widgets.model.v0_map, no beam convolution."
    h["HISTORY"] = "True parameters in truths.json next to this file."
    return h


def description(npix=NPIX, dpix=DPIX, seed=SEED, name=NAME) -> dict:
    """How the example was made, for ``truths.json``."""
    return {
        "description": (
            "Synthetic HD 163296-like rotation map made by scripts/make_example.py "
            "with eddy_widgets.model.v0_map (Keplerian rotation with a flared, "
            "tapered emission surface) and the parameters in 'truths'. Not an "
            "observation."),
        "units": {"x0": "arcsec", "y0": "arcsec", "inc": "deg", "PA": "deg",
                  "mstar": "Msun", "dist": "pc", "vlsr": "m/s", "z0": "arcsec",
                  "psi": "", "r_taper": "arcsec", "q_taper": "", "r_cavity": "arcsec"},
        "grid": (f"{npix} x {npix} pixels of {dpix} arcsec ({npix * dpix:g} arcsec "
                 "across), axes as offsets from the image centre, x decreasing "
                 "(CDELT1 < 0)"),
        "beam": (f"header beam {BEAM[0]} x {BEAM[1]} arcsec at BPA {BEAM[2]} deg "
                 "(metadata only: the model map is NOT beam-convolved)"),
        "noise": (f"dv0 = {SIGMA0:g} m/s * (1 + (r / {R_SIGMA:g} arcsec)^2) with r the "
                  "deprojected radius of the emission surface; v0 = model + white "
                  "Gaussian noise of standard deviation dv0, independent per pixel"),
        "mask": f"both maps NaN where r > {R_OUT} arcsec",
        "seed": seed,
        "dtype": "float32",
        "files": [f"{name}_v0.fits", f"{name}_dv0.fits"],
    }


def write(name, v0, dv0, info, truths_file, npix=NPIX, dpix=DPIX) -> None:
    for kind, data in (("v0", v0), ("dv0", dv0)):
        path = OUT / f"{name}_{kind}.fits"
        fits.PrimaryHDU(data=data, header=header(kind, npix, dpix, name)).writeto(
            path, overwrite=True)
        print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size / 1e6:.2f} MB)")
    path = OUT / truths_file
    path.write_text(json.dumps(info, indent=2) + "\n")
    print(f"wrote {path.relative_to(ROOT)}")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    v0, dv0 = make_maps()
    write(NAME, v0, dv0, {"truths": TRUTHS, **description()}, "truths.json")

    v0, dv0 = make_maps(KINK_NPIX, KINK_DPIX, KINK_SEED, KINK)
    info = {"truths": TRUTHS, **description(KINK_NPIX, KINK_DPIX, KINK_SEED, KINK_NAME),
            "perturbation": {
                **KINK, "units": {"r": "arcsec", "phi": "deg", "amplitude": "m/s",
                                  "width": "arcsec"},
                "what": ("a Gaussian bump of the line-of-sight velocity v0, centred "
                         "in the disk plane at radius r and azimuth phi (the disk "
                         "frame of eddy_widgets.model.disk_coords: phi = 0 along "
                         "the red-shifted major axis) on the emission surface, "
                         "with standard deviation 'width' in the disk plane")}}
    write(KINK_NAME, v0, dv0, info, f"{KINK_NAME}_truths.json", KINK_NPIX, KINK_DPIX)


if __name__ == "__main__":
    main()
