# %% [markdown] student
# # Exercise 3: find the planet's kink
#
# A planet embedded in a disk pushes the gas around it out of Keplerian
# rotation, over a small patch. The map in this exercise has such a patch
# somewhere: your job is to find **where in the disk** it is, as a radius and
# an azimuth.
#
# **How it works.** Run the cells from top to bottom. Where you see
# `my_... = None`, replace `None` with your answer (Python code that computes
# it is welcome) and run the check cell after it: it tells you whether your
# answer is within tolerance, and gives a hint if it is not. Do not peek at
# `example.perturbation`: that is where the answer is stored.
#
# You will need: [05 after the fit](../05_after_the_fit.ipynb).

# %% [markdown] solution
# # Exercise 3: find the planet's kink — solutions
#
# The worked solution of `exercises/exercise_3_find_the_kink.ipynb`: the same
# cells with the answers filled in, found from the smoothed residual in the
# disk frame, and an extra cell (marked *Solution*) that shows the answer on
# the sky.

# %%
import matplotlib.pyplot as plt
import numpy as np

from eddy_widgets import load_example, rotationmap
from eddy_widgets.exercises import (KINK_SKY_DISTANCE, KINK_SKY_PA, answers_so_far,
                                    check_kink_azimuth, check_kink_radius)

# %% [markdown]
# ## The fit
#
# The map is the package's second example, `load_example('kink')`: an
# HD 163296-like disk, 200 x 200 pixels of 0.05 arcsec, beam 0.10 arcsec.
# First we fit it with the smooth Keplerian model, as in tutorial 05: every
# second pixel (about one per beam), the centre, position angle, stellar mass,
# systemic velocity and emission surface free, inclination (46.7 deg) and
# distance (101 pc) fixed; 32 emcee walkers, 500 burn-in and 3000 kept steps.
# This takes about twenty seconds and ends with the fit's verdict.

# %%
example = load_example("kink")
cube = rotationmap(example.v0, uncertainty=example.dv0, FOV=8.0, downsample=2)
cube.set_prior("r_taper", [0.0, 50.0], "flat")

params = {"x0": 0, "y0": 1, "PA": 2, "mstar": 3, "vlsr": 4, "z0": 5, "psi": 6,
          "r_taper": 7, "q_taper": 8, "inc": 46.7, "dist": 101.0,
          "r_min": 2.0 * cube.bmaj}
p0 = [0.0, 0.0, 312.0, 2.0, 5.7e3, 0.25, 1.0, 3.0, 2.0]
samples, medians, result = cube.fit_map(
    p0, params, nwalkers=32, nburnin=500, nsteps=3000, mcmc="emcee",
    mcmc_kwargs={"seed": 0, "progress": False,
                 "moves": [("DEMove", 0.8), ("DESnookerMove", 0.2)]},
    plots="none", returns=["samples", "dict", "result"])

# %% [markdown]
# The verdict is *converged* with no warning: the smooth disk describes the
# map to within the noise, *as a whole*. A small patch hardly changes the
# fit's χ², so it has to be found in the residual.
#
# ## The residual on the sky
#
# The residual `data - model` of the posterior-median model, on every pixel of
# the map (162 x 162 over 8 arcsec), in m/s. East is to the left; the beam is
# the small ellipse in the lower-left corner.

# %%
GEOMETRY = ("x0", "y0", "inc", "PA", "z0", "psi", "r_taper", "q_taper")
geometry = {name: medians[name] for name in GEOMETRY}   # the fitted disk

full = rotationmap(example.v0, uncertainty=example.dv0, FOV=8.0)
model = full.evaluate_models(samples, params, draws=0.5)
residual = full.data - model

fig = full.plot_model_residual(model=model, return_fig=True,
                               imshow_kwargs={"vmin": -100, "vmax": 100})
fig.set_dpi(70)
plt.show()
print(f"residual map: {residual.shape[1]} x {residual.shape[0]} pixels, "
      f"rms about {round(np.nanstd(residual), -1):.0f} m/s")

# %% [markdown]
# Can you see something that is not noise? On the sky, distances are
# foreshortened by the inclination and shifted by the height of the emission
# surface, so its position on the sky is not its position in the disk.
#
# ## The residual in the disk frame
#
# `polar_deprojection` puts the residual on a grid of disk radius `r`
# (arcsec) and azimuth `phi`. **`phi` is measured in the disk plane from the
# red-shifted end of the major axis** (`phi = 0`, where the gas moves away from
# us fastest). `polar[j, i]` is the residual at `phi = tgrid[j]` (radians) and
# `r = rgrid[i]`.

# %%
rgrid = np.arange(0.3, 3.5, 0.025)                 # arcsec
tgrid = np.radians(np.arange(-180.0, 180.0, 2.0))  # rad
_, _, polar = full.polar_deprojection(residual, **geometry, rgrid=rgrid, tgrid=tgrid,
                                      griddata_kwargs={"method": "linear"})

