# %% [markdown]
# # Switching to numpyro NUTS
#
# `fit_map` has two MCMC backends:
#
# - `mcmc='emcee'` (the default): the affine-invariant ensemble sampler of
#   [notebook 03](03_fitting_with_emcee.ipynb). It uses no gradients, and needs
#   many walkers and long chains when parameters are many or correlated.
# - `mcmc='numpyro'`: the No-U-Turn Sampler (NUTS) of
#   [numpyro](https://num.pyro.ai). It follows the gradient of the same JAX
#   likelihood along Hamiltonian trajectories, so successive draws are far less
#   correlated, at the price of many gradient evaluations per draw.
#
# This is astro-eddy's tutorial "Switching to numpyro NUTS" run on the bundled
# example instead of the downloaded HD 163296 maps: the same set-up, the same
# calls, and, at the end, a measurement (made here, on this machine) of which
# backend gives more independent samples per second.
#
# ## Setup
#
# The same map and field as the tutorial: FOV 8 arcsec, `downsample=4`
# (80 x 80 pixels). No download: the example ships with the package.

# %%
import time

from eddy_widgets import load_example, rotationmap   # first: it sets JAX up

import jax
import matplotlib.pyplot as plt
import numpy as np

example = load_example()
cube = rotationmap(path=example.v0, uncertainty=example.dv0, FOV=8.0, downsample=4)
print(cube.data.shape, "pixels")

# %% [markdown]
# ## Tightening unbounded priors
#
# NUTS moves in an *unconstrained* space: every parameter is mapped to the
# whole real line by a bijection chosen from its prior's support, and the
# prior density picks up the Jacobian of that map. For a flat prior on a finite
# interval, `Uniform(lo, hi)`, the map is a scaled logistic function and the
# prior in the unconstrained coordinate is a bump that falls off on both sides.
# For `r_taper`'s default, flat on `(0, inf)`, the map is `exp(u)` and the
# prior in `u` *grows* as `exp(u)` without end: wherever the data stop caring
# (a taper far outside the map changes nothing), the sampler is pushed to ever
# larger values, and trajectories grow to thousands of leapfrog steps.
#
# emcee only checks whether a point is inside the bounds, so an unbounded
# prior does it no harm. For NUTS, give every infinite bound a finite value
# well beyond the physically interesting range. Here is what the two priors
# look like to NUTS:

# %%
from numpyro.distributions.transforms import biject_to

from eddy_widgets.inference.priors import Prior

u = np.linspace(-6.0, 6.0, 400)
fig, axes = plt.subplots(1, 2, figsize=(10, 3.2), constrained_layout=True)
for prior, colour in [(Prior.default("r_taper"), "tab:red"),
                      (Prior.from_args([0.0, 50.0], "flat", "r_taper"), "tab:blue")]:
    bijection = biject_to(prior.distribution().support)
    x = np.asarray(bijection(u))
    density = np.exp(np.asarray(bijection.log_abs_det_jacobian(u, x)))
    label = f"{prior.describe()}"
    axes[0].plot(u, x, color=colour, label=label)
    axes[1].plot(u, density / density.max(), color=colour, label=label)
axes[0].set(xlabel="unconstrained u", ylabel="r_taper [arcsec]", yscale="log",
            title="the bijection NUTS moves through")
axes[1].set(xlabel="unconstrained u", ylabel="prior density (peak = 1)",
            title="the flat prior, seen from u")
axes[0].legend()
axes[1].legend()
plt.show()

# %% [markdown]
# `fit_map` warns before a NUTS run with an unbounded flat prior, and the
# dashboard's parameter editor flags the row. Here is the editor's check on
# the tutorial's set-up with the default priors:

# %%
from eddy_widgets.session import FitSession

params = {}
params["x0"] = 0
params["y0"] = 1
params["PA"] = 2
params["mstar"] = 3
params["vlsr"] = 4
params["z0"] = 5
params["psi"] = 6
params["r_taper"] = 7
params["q_taper"] = 8
params["inc"] = 46.7
params["dist"] = 101.0
params["r_min"] = 2.0 * cube.bmaj
p0 = [0.0, 0.0, 312.0, 2.0, 5.7e3, 0.25, 1.0, 3.0, 2.0]

