"""Cold start: what a fit compiles in a fresh process, and a compilation
cache that can be filled ahead (Binder's image build) and moved."""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest

from eddy_widgets.inference.backends.nuts import NutsSampler
from eddy_widgets.inference.posterior import Posterior
from eddy_widgets.inference.run import FitRun
from eddy_widgets.inference.spec import FitSpec

from helpers import P0, tutorial_params

ROOT = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def compiled_programs():
    """Names of the XLA programs compiled (or loaded) in the block, with
    JAX's in-memory caches emptied first, as in a fresh process."""
    names = []

    class Listen(logging.Handler):
        def emit(self, record):
            message = record.getMessage()
            if message.startswith("Finished XLA compilation of "):
                names.append(message.split(" of ", 1)[1].split(" in ")[0])

    logger, handler = logging.getLogger("jax"), Listen()
    level = logger.level
    jax.clear_caches()
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        with jax.log_compiles(True):
            yield names
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _posterior(cube):
    theta = np.array(P0, dtype=float)
    spec = FitSpec.parse(tutorial_params(cube), theta)
    return theta, Posterior(cube.map, spec, cube.priors, theta)


def test_nuts_chains_compile_one_start_up_and_one_sampler_program(small_cube):
    theta, post = _posterior(small_cube)
    post.set_standardizer(post.to_unconstrained(theta), np.full(theta.size, 0.1))
    nuts = NutsSampler(post, 3, 20, theta, seed=4, max_tree_depth=3)
    with compiled_programs() as names:
        draws = [nuts.advance(k)[0] for k in (2, 3, 1, 4)]
    # No single operation between chunks (slicing and stacking the chains,
    # splitting the seed) is compiled on its own: it is two programs.
    assert sorted(names) == ["jit(chunk)", "jit(init)"], names
    assert all(np.all(np.isfinite(d)) and d.shape[0] == 3 for d in draws)


def test_nuts_chains_keep_their_keys_whatever_their_number(small_cube):
    # The start-up splits the seed into a fixed number of keys, so chain c
    # gets the key it got from a split into nchains + 1 keys, as before.
    theta, post = _posterior(small_cube)
    post.set_standardizer(post.to_unconstrained(theta), np.full(theta.size, 0.1))
    two = NutsSampler(post, 2, 20, theta, seed=9, max_tree_depth=3)
    three = NutsSampler(post, 3, 20, theta, seed=9, max_tree_depth=3)
    assert np.array_equal(three.state.rng_key[:2], two.state.rng_key)
    assert np.array_equal(two.advance(5)[0], three.advance(5)[0][:2])


def test_fit_quality_is_one_program_and_matches_the_model_map(small_cube, in_tmp_path):
    theta, post = _posterior(small_cube)
    run = FitRun(post, theta, "emcee", 20, 2, 3, {"seed": 1})
    run.run()
    with compiled_programs() as names:
        run.record_fit_quality()
    assert len(names) == 1, names  # the model at the fitted pixels, compiled whole
    median = run.result.percentiles([50])[0]
    model = post.model_map(median)[post.mask]
    data, error = post.data.data[post.mask], post.data.error[post.mask]
    chi2 = np.sum((data - model) ** 2 / error ** 2)
    quality = run.result.settings["fit_quality"]
    assert quality["chi2"] == pytest.approx(chi2, rel=1e-9)
    assert quality["npix"] == post.npix


def _python(code: str, cache: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "EDDY_WIDGETS_JAX_CACHE": str(cache), "JAX_LOG_COMPILES": "1"}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, check=True, cwd=ROOT)


SMALL_PROGRAM = """
import eddy_widgets, jax, jax.numpy as jnp
from jax._src import monitoring
hits = []
monitoring.register_event_listener(
    lambda event, **kw: hits.append(event) if event.endswith("cache_hits") else None)
print(float(jax.jit(lambda x: jnp.sin(x) * 3.0 + 1.0)(jnp.arange(5.0)).sum()))
print("hits", len(hits))
"""


def test_a_quick_program_is_cached_and_found_after_the_folder_moves(tmp_path):
    first = _python(SMALL_PROGRAM, tmp_path / "built")
    assert "hits 0" in first.stdout
    # Compiled in milliseconds, yet written: the next process loads it.
    entries = [p.name for p in (tmp_path / "built").iterdir()]
    assert any(name.startswith("jit__lambda") for name in entries), entries
    # Copied elsewhere (an image built in one place, run in another).
    shutil.copytree(tmp_path / "built", tmp_path / "moved")
    second = _python(SMALL_PROGRAM, tmp_path / "moved")
    assert second.stdout.splitlines()[0] == first.stdout.splitlines()[0]
    assert "hits 0" not in second.stdout
    assert "Persistent compilation cache hit for 'jit__lambda'" in second.stderr


def test_an_entry_without_an_access_time_does_not_stop_new_entries(tmp_path):
    """A folder holding entries written without JAX's eviction (an earlier
    version, another process: no ``-atime`` file beside them) still takes
    new entries, with no warning: JAX's eviction would read every entry's
    access time on each write and fail (with ``filelock`` installed it is
    on when its size bound is set, which the package therefore does not do;
    the bound is kept at import)."""
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "jit_old-0123456789abcdef-cache").write_bytes(b"\0" * 100)
    run = _python(SMALL_PROGRAM, cache)
    assert "Error writing persistent compilation cache entry" not in run.stderr
    entries = [p.name for p in cache.iterdir()]
    assert any(name.startswith("jit__lambda") for name in entries), entries
