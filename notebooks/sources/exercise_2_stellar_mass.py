# %% [markdown] student
# # Exercise 2: weighing a star with its disk
#
# The gas in a protoplanetary disk orbits its star the way planets do, so its
# speed tells us the star's mass. In this exercise you measure the mass of the
# star in the bundled example map and work out how uncertain it is.
#
# **How it works.** Run the cells from top to bottom. Where you see
# `my_... = None`, replace `None` with your answer (Python code that computes
# it is welcome) and run the check cell after it: it tells you whether your
# answer is within tolerance, and gives a hint if it is not.
#
# You will need: [03 fitting with emcee](../03_fitting_with_emcee.ipynb).

# %% [markdown] solution
# # Exercise 2: weighing a star with its disk — solutions
#
# The worked solution of `exercises/exercise_2_stellar_mass.ipynb`: the same
# cells with the answers filled in, and an extra cell (marked *Solution*)
# that checks the distance scaling with a second fit.

# %%
import numpy as np

from eddy_widgets import load_example, rotationmap
from eddy_widgets.exercises import (answers_so_far, check_dominant_term,
                                    check_stellar_mass, check_total_uncertainty)

# %% [markdown]
# ## Kepler's law on a disk
#
# Gas at radius `r` around a star of mass `M` orbits at `v = sqrt(G M / r)`
# (a little slower above the midplane, which the model includes). A rotation
# map measures `v sin(i)` at every pixel, and radii in **arcsec**; the radius in
# metres is `r [arcsec] x distance [pc] x 1 au`. So with the inclination and
# distance fixed, the map's speeds fix the mass.
#
# ## The fit
#
# We fit the centre, position angle, stellar mass, systemic velocity and the
# height of the emission surface, with the inclination (46.7 deg), distance
# (101 pc) and the taper of the surface fixed at values from other
# observations. 32 emcee walkers with differential-evolution moves, 300
# burn-in and 3000 kept steps: about ten seconds.

# %%
example = load_example()
cube = rotationmap(example.v0, uncertainty=example.dv0, FOV=8.0, downsample=8)

dist = 101.0   # pc
params = {"x0": 0, "y0": 1, "PA": 2, "mstar": 3, "vlsr": 4, "z0": 5, "psi": 6,
          "inc": 46.7, "dist": dist, "r_taper": 3.0, "q_taper": 2.0,
          "r_min": 2.0 * cube.bmaj}
p0 = [0.0, 0.0, 312.0, 1.5, 5.7e3, 0.25, 1.0]
moves = [("DEMove", 0.8), ("DESnookerMove", 0.2)]
samples, result = cube.fit_map(
    p0, params, nwalkers=32, nburnin=300, nsteps=3000,
    mcmc="emcee", mcmc_kwargs={"seed": 2, "progress": False, "moves": moves},
    plots=["corner"], returns=["samples", "result"])
cube.figures["corner"].set_dpi(60)   # a lighter image in the stored notebook
print("free parameters, the columns of samples:", result.names)

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
# ## Question 1: the mass and its statistical uncertainty
#
# From `samples`, compute the posterior **median** of the stellar mass and its
# **1σ uncertainty**, half the distance between the 16th and 84th percentiles
# (`np.percentile`), both in solar masses.
#
# **Precision.** Give the uncertainty to two significant figures and the
# median to the same decimal place (an uncertainty of 0.0039 Msun: four
# decimals, e.g. 2.0247). The check accepts any median within half a sigma of
# the posterior's; with fewer digits it says so ("Close: ... give more
# digits").

# %% student
my_mstar = None       # Msun
my_mstar_err = None   # Msun

# %% solution tags=nbval-ignore-output
# Output not compared: the fit's median and width, to the digit, are Monte Carlo numbers.
i = result.names.index("mstar")
p16, p50, p84 = np.percentile(samples[:, i], [16, 50, 84])
my_mstar_err = 0.5 * (p84 - p16)
decimals = 1 - int(np.floor(np.log10(my_mstar_err)))   # two significant figures
my_mstar = round(p50, decimals)
my_mstar_err = round(my_mstar_err, decimals)
print(f"M* = {my_mstar:.{decimals}f} +/- {my_mstar_err:.{decimals}f} Msun")

# %% solution-tags=nbval-ignore-output
check_stellar_mass(my_mstar, my_mstar_err, result)

# %% [markdown]
# That uncertainty is tiny: it only says how well *this* model, with the
# distance and inclination held fixed, matches the map.
#
# ## Question 2: the distance
#
# The distance was fixed at 101 pc, but suppose it is only known to ±2 pc.
# How does the mass depend on the distance? (Hint: at a fixed angle on the
# sky, a farther disk is physically larger, and `v^2 = G M / r`.) Give the
# total 1σ uncertainty of the mass, combining the fit's and the distance's
# independent contributions, in solar masses.

# %%
dist_err = 2.0   # pc

# %% student
my_mstar_total_err = None   # Msun

# %% solution
# M = v^2 r / G with r = (angle) x d: at fixed angles and speeds, M is
# proportional to d, so sigma_M / M = sigma_d / d. Independent errors add in
# quadrature.
from_distance = my_mstar * dist_err / dist
my_mstar_total_err = np.hypot(my_mstar_err, from_distance)
print(f"in per cent of the mass: {100 * my_mstar_err / my_mstar:.1f} from the fit, "
      f"{100 * from_distance / my_mstar:.1f} from the distance, "
      f"{100 * my_mstar_total_err / my_mstar:.1f} in total")

# %%
check_total_uncertainty(my_mstar_total_err, result, dist, dist_err)

# %% [markdown] solution
# *Solution.* The scaling `M ∝ d` can be checked directly: refit with the
# distance 2 pc larger and compare the masses.

# %% solution
samples_far = cube.fit_map(
    p0, params | {"dist": dist + dist_err}, nwalkers=32, nburnin=300, nsteps=3000,
    mcmc="emcee", mcmc_kwargs={"seed": 2, "progress": False, "moves": moves},
    plots="none")
ratio = np.median(samples_far[:, i]) / my_mstar
print(f"mass ratio {ratio:.2f} for a distance ratio {(dist + dist_err) / dist:.2f}")

# %% [markdown]
# ## Question 3: what limits the measurement?
#
# Which term dominates the uncertainty of the mass: the `'statistical'` one
# from the fit, or the one from the `'distance'`?

# %% student
my_dominant_term = None   # "statistical" or "distance"

# %% solution
my_dominant_term = "distance" if from_distance > my_mstar_err else "statistical"

# %%
check_dominant_term(my_dominant_term, result, dist, dist_err)

# %% [markdown]
# ## To discuss
#
# 1. The true mass of the example is 2.02 Msun. Is your result consistent with
#    it, given the statistical uncertainty alone?
# 2. The inclination was fixed too. The map measures `sqrt(M) sin(i)`, so
#    `M ∝ 1 / sin(i)^2`. If the inclination were known only to ±1 deg, how
#    large would that contribution be, compared with the distance's?
# 3. Would a map with ten times less noise make the mass ten times more
#    precise?

# %% [markdown]
# ## Your answers

# %%
answers_so_far()