check = FitSession.from_fit_kwargs(p0, params, priors=cube.priors, mcmc="numpyro")
for name, message in check.prior_warnings.items():
    print(f"{name}: {message}")

# %% [markdown]
# For HD 163296 an `r_taper` larger than the field of view is irrelevant, so a
# generous ceiling of 50 arcsec works:

# %%
cube.set_prior("r_taper", [0.0, 50.0], "flat")
check = FitSession.from_fit_kwargs(p0, params, priors=cube.priors, mcmc="numpyro")
print("unbounded priors left:", check.prior_warnings or "none")

# %% [markdown]
# ## Setting up the fit
#
# `params` and `p0` above are identical to the emcee fit's. Only the call to
# `fit_map` changes: `mcmc='numpyro'`. The walker, burn-in and step counts keep
# their astro-eddy names and take numpyro's meaning, so a script switches
# backend by changing one keyword. The table comes from the backend table of
# the package (the dashboard's labels use the same one):

# %%
from eddy_widgets.inference.backends import BACKENDS

print(f"{'fit_map kwarg':<15}{'numpyro equivalent':<20}")
for kwarg, numpyro_name in BACKENDS["numpyro"].mapping_rows():
    print(f"{kwarg:<15}{numpyro_name:<20}")

# %% [markdown]
# NUTS takes a few options of its own through `mcmc_kwargs` (with their
# defaults here):

# %%
for option, default in BACKENDS["numpyro"].options.items():
    print(f"{option:<20}{default!r}")

# %% [markdown]
# - **`seed`**: the random key; the same seed gives the same draws.
# - **`progress`**: a progress bar.
# - **`max_tree_depth`**: NUTS doubles its trajectory until it turns back on
#   itself, at most `max_tree_depth` times, i.e. at most `2**max_tree_depth - 1`
#   leapfrog steps (one gradient each) per draw. astro-eddy's tutorial
#   recommends 6 (at most 63 steps) for rotation-map fits; raise it to 8 if the
#   chains mix poorly or diverge. It only costs time when trees actually hit
#   the cap, which we check below.
# - **`chain_method`**: how several chains (`nwalkers` > 1) run:
#   `'sequential'` one after the other; `'parallel'` at the same time on
#   separate devices (eddy_widgets gives JAX one CPU device per core, so on a
#   multi-core machine chains run side by side); `'vectorized'` as one batched
#   program, which rarely helps because every chain then waits for the longest
#   tree. The method changes how the chains run, not the draws they make
#   (but for the last bits of floating point: programs laid out over other
#   devices round differently, as another processor does).
# - **`dense_mass`**, **`target_accept_prob`**: the mass matrix (full, started
#   from the posterior's curvature at the optimum) and the acceptance target of
#   step-size adaptation.
#
# ## Running the fit
#
# The tutorial runs one chain of 500 warmup and 500 kept draws. We run two
# chains of 500 + 1000, so that R-hat can compare chains (side by side when
# the machine has the cores for it), with a target acceptance of 0.9 (see
# below). With 300 kept draws per chain R-hat lands near its 1.01 threshold,
# above or below it depending on the seed; with 1000 it sits well inside it,
# at about a second more. As with emcee, `fit_map` ends with its verdict.

# %%
class Stopwatch:
    """Streaming callback: when the last chunk of each phase arrived."""

    def __init__(self):
        self.started = time.perf_counter()
        self.ends = {}

    def __call__(self, chunk, info):
        self.ends[chunk.phase] = time.perf_counter()

    @property
    def sampling_seconds(self):
        return self.ends["sampling"] - self.ends["warmup"]

    @property
    def total_seconds(self):
        return self.ends["sampling"] - self.started


