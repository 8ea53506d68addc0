# The astro-eddy tutorial "Switching to numpyro NUTS" as our users run it
# today, unchanged apart from the import, the file paths (the bundled example
# instead of the downloaded HD 163296 maps) and, for the test suite, shorter
# counts (the tutorial uses nburnin=500, nsteps=500).
from eddy_widgets import rotationmap
from eddy_widgets.data import example_paths

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

samples = cube.fit_map(
    p0=p0, params=params, optimize=True,
    nwalkers=1,   # numpyro: num_chains
    nburnin=200,  # numpyro: num_warmup
    nsteps=200,   # numpyro: num_samples
    mcmc='numpyro',
    mcmc_kwargs={
        'seed': 0,
        'progress': True,
        'max_tree_depth': 6,
    },
    plots=['walkers', 'corner', 'bestfit', 'residual'],
    returns=['samples', 'percentiles'],
)
