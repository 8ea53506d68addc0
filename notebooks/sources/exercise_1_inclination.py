# %% [markdown] student
# # Exercise 1: the inclination of a disk
#
# In this exercise you find how inclined a disk is, first **by eye** with a
# slider, then with a **fit**, and compare the two.
#
# **How it works.** Run the cells from top to bottom. Where you see
# `my_... = None`, replace `None` with your answer and run the cell after it:
# the check cell tells you whether your answer is within tolerance, and gives a
# hint if it is not. You can check as often as you like.
#
# You will need: [02 the model](../02_the_model.ipynb) (what `inc` does) and
# [03 fitting with emcee](../03_fitting_with_emcee.ipynb) (how a fit works).

# %% [markdown] solution
# # Exercise 1: the inclination of a disk — solutions
#
# The worked solution of `exercises/exercise_1_inclination.ipynb`: the same
# cells with the answers filled in and a few extra cells (marked
# *Solution*) that show how to get them.

# %%
import matplotlib.pyplot as plt
import numpy as np

from eddy_widgets import load_example, rotationmap
from eddy_widgets.exercises import (answers_so_far, check_correlated_parameter,
                                    check_fitted_inclination, check_inclination_by_eye)

# %% [markdown]
# ## The data
#
# The bundled example map: the line-of-sight velocity of the gas in a disk
# around a young star, 40 x 40 pixels over 8 arcsec.

# %%
example = load_example()
cube = rotationmap(example.v0, uncertainty=example.dv0, FOV=8.0, downsample=8)
inside = np.isfinite(cube.data)
print(f"{inside.sum()} pixels with data")

# %% [markdown]
# ## Background
#
# The gas orbits the star in the disk's plane. We only measure the part of its
# velocity along our line of sight, and that part depends on the inclination
# `i` (0 = face-on, 90 deg = edge-on):
#
# - the projected speed is `v_kep * sin(i)`: a face-on disk shows no rotation;
# - the disk looks squeezed by `cos(i)` along its minor axis, which changes the
#   *shape* of the lines of equal velocity.
#
# Everything else about this disk is known from other observations: its
# centre, its position angle (312 deg), its systemic velocity (5.763 km/s), a
# stellar mass of 2.0 Msun, a distance of 101 pc and the height of its emission
# surface.
#
# ## Part 1: by eye
#
# The slider below sets the inclination of a model disk with all those values.
# The first map is the model, the second the data, the third the **residual**
# `data - model` (on a narrow screen it wraps below the other two); each
# keeps the sky's proportions, an arcsec as long across as up. When the
# inclination is right, the residual is only noise: no red or blue halves, no
# pattern. The number under the maps is the root-mean-square residual in m/s.

# %%
from eddy_widgets.widgets.explorer import ModelExplorer

KNOWN = {"x0": 0.02, "y0": -0.015, "PA": 312.0, "mstar": 2.0, "dist": 101.0,
         "vlsr": 5763.0, "z0": 0.26, "psi": 1.7, "r_taper": 3.0, "q_taper": 2.0}
explorer = ModelExplorer(cube, KNOWN | {"inc": 20.0}, sliders=["inc"],
                         panels=("model", "data", "residual"), model_limit=5000.0,
                         residual_limit=500.0)


def rms_residual(inc):
    """Root-mean-square of data - model [m/s] for inclination ``inc`` [deg]
    (moves the slider there)."""
    explorer.set(inc=inc)
    return explorer.residual_rms


def show_inclination(inc):
    """Move the slider to inclination ``inc`` [deg]; returns the readout."""
    return f"inc = {inc:.1f} deg: rms of data - model = {rms_residual(inc):.0f} m/s"


explorer

# %% [markdown]
# Move the slider until the residual map looks like noise. (A saved copy of
# this notebook cannot move the slider: run the notebook.) You can also call
# the function directly; for example, 20 degrees is clearly too small:

# %%
print(show_inclination(20.0))

# %% [markdown]
# **Question 1.** What inclination do you find by eye, in degrees?

# %% student
my_inclination = None   # your answer in degrees, e.g. 35.0

# %% solution
my_inclination = 47.0   # where the residual map turns to noise

# %%
check_inclination_by_eye(my_inclination)

# %% [markdown] solution
# *Solution.* The residual's rms, as a function of the inclination, has its
# minimum close to where the residual map looked like noise:

# %% solution
trial = np.arange(30.0, 60.5, 0.5)
rms = [rms_residual(inc) for inc in trial]
best = trial[int(np.argmin(rms))]
plt.figure(figsize=(5, 3))
plt.plot(trial, rms)
plt.axvline(best, color="k", lw=0.8)
plt.xlabel("inclination [deg]")
plt.ylabel("rms of data - model [m/s]")
print(f"smallest rms at inc = {best:.1f} deg:", show_inclination(best))

# %% [markdown]
# ## Part 2: fit it
#
# By eye, every other parameter was fixed at an assumed value. A fit lets them
# all adjust together and says how well the data pin each one down. Here the
# inclination is a free parameter alongside the centre, position angle, stellar
# mass, systemic velocity and emission height; the distance and the taper of
# the surface stay fixed. The fit starts from your by-eye value (or 30 deg if
# you have not given one yet); the optimiser then finds the best values before
# the sampler explores around them: 32 emcee walkers with differential-
# evolution moves, 300 burn-in and 3000 kept steps. This takes about ten
# seconds.

# %%
start_inc = my_inclination if my_inclination is not None else 30.0
params = {"x0": 0, "y0": 1, "PA": 2, "inc": 3, "mstar": 4, "vlsr": 5, "z0": 6, "psi": 7,
          "r_taper": 3.0, "q_taper": 2.0, "dist": 101.0, "r_min": 2.0 * cube.bmaj}
p0 = [0.0, 0.0, 312.0, start_inc, 2.0, 5.7e3, 0.25, 1.0]
samples, result = cube.fit_map(
    p0, params, nwalkers=32, nburnin=300, nsteps=3000,
    mcmc="emcee", mcmc_kwargs={"seed": 1, "progress": False,
                               "moves": [("DEMove", 0.8), ("DESnookerMove", 0.2)]},
    plots=["corner"], returns=["samples", "result"])
cube.figures["corner"].set_dpi(60)   # a lighter image in the stored notebook

# %% [markdown]
# `fit_map` ends by printing its **verdict**. *Converged* means the chains
# pass the convergence checks of their sampler; for emcee that is the
# autocorrelation time τ (the number of steps a walker needs to forget where it
# was): the kept chain must be at least 50 τ long and the burn-in at least
# 3 τ. (For the NUTS sampler it would be R-hat at most 1.01, bulk and tail
# effective sample sizes of at least 100 per chain; divergent draws are
# warned about.)
# The reduced χ² of the model should also be near 1. Any problem is listed as
# a sentence saying what to do; only read numbers off a converged fit.
#
# `samples` has one column per free parameter, in the order of `p0`
# (`result.names` lists them). The corner plot above shows each parameter's
# posterior (diagonal) and each pair's joint posterior.
#
# **Question 2.** What are the posterior median of the inclination and its 1σ
# uncertainty (half the distance between the 16th and 84th percentiles), in
# degrees?

# %%
print("free parameters:", result.names)

# %% student
my_fit_inclination = None       # median, degrees
my_fit_inclination_err = None   # 1-sigma uncertainty, degrees

# %% solution
i = result.names.index("inc")
p16, p50, p84 = np.percentile(samples[:, i], [16, 50, 84])
my_fit_inclination = p50
my_fit_inclination_err = 0.5 * (p84 - p16)

# %% solution-tags=nbval-ignore-output
check_fitted_inclination(my_fit_inclination, my_fit_inclination_err, result)

# %% [markdown]
# **Question 3.** In the corner plot, which free parameter is most strongly
# correlated with the inclination (the most tilted, elongated ellipse in the
# `inc` row and column)? Think about why, using the two bullet points of the
# Background section.

# %% student
my_correlated_parameter = None   # a name from result.names, e.g. "PA"

# %% solution
corr = np.corrcoef(samples.T)[result.names.index("inc")]
ranked = sorted((abs(c), name) for c, name in zip(corr, result.names) if name != "inc")
my_correlated_parameter = ranked[-1][1]
print(f"most correlated with inc: {my_correlated_parameter}")

# %%
check_correlated_parameter(my_correlated_parameter, result)

# %% [markdown]
# ## To discuss
#
# 1. How many standard deviations of the fit is your by-eye value from the
#    fitted one? Was the fitted uncertainty larger or smaller than you expected?
# 2. By eye you held the stellar mass at 2.0 Msun. Had you assumed 2.5 Msun,
#    would your by-eye inclination have come out larger or smaller? (Try it:
#    change `KNOWN["mstar"]` and re-run the slider cell.)
# 3. Why is the inclination still measurable at all when the mass is free?

# %% [markdown]
# ## Your answers

# %%
answers_so_far()