chain_method = "parallel" if jax.local_device_count() >= 2 else "sequential"
nuts_clock = Stopwatch()
samples, nuts = cube.fit_map(
    p0=p0, params=params, optimize=True,
    nwalkers=2,    # numpyro: num_chains
    nburnin=500,   # numpyro: num_warmup
    nsteps=1000,   # numpyro: num_samples
    mcmc="numpyro",
    mcmc_kwargs={
        "seed": 0,
        "progress": True,
        "max_tree_depth": 6,
        "target_accept_prob": 0.9,
        "chain_method": chain_method,
    },
    plots=["walkers", "corner", "bestfit", "residual"],
    returns=["samples", "result"],
    callbacks=[nuts_clock],
)
for figure in cube.figures.values():
    figure.set_dpi(60)   # lighter images in the stored notebook

# %% [markdown]
# The walkers plot now shows two chains. There is no slow fan-out as with
# emcee: each chain starts at the optimum with a mass matrix from the
# posterior's curvature and is in the typical set within a few draws; the
# warmup (shaded) is spent tuning the step size and mass matrix.
#
# ### Is NUTS healthy? The verdict
#
# *Converged* means the chains pass the convergence checks of their sampler.
# NUTS chains are independent, so they can be compared: the **rank-normalised
# R-hat** of every parameter must be at most 1.01 (the chains, or their halves,
# agree), the **bulk and tail effective sample sizes** at least 100 per chain
# (enough independent draws' worth for the centre and for the 5% and 95%
# quantiles of the posterior). **Divergent draws** after warmup are warned
# about, with their share and what to do: a divergence is a trajectory whose
# energy blew up, a sign of a region the step size cannot resolve, and where
# they cluster the posterior may be biased (during warmup, while the step
# size is tuned, they are normal). As in Stan and ArviZ they are a warning,
# not a failed convergence check. A warning also comes if more than 1% of the
# draws hit `max_tree_depth`. (For
# emcee the checks are different: the chain must be at least 50
# autocorrelation times τ long and the burn-in at least 3 τ; R-hat over emcee's
# walkers is not valid.) For both, the reduced χ² of the median model over the
# fitted pixels should be near 1.
#
# The numbers behind it: the leapfrog steps per draw (how long the
# trajectories are), the draws at the tree-depth cap, the divergences, the
# per-parameter diagnostics and the reduced χ². They come from the chains, so
# another seed or processor changes their digits (the notebook tests compare
# the checks in the cell after it instead):

# %% tags=nbval-ignore-output
# Output not compared: the sampler's statistics are Monte Carlo numbers.
summary = nuts.sampler_summary()
steps = nuts.stats["sampling"]["num_steps"]
print(f"median leapfrog steps per draw: {summary['median_steps_per_draw']:.0f} "
      f"(tree depth ~{np.log2(summary['median_steps_per_draw'] + 1):.0f} of at most 6)")
print(f"draws that hit max_tree_depth: {summary['max_tree_depth_hits']} of {steps.size}")
print(f"divergent draws after warmup: {summary['divergences']} of {steps.size}")
diag = nuts.diagnostics()
print(f"largest R-hat: {max(d['r_hat'] for d in diag.values()):.3f}; smallest bulk "
      f"ESS: {min(d['ess_bulk'] for d in diag.values()):.0f}; smallest tail ESS: "
      f"{min(d['ess_tail'] for d in diag.values()):.0f} (want >= 200 for 2 chains)")
print(f"reduced chi2: {summary['reduced_chi2']:.2f}")

# %%
from posterior_tables import check

print(check("no draw hit max_tree_depth", summary["max_tree_depth_hits"] == 0))
print(check("no divergent draw after warmup", summary["divergences"] == 0))
print(check("largest R-hat at most 1.01",
            max(d["r_hat"] for d in diag.values()) <= 1.01))
print(check("smallest bulk and tail ESS at least 200 (100 per chain)",
            min(min(d["ess_bulk"], d["ess_tail"]) for d in diag.values()) >= 200))