fig, ax = plt.subplots(figsize=(6.5, 4.2), constrained_layout=True)
im = ax.imshow(polar, origin="lower", extent=[rgrid[0], rgrid[-1], -180, 180],
               aspect="auto", cmap="RdBu_r", vmin=-100, vmax=100)
ax.set_xlabel("radius r [arcsec]")
ax.set_ylabel(r"azimuth $\phi$ [deg]")
ax.set_yticks(np.arange(-180, 181, 60))
fig.colorbar(im, ax=ax, label="data - model [m/s]", extend="both")
fig.set_dpi(70)
plt.show()
print(f"polar map: {polar.shape[0]} azimuths x {polar.shape[1]} radii")

# %% [markdown]
# **Question 1.** At what radius in the disk, in arcsec, is the perturbation?
#
# **Question 2.** At what azimuth `phi`, in degrees, is it?
#
# *Hints.* Reading it off the map by eye is fine. To measure it instead: the
# noise grows outwards, so the largest single pixel is likely to be noise far
# out; smooth `polar` over about a beam first
# (`scipy.ndimage.gaussian_filter`, after `np.nan_to_num`), then
# `j, i = np.unravel_index(np.argmax(smoothed), smoothed.shape)` gives the
# row (azimuth) and column (radius) of the maximum.

# %% solution tags=nbval-ignore-output
# Output not compared: the maximum's grid position moves with the chains' bits.
from scipy.ndimage import gaussian_filter

# Smooth over about a beam: 2 grid steps in phi (4 deg, ~0.11 arcsec at
# r = 1.6 arcsec) and 4 in r (0.1 arcsec), then take the maximum.
smoothed = gaussian_filter(np.nan_to_num(polar), sigma=(2, 4))
j, i = np.unravel_index(np.argmax(smoothed), smoothed.shape)
print(f"maximum of the smoothed residual: {smoothed[j, i]:.0f} m/s "
      f"at r = {rgrid[i]:.2f} arcsec, phi = {np.degrees(tgrid[j]):.0f} deg")

# %% student
my_kink_radius = None    # arcsec

# %% solution
my_kink_radius = rgrid[i]

# %% solution-tags=nbval-ignore-output
check_kink_radius(my_kink_radius)

# %% student
my_kink_azimuth = None   # degrees

# %% solution
my_kink_azimuth = np.degrees(tgrid[j])

# %% solution-tags=nbval-ignore-output
check_kink_azimuth(my_kink_azimuth)

# %% [markdown] solution
# *Solution.* The same point on the sky: the pixel whose disk coordinates are
# closest to the answer, marked on the residual map. It lies north-west of the
# star, about 1.3 arcsec away on the sky although it is 1.6 arcsec from the
# star in the disk.

# %% solution
r_px, phi_px, _ = full.disk_coords(**geometry)
phi_k = np.radians(my_kink_azimuth)
gap = np.hypot(r_px * np.cos(phi_px) - my_kink_radius * np.cos(phi_k),
               r_px * np.sin(phi_px) - my_kink_radius * np.sin(phi_k))
iy, ix = np.unravel_index(np.argmin(gap), gap.shape)
x_sky, y_sky = full.xaxis[ix] - geometry["x0"], full.yaxis[iy] - geometry["y0"]
fig = full.plot_model_residual(model=model, return_fig=True,
                               imshow_kwargs={"vmin": -100, "vmax": 100})
fig.axes[0].plot(full.xaxis[ix], full.yaxis[iy], "o", mfc="none", mec="k", ms=16)
fig.set_dpi(70)
plt.show()
distance, angle = np.hypot(x_sky, y_sky), np.degrees(np.arctan2(x_sky, y_sky)) % 360
print(f"where it was put, on the sky: {KINK_SKY_DISTANCE:.1f} arcsec from the centre, "
      f"position angle {KINK_SKY_PA:.0f} deg east of north")
print("the answer's pixel lies within 0.1 arcsec and 5 deg of it:",
      "yes" if abs(distance - KINK_SKY_DISTANCE) < 0.1
      and abs((angle - KINK_SKY_PA + 180) % 360 - 180) < 5 else "NO")

# %% [markdown]
# ## To discuss
#
# 1. The fit's verdict said *converged* with no warning, and its reduced χ²
#    was close to 1. Why could it not notice the perturbation? (Count the
#    pixels it covers, compared with the ~4300 fitted.)
# 2. On the sky, the spot is about 1.3 arcsec from the star; in the disk it is
#    1.6 arcsec. Which two effects make the difference?
# 3. Would a rotation curve from `fit_annuli` (tutorial 05, section 6) show
#    the perturbation? Estimate how much a 100 m/s bump that covers ~15 deg
#    of azimuth changes the ring's average rotation.
# 4. At 101 pc, how far from the star is the perturbation in au? How does that
#    compare with the gaps seen in the dust of HD 163296?

# %% [markdown]
# ## Your answers

# %%
answers_so_far()
