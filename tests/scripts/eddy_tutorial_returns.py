# astro-eddy 3.2's tutorial fit ("Switching to numpyro NUTS", and Tutorial 2's
# emcee and zeus) with the calls a script makes on what fit_map returns,
# unchanged apart from the import, the file paths (the bundled example) and,
# for the test suite, short counts. MCMC picks the backend ('emcee',
# 'numpyro' or 'zeus'); tests/test_tutorial_calls.py runs it with each.
# It runs in astro-eddy 3.2 with `from eddy import rotationmap` and the
# paths of the same files (the manual check in
# docs/astro_eddy_compatibility.md).
import numpy as np

from eddy_widgets import rotationmap
from eddy_widgets.data import example_paths

MCMC = globals().get('MCMC', 'emcee')

paths = example_paths()
cube = rotationmap(path=paths['v0'],
                   uncertainty=paths['dv0'],
                   FOV=8.0, downsample=4)

cube.set_prior('r_taper', [0.0, 50.0], 'flat')

params = {}
params['x0'] = 0
params['y0'] = 1
params['PA'] = 2
params['mstar'] = 3
params['vlsr'] = 4
params['z0'] = 5
params['psi'] = 6
params['r_taper'] = 7
params['q_taper'] = 8
params['inc'] = 46.7
params['dist'] = 101.0
params['r_min'] = 2.0 * cube.bmaj
p0 = [0.0, 0.0, 312., 2.0, 5.7e3, 0.25, 1.0, 3.0, 2.0]

if MCMC == 'numpyro':
    nwalkers, nburnin, nsteps = 1, 20, 15
    mcmc_kwargs = {'seed': 0, 'progress': False, 'max_tree_depth': 4}
else:
    nwalkers, nburnin, nsteps = 20, 10, 15
    mcmc_kwargs = {'progress': False}

# The items come back in astro-eddy's order, whatever the list's order.
samples, sampler, percentiles, medians, model, residual = cube.fit_map(
    p0=p0, params=params, optimize=True,
    nwalkers=nwalkers, nburnin=nburnin, nsteps=nsteps,
    mcmc=MCMC, mcmc_kwargs=mcmc_kwargs, plots='none',
    returns=['residual', 'model', 'dict', 'percentiles', 'sampler', 'samples'],
)

# What a script reads from the sampler.
flat = sampler.get_chain(discard=nburnin, flat=True)
chain = sampler.chain
if MCMC == 'emcee':
    acceptance = np.mean(sampler.acceptance_fraction)
    tau = sampler.get_autocorr_time(quiet=True)
    log_prob = sampler.get_log_prob(discard=nburnin, flat=True)
    lnprobability = sampler.lnprobability
elif MCMC == 'zeus':
    tau = sampler.act
    log_prob = sampler.get_log_prob(discard=nburnin, flat=True)
else:
    lnprobability = sampler.lnprobability
    log_prob = lnprobability[nburnin:]

# The medians go back into the model.
best = cube.evaluate_models(params=medians)