print(check("reduced chi2 within 0.5-2", 0.5 <= summary["reduced_chi2"] <= 2.0))
print(check("converged by the verdict's checks", nuts.converged))

# %% [markdown]
# Short trees, none at the cap, chains that agree and no divergences: the run
# is sound, and `max_tree_depth=6` costs nothing here. If the verdict lists
# divergent draws, or they cluster in one corner of the corner plot, the
# sampler cannot follow the posterior there: raise `target_accept_prob` (this
# fit already asks for 0.9 instead of numpyro's 0.8: smaller steps, a little
# slower, and no divergences on this map), or tighten the priors. The
# posterior, with every digit (Monte Carlo noise below the widths: not
# compared by the notebook tests), then what it says, and the verdict:

# %% tags=nbval-ignore-output
# Output not compared: medians and widths to the digit are Monte Carlo numbers.
from posterior_tables import posterior_table, truth_check

print(posterior_table(nuts, example.truths))

# %%
print(truth_check(nuts, example.truths))
print(nuts.verdict_text())

# %% [markdown]
# ## The same fit with emcee
#
# For the comparison, the same set-up with emcee: `mcmc='emcee'`, 32 walkers
# with the differential-evolution moves of notebook 03, 500 burn-in and 3000
# kept steps, long enough for emcee's verdict too (a chain of at least 50
# autocorrelation times). An effective sample size is only worth comparing
# once both runs have converged: a short chain underestimates τ and so
# overstates its ESS.

# %%
emcee_clock = Stopwatch()
emcee_run = cube.fit_map(
    p0=p0, params=params, optimize=True,
    nwalkers=32, nburnin=500, nsteps=3000,
    mcmc="emcee",
    mcmc_kwargs={"seed": 0, "progress": False,
                 "moves": [("DEMove", 0.8), ("DESnookerMove", 0.2)]},
    plots="none", returns="result", callbacks=[emcee_clock],
)

# %% [markdown]
# Both backends sample the same posterior, so their medians and widths must
# agree within the noise of finite chains:

# %%
def medians_and_widths(result):
    p16, p50, p84 = result.percentiles()
    return p50, 0.5 * (p84 - p16)


m_nuts, s_nuts = medians_and_widths(nuts)
m_emcee, s_emcee = medians_and_widths(emcee_run)
shift = np.abs(m_nuts - m_emcee) / s_emcee
ratio = s_nuts / s_emcee
print("medians agree within 0.5 sigma for every parameter:",
      "yes" if shift.max() < 0.5 else "no")
print("widths agree within 25 per cent for every parameter:",
      "yes" if np.all(np.abs(ratio - 1) < 0.25) else "no")

# %% [markdown]
# ## Wall time versus sample efficiency
#
# What a run buys is *effective* samples: draws that are as good as
# independent ones, the effective sample size (ESS). NUTS' draws are nearly
# independent but each costs a whole trajectory of gradient evaluations; an
# emcee step is one likelihood evaluation per walker, but consecutive steps are
# strongly correlated. Which wins in *wall time* depends on the problem, the
# hardware and the implementation, so we measure it, with the run times the
# stopwatch callbacks recorded:
#
# - *sampling* time: the kept draws only (after warmup / burn-in; compilation
#   happened before);
# - *total* time: the whole `fit_map` call, including the optimiser, JAX
#   compilation and warmup;
# - ESS: the smallest over the nine parameters (the slowest-mixing direction
#   sets the precision of the run).
#
# These are timings, so this cell's output differs on every run and machine;
# the notebook tests do not compare it.

# %% tags=nbval-ignore-output
def efficiency(name, result, clock):
    ess = min(d["ess"] for d in result.diagnostics().values())
    draws = result.nchains * result.n_draws("sampling")
    stats = result.stats["sampling"]
    evaluations = (stats["num_steps"].sum() if "num_steps" in stats else draws)
    return {"backend": name, "kept draws": draws, "evaluations": int(evaluations),
            "min ESS": ess, "ESS per draw": ess / draws,
            "sampling s": clock.sampling_seconds, "total s": clock.total_seconds,
            "ESS/s sampling": ess / clock.sampling_seconds,
            "ESS/s total": ess / clock.total_seconds}


