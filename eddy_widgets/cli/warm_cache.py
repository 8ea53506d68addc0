"""Fill the compilation cache with the tutorials' programs.

    python -m eddy_widgets.warm_cache [--quick]

Binder's image build (``binder/postBuild``) runs this, so that a reader's
first fit loads its compiled programs from the cache
(:mod:`eddy_widgets.jax_cache`) instead of compiling them. It prepares the
set-ups of the notebooks, the dashboard and the main job on the bundled
example (optimised start, as they do) and compiles what their fits run,
without running the fits:

- emcee on the 80 x 80 map (the quick start's dashboard, tutorials 3-4, the
  main job) and on the 160 x 160 map (tutorial 5): the start, a couple of
  steps and the fit-quality check;
- NUTS on the 80 x 80 map with 2 chains and ``max_tree_depth=6``: 300
  warmup draws on parallel chains where there are two devices, as tutorial 4
  runs, and 500 on sequential chains (the main job); each is made and its
  sampler compiled (numpyro compiles its warmup schedule into the program,
  so each warmup length is a program of its own), without a draw.

``--quick`` does only the 80 x 80 emcee set-up and the NUTS one of the main
job. The cache folder is the one the package uses at run time
(``EDDY_WIDGETS_JAX_CACHE``, by default ``~/.cache/eddy_widgets/jax``).
"""

from __future__ import annotations

import argparse
import sys
import time

#: (label, downsample, mcmc, nwalkers, nburnin, extra mcmc_kwargs)
SETUPS = (
    ("emcee, 80 x 80", 4, "emcee", 32, 1, {}),
    ("emcee, 160 x 160", 2, "emcee", 32, 1, {}),
    ("NUTS, tutorial 4", 4, "numpyro", 2, 300, {"chain_method": "tutorial"}),
    ("NUTS, main job", 4, "numpyro", 2, 500, {"chain_method": "sequential"}),
)
QUICK = ("emcee, 80 x 80", "NUTS, main job")


def warm(label: str, downsample: int, mcmc: str, nwalkers: int, nburnin: int,
         extra: dict) -> float:
    """Compile the programs of one set-up; returns the seconds it took."""
    import jax

    from eddy_widgets.data import load_example
    from eddy_widgets.data.example import TUTORIAL_P0, TUTORIAL_PARAMS
    from eddy_widgets.facade.rotationmap import rotationmap
    from eddy_widgets.inference.backends import BACKENDS

    t0 = time.perf_counter()
    example = load_example()
    cube = rotationmap(example.v0, uncertainty=example.dv0, FOV=8.0,
                       downsample=downsample)
    cube.set_prior("r_taper", [0.0, 50.0], "flat")
    params = dict(TUTORIAL_PARAMS, r_min=2.0 * cube.bmaj)
    kwargs = {"seed": 0, "progress": False}
    backend = BACKENDS[mcmc]
    if "chain_method" in backend.options:
        method = extra["chain_method"]
        if method == "tutorial":  # as tutorial 4 chooses it
            method = "parallel" if jax.local_device_count() >= 2 else "sequential"
        kwargs.update(max_tree_depth=6, chain_method=method)
    run = cube.prepare_fit(TUTORIAL_P0, params, optimize=True, nwalkers=nwalkers,
                           nburnin=nburnin, nsteps=1, mcmc=mcmc, mcmc_kwargs=kwargs,
                           verbose=False, warn=False)
    if backend.unconstrained:   # NUTS: compile its chunk without a draw
        run.warm_up()
        run.compile_fit_quality()
    else:
        run.run()
    return time.perf_counter() - t0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m eddy_widgets.warm_cache",
                                description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true",
                   help="only emcee and the main job's NUTS on the 80 x 80 map")
    args = p.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import jax

    folder = jax.config.jax_compilation_cache_dir
    if not folder:
        print("The compilation cache is off (EDDY_WIDGETS_JAX_CACHE=off): nothing to "
              "fill.", file=sys.stderr)
        return 1
    print(f"Filling the compilation cache in {folder}")
    for setup in SETUPS:
        if args.quick and setup[0] not in QUICK:
            continue
        seconds = warm(*setup)
        print(f"  {setup[0]}: {seconds:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
