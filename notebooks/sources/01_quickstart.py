# %% [markdown]
# # Quick start: fit a disk's rotation in five cells
#
# `eddy_widgets` fits the rotation of a protoplanetary disk: a map of the
# line-of-sight velocity of the gas, `v0`, as made by
# [bettermoments](https://github.com/richteague/bettermoments) from an ALMA
# line cube. The model is a Keplerian disk whose emission comes from a flared
# surface above the midplane; the fit finds the disk's centre, orientation,
# the star's mass, the systemic velocity and the shape of that surface.
#
# This notebook runs on the **bundled example** (a synthetic map of an
# HD 163296-like disk, made with known parameters), so it needs no download.
# It loads the map, shows it, opens the fitting dashboard and fits.
#
# The other tutorials go deeper:
# [02 the model](02_the_model.ipynb) (what every parameter does, with
# sliders), [03 fitting with emcee](03_fitting_with_emcee.ipynb) (the script
# interface) and [04 switching to numpyro](04_switching_to_numpyro.ipynb)
# (gradient-based NUTS sampling).

# %% [markdown]
# ## 1. Load the map
#
# `load_example()` gives the paths of the bundled map (`.v0`) and its
# uncertainty (`.dv0`), and the parameters it was made with (`.truths`).
# `rotationmap` reads them the way astro-eddy does: `FOV` keeps the central
# 8 x 8 arcsec and `downsample=4` keeps every 4th pixel, an 80 x 80 map whose
# pixels are about a beam apart (neighbouring pixels within a beam are not
# independent, so a fit should not use them all).

# %%
from eddy_widgets import load_example, rotationmap

example = load_example()
cube = rotationmap(example.v0, uncertainty=example.dv0, FOV=8.0, downsample=4)

ny, nx = cube.data.shape
print(f"{ny} x {nx} pixels of {cube.dpix:.2f} arcsec; "
      f"beam {cube.bmaj:.3f} x {cube.bmin:.3f} arcsec")
print(f"systemic velocity (median of the map): {cube.vlsr / 1e3:.2f} km/s")

# %% [markdown]
# ## 2. Look at it
#
# Velocities are in m/s throughout (shown here in km/s). Sky offsets are
# arcseconds from the image centre, east to the left as on the sky. The gas
# on the red-shifted (north-west) half of the disk moves away from us, on the
# blue-shifted half towards us: the disk rotates, and the line between the
# two halves is its minor axis.

# %%
import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(5.2, 4.2), constrained_layout=True)
image = ax.imshow(cube.data / 1e3, origin="lower", extent=cube.extent, cmap="RdBu_r")
fig.colorbar(image, ax=ax, label=r"$v_0$ [km/s]")
ax.set_xlabel(r"$\Delta$ RA [arcsec]")
ax.set_ylabel(r"$\Delta$ Dec [arcsec]")
ax.set_title("bundled example: line-of-sight velocity")
plt.show()

# %% [markdown]
# ## 3. Open the dashboard
#
# The dashboard holds a fit's whole set-up and its run. At the top, and pinned
# there while you scroll: **Run**, **Stop** and **Continue**, the run's status
# and its progress line. Below them, tabs: **Set-up** (the sampler and its
# counts; which parameters are free, their start values and priors; the fitted
# region), **Chains** (the chains, growing live while a fit runs), **Maps**
# (data, model and residual), **Results** (the verdict first, then the
# posterior table, corner plot and residual maps) and **Export**. Run opens
# the Chains tab, and the end of a run the Results.
#
# We start it from the set-up of astro-eddy's tutorial fit: nine free
# parameters (`params` maps a name to its index in `p0`), the inclination and
# distance fixed, and pixels closer to the centre than two beams left out.
# `r_taper`'s prior is given a finite upper bound (see notebook 04 for why).
# The sampler is emcee with its differential-evolution moves (`de+snooker` in
# the dashboard's menu), which mix several times faster than emcee's default
# stretch move on this disk, and the run is long enough to converge (see
# below). Since the map was made with known values, the results table can show
# how far each median lies from them.

# %%
from eddy_widgets.widgets import FitDashboard

params = {"x0": 0, "y0": 1, "PA": 2, "mstar": 3, "vlsr": 4, "z0": 5, "psi": 6,
          "r_taper": 7, "q_taper": 8,
          "inc": 46.7, "dist": 101.0, "r_min": 2.0 * cube.bmaj}