rows = [efficiency("emcee", emcee_run, emcee_clock),
        efficiency("numpyro NUTS", nuts, nuts_clock)]
formats = {"kept draws": "{:.0f}", "evaluations": "{:.0f}", "min ESS": "{:.0f}",
           "ESS per draw": "{:.3f}", "sampling s": "{:.1f}", "total s": "{:.1f}",
           "ESS/s sampling": "{:.0f}", "ESS/s total": "{:.1f}"}
print(f"{'':<16}" + "".join(f"{row['backend']:>14}" for row in rows))
for key, fmt in formats.items():
    print(f"{key:<16}" + "".join(f"{fmt.format(row[key]):>14}" for row in rows))
e, n = rows
faster = "NUTS" if n["ESS/s sampling"] > e["ESS/s sampling"] else "emcee"
factor = max(n["ESS/s sampling"], e["ESS/s sampling"]) / min(
    n["ESS/s sampling"], e["ESS/s sampling"])
faster_total = "NUTS" if n["ESS/s total"] > e["ESS/s total"] else "emcee"
factor_total = max(n["ESS/s total"], e["ESS/s total"]) / min(
    n["ESS/s total"], e["ESS/s total"])
print(f"\nOn this machine NUTS gives {n['ESS per draw'] / e['ESS per draw']:.0f} times "
      f"more effective samples per draw; {faster} gives {factor:.1f} times more "
      f"effective samples per second of sampling, and {faster_total} "
      f"{factor_total:.1f} times more per second of the whole call (optimiser, "
      f"compilation and warmup included).")

fig, axes = plt.subplots(1, 2, figsize=(9, 2.6), constrained_layout=True)
for ax, key in zip(axes, ["ESS per draw", "ESS/s sampling"]):
    ax.barh([row["backend"] for row in rows], [row[key] for row in rows],
            color=["tab:grey", "tab:blue"])
    ax.set_xlabel(key)

# %% [markdown]
# *Evaluations* counts log-probability evaluations for emcee (walkers x steps)
# and gradient evaluations (leapfrog steps) for NUTS; a gradient costs a few
# likelihood evaluations. What does not depend on the machine:

# %%
e_ess = min(d["ess"] for d in emcee_run.diagnostics().values())
n_ess = min(d["ess"] for d in nuts.diagnostics().values())
e_draws = emcee_run.nchains * emcee_run.n_draws("sampling")
n_draws = nuts.nchains * nuts.n_draws("sampling")
print("NUTS gives more effective samples per draw than emcee:",
      "yes" if n_ess / n_draws > e_ess / e_draws else "no")
print("NUTS gives more effective samples per evaluation than emcee:",
      "yes" if n_ess / steps.sum() > e_ess / e_draws else "no")

# %% [markdown]
# ## Practical guidance
#
# Read the table above for your machine; in general:
#
# - **NUTS** wins when each effective sample is expensive for emcee: many
#   free parameters (≳ 8), strong correlations (long emcee autocorrelation
#   times), or a GPU (numpyro uses JAX's device, no change needed). Tighten
#   unbounded priors first, start with `max_tree_depth=6`, run two or more
#   chains for R-hat, and read the verdict for divergences.
# - **emcee** has no warmup tuning, no gradients and no compilation of a
#   sampler; for a handful of parameters, or when you just want a quick look,
#   it is the simpler choice, and it remains the default. Its
#   differential-evolution moves often mix faster than the default stretch
#   move.
# - Either way, judge a run by its verdict, not by its number of draws: for
#   NUTS rank R-hat, bulk and tail ESS and divergences, for emcee the chain
#   length in autocorrelation times (never R-hat over walkers).
#
# Both backends sample the same posterior: on the validation fit of the
# astro-eddy tutorial their medians agree within 0.2 sigma and their widths
# within 9 per cent, as they do here within the noise of these runs.