p0 = [0.0, 0.0, 312.0, 2.0, 5.7e3, 0.25, 1.0, 3.0, 2.0]
cube.set_prior("r_taper", [0.0, 50.0], "flat")

dashboard = FitDashboard.from_fit_kwargs(
    cube, p0=p0, params=params, mcmc="emcee",
    nwalkers=32, nburnin=500, nsteps=3000,
    mcmc_kwargs={"seed": 0, "moves": "de+snooker"})
dashboard.results.truths = example.truths    # adds truth and pull columns
dashboard

# %% [markdown]
# ## 4. Fit
#
# Press **Run** above. The fit runs in the background, so the notebook stays
# usable and **Stop** keeps every draw made so far. (It first finds the most
# probable parameters with the gradient of the JAX model, then runs 32 emcee
# walkers for 500 burn-in and 3000 kept steps, about ten seconds.)
#
# Every run from the dashboard also writes a **checkpoint**: the whole result,
# with the sampler's state, saved every 60 seconds and when the run stops or
# ends, by default to a new file `eddy_widgets_checkpoints/<date>-<time>.npz`
# in the working directory (the status line under the buttons says which). If
# the kernel dies, at most a minute of sampling is lost:
# `session.continue_from(path)` goes on from the file. Here we name the file,
# so that re-running the notebook replaces it instead of adding a new one.
#
# The cell below does the same as the Run button from code, and waits for the
# end, so that this notebook also runs top to bottom unattended.

# %%
session = dashboard.session
session.checkpoint = "eddy_widgets_checkpoints/quickstart.npz"
session.start()          # what the Run button does
session.wait()           # block until the run (and the dashboard) is done
print("status:", session.status)
print(session.result)
print(session.result.verdict_text())

# %% [markdown]
# **The verdict** says whether to trust the numbers, and the dashboard shows
# it at the top of the results. *Converged* means the chains pass the
# convergence checks of their sampler. For emcee that is the autocorrelation
# time τ, the number of steps a walker needs to forget where it was: the kept
# chain must be at least 50 τ long and the burn-in at least 3 τ (emcee's
# walkers are not independent chains, so R-hat does not apply to them). For
# NUTS (notebook 04) it is R-hat at most 1.01 and bulk and tail effective
# sample sizes of at least 100 per chain (divergent draws after warmup are
# warned about).
# Separately, the reduced χ² of the model over the fitted pixels should be
# near 1; far from it, the model or the uncertainties are off. Each problem
# found is listed as a sentence that says what to do ("run longer: ...").
#
# The checkpoint holds the same draws:

# %%
from pathlib import Path

from eddy_widgets import FitResult

saved = FitResult.load(session.checkpoint_file)
print("checkpoint:", Path(session.checkpoint_file).relative_to(Path.cwd()))
print("the same draws as the run:", saved == session.result)

# %% [markdown]
# ## 5. Results
#
# The dashboard's Results tab now shows the verdict, the posterior table,
# corner plot and residuals. The same numbers are on `session.result`, a `FitResult`. Below,
# each median with the offsets of its 16th and 84th percentiles (the 1σ
# interval). The bundled map was made with known parameters, so we can check
# the fit found them: the *pull* is how many posterior widths the median lies
# from the true value. Digits below the width are noise from the finite
# chains (another seed or processor moves them, so the notebook tests do not
# compare this cell's output).

# %% tags=nbval-ignore-output
# Output not compared: medians and widths to the digit are Monte Carlo numbers.
from posterior_tables import posterior_table, truth_check

result = session.result
print(posterior_table(result, example.truths))

# %% [markdown]
# The same in a statement that holds whatever the chains' bits:

# %%
print(truth_check(result, example.truths))

# %% [markdown]
# The model with the posterior medians, beside the data, and what is left
# (data - model) over the fitted pixels: no structure, just noise, means the
# model describes the map.

# %%
from eddy_widgets.plots import plot_maps

medians = result.percentiles([50])[0]
model = cube.evaluate_models(result.samples, params, draws=0.5)   # 50th percentile
plot_maps(cube.map, model, mask=cube.fit_mask(params, medians), title="model (medians)")
plt.show()

# %% [markdown]
# ## Next
#
# - Keep the result: `result.save("fit.npz")`, and later
#   `FitResult.load("fit.npz")` (a checkpoint loads the same way).
# - Export the set-up as a script: `print(session.to_script(FOV=8.0, downsample=4))`.
# - Move on to [02 the model](02_the_model.ipynb) to see what each parameter
#   does to the map.
