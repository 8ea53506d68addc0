"""Large maps: the data are arguments of the compiled programs, not constants,
so maps of one shape share one program (in memory and in the persistent
cache); the persistent cache is bounded."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from eddy_widgets import jax_cache
from eddy_widgets.inference import posterior as posterior_module
from eddy_widgets.inference.backends.emcee import EmceeSampler
from eddy_widgets.inference.backends.nuts import NutsSampler
from eddy_widgets.inference.posterior import Posterior, _compile, _setup_of
from eddy_widgets.inference.spec import FitSpec

from helpers import FREE, P0, tutorial_params

VLSR_SHIFT = 30.0  # m/s


def _pair(cube, beam=False):
    """Posteriors of one set-up on the map and on the map shifted by
    VLSR_SHIFT (same shape, other values)."""
    theta = np.array(P0, dtype=float)
    spec = FitSpec.parse({**tutorial_params(cube), "beam": beam}, theta)
    shifted = dataclasses.replace(cube.map, data=cube.map.data + VLSR_SHIFT)
    a = Posterior(cube.map, spec, cube.priors, theta)
    b = Posterior(shifted, spec, cube.priors, theta)
    return theta, a, b


@pytest.mark.parametrize("beam", [False, True])
def test_two_maps_of_one_shape_share_one_program(small_cube, beam):
    theta, a, b = _pair(small_cube, beam)
    assert a.programs is b.programs
    # Map b is map a moved by VLSR_SHIFT: b at vlsr + shift fits as a at vlsr.
    moved = theta.copy()
    moved[FREE.index("vlsr")] += VLSR_SHIFT
    batch = np.stack([theta, moved])
    va, ga = a.value_and_grad(jnp.asarray(theta))
    lp_a = a.log_prob_numpy(batch)
    # (Other tests may have compiled these programs for other shapes too.)
    names = ("value_and_grad", "log_prob_batch")
    compiled = [getattr(a.programs, name)._cache_size() for name in names]
    vb, gb = b.value_and_grad(jnp.asarray(moved))
    assert float(vb) == pytest.approx(float(va), rel=1e-9)
    np.testing.assert_allclose(np.asarray(gb), np.asarray(ga), rtol=1e-6, atol=1e-6)
    # ... and each map answers with its own data, not the other's.
    assert abs(float(b.value_and_grad(jnp.asarray(theta))[0]) - float(va)) > 100.0
    lp_b = b.log_prob_numpy(batch)
    assert lp_b[1] == pytest.approx(lp_a[0], rel=1e-6)
    assert abs(lp_b[0] - lp_a[0]) > 100.0
    # Map b compiled nothing: it runs map a's programs.
    assert [getattr(a.programs, name)._cache_size() for name in names] == compiled


@pytest.fixture
def empty_persistent_cache(tmp_path):
    """A fresh persistent cache that keeps every program, and a count of the
    programs that had to be compiled (cache misses) while it is in use."""
    from jax._src import compilation_cache

    names = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs",
             "jax_persistent_cache_min_entry_size_bytes")
    saved = {n: getattr(jax.config, n) for n in names}
    jax.config.update("jax_compilation_cache_dir", str(tmp_path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    compilation_cache.reset_cache()
    counts = {"misses": 0, "hits": 0}

    def listen(event, **kwargs):
        if event == "/jax/compilation_cache/cache_misses":
            counts["misses"] += 1
        elif event == "/jax/compilation_cache/cache_hits":
            counts["hits"] += 1

    jax.monitoring.register_event_listener(listen)
    try:
        yield counts
    finally:
        jax.monitoring.unregister_event_listener(listen)
        for n, v in saved.items():
            jax.config.update(n, v)
        compilation_cache.reset_cache()


def test_a_second_map_compiles_nothing_for_emcee_or_nuts(small_cube,
                                                         empty_persistent_cache):
    theta, a, b = _pair(small_cube)
    a.set_standardizer(a.to_unconstrained(theta), np.full(theta.size, 0.1))
    b.set_standardizer(b.to_unconstrained(theta), np.full(theta.size, 0.1))
    for post in (a, b):
        before = dict(empty_persistent_cache)
        emcee = EmceeSampler(post, 20, theta, seed=1)
        emcee.advance(2)
        nuts = NutsSampler(post, 1, 10, theta, seed=1, max_tree_depth=3)
        draws, logp, _ = nuts.advance(2)
        assert np.all(np.isfinite(logp))
        misses = empty_persistent_cache["misses"] - before["misses"]
    # The second map found every program in the cache: nothing compiled.
    assert empty_persistent_cache["hits"] > 0
    assert misses == 0


def test_cache_entries_do_not_grow_with_the_map(small_cube, standard_cube, tmp_path,
                                                empty_persistent_cache):
    # The gradient program of a 40 x 40 and of an 80 x 80 map (compiled
    # afresh): a few hundred kB each, with the map's arrays not inside.
    sizes = []
    for cube in (small_cube, standard_cube):
        theta, a, _ = _pair(cube)
        before = jax_cache.folder_size(tmp_path)
        fresh = _compile(_setup_of(a))
        fresh.value_and_grad(a.arrays, jnp.asarray(theta))
        sizes.append(jax_cache.folder_size(tmp_path) - before)
    assert 0 < sizes[0] < 1_000_000 and sizes[1] < 1.2 * sizes[0] + 50_000


def test_cache_is_pruned_to_its_bound(tmp_path):
    for i in range(10):
        path = tmp_path / f"entry{i}-cache"
        path.write_bytes(b"x" * 1000)
        os.utime(path, (1000 + i, 1000 + i))
    (tmp_path / "entry0-atime").write_bytes(b"t")
    deleted = jax_cache.prune(tmp_path, 4500)
    assert sorted(p.name for p in deleted) == [f"entry{i}-cache" for i in range(6)]
    assert jax_cache.folder_size(tmp_path) == 4000
    assert not (tmp_path / "entry0-atime").exists()
    assert jax_cache.prune(tmp_path, -1) == []


def test_cache_bound_from_the_environment():
    assert jax_cache.max_size({}) == 1024 ** 3
    for text, size in [("500MB", 500 * 1024 ** 2), ("2 gb", 2 * 1024 ** 3),
                       ("123", 123), ("-1", -1)]:
        assert jax_cache.max_size({"EDDY_WIDGETS_JAX_CACHE_MAX_SIZE": text}) == size
    with pytest.raises(ValueError, match="KB, MB or GB"):
        jax_cache.max_size({"EDDY_WIDGETS_JAX_CACHE_MAX_SIZE": "lots"})


def test_import_prunes_an_oversized_cache(tmp_path):
    folder = tmp_path / "jax"
    folder.mkdir()
    for i in range(5):
        (folder / f"old{i}-cache").write_bytes(b"x" * 1000)
        os.utime(folder / f"old{i}-cache", (1000 + i, 1000 + i))
    env = {**os.environ, "EDDY_WIDGETS_JAX_CACHE": str(folder),
           "EDDY_WIDGETS_JAX_CACHE_MAX_SIZE": "2KB", "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, "-c", "import eddy_widgets, jax; "
                          "print(jax.config.jax_compilation_cache_dir)"],
                         env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["old3-cache", "old4-cache"]


# ---------------------------------------------------------------------------
# Gradients of large maps block by block
# ---------------------------------------------------------------------------


def _fresh_gradients(post, theta):
    """Value and gradient of the log-posterior and of NUTS' potential, from
    programs compiled afresh (they read the block settings when traced)."""
    fresh = _compile(_setup_of(post))
    value, grad = fresh.value_and_grad(post.arrays, jnp.asarray(theta))
    u = jnp.asarray(post.to_unconstrained(theta)) + 0.1
    pot, pot_grad = jax.value_and_grad(fresh.potential, argnums=1)(
        post.arrays, u, post.standardizer.centre, post.standardizer.scale)
    return [np.asarray(x) for x in (value, grad, pot, pot_grad)]


@pytest.mark.parametrize("beam", [False, True])
def test_blocked_gradient_equals_the_whole_map_gradient(small_cube, beam, monkeypatch):
    theta, post, _ = _pair(small_cube, beam)
    post.bijections  # noqa: B018 - built before the potential is traced
    whole = _fresh_gradients(post, theta)
    # The 40 x 40 map (about 1,000 fitted pixels) is above a threshold of
    # 100 points; blocks of 96 leave a padded last block.
    monkeypatch.setattr(posterior_module, "BLOCK_MIN_POINTS", 100)
    monkeypatch.setattr(posterior_module, "BEAM_BLOCK_MIN_POINTS", 100)
    monkeypatch.setattr(posterior_module, "BLOCK_POINTS", 96)
    blocked = _fresh_gradients(post, theta)
    assert np.all(np.abs(whole[1]) > 1e-3)
    for b, w in zip(blocked, whole):
        np.testing.assert_allclose(b, w, rtol=1e-10, atol=0)


def _memory_of_gradient(post, side):
    """Temporary memory [bytes] of the gradient program for a side x side map
    whose pixels are all fitted (compiled from shapes, never run)."""
    n = side * side
    f64 = jax.ShapeDtypeStruct((n,), jnp.float64)
    arrays = {"data": f64, "ivar": f64}
    if post.beam:
        grid = jax.ShapeDtypeStruct((side, side), jnp.float64)
        index = jax.ShapeDtypeStruct((n,), post.arrays["rows"].dtype)
        arrays.update(x_grid=grid, y_grid=grid, coverage=grid, rows=index, cols=index,
                      kernel=post.arrays["kernel"])
    else:
        arrays.update(x=f64, y=f64)
    theta = jax.ShapeDtypeStruct((len(FREE),), jnp.float64)
    fresh = _compile(_setup_of(post))
    compiled = fresh.value_and_grad.lower(arrays, theta).compile()
    return compiled.memory_analysis().temp_size_in_bytes


@pytest.mark.parametrize("beam", [False, True])
def test_gradient_memory_of_a_large_map_is_a_few_maps(small_cube, beam):
    # A 512 x 512 map (262,144 pixels, 2 MB): reverse mode over the whole map
    # would keep about 50 per-pixel arrays (100 MB); block by block the
    # gradient needs a few maps' worth.
    _, post, _ = _pair(small_cube, beam)
    map_bytes = 512 * 512 * 8
    assert _memory_of_gradient(post, 512) < 12 * map_bytes


# ---------------------------------------------------------------------------
# emcee's batch on large maps: walkers in groups
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("beam", [False, True])
def test_walkers_in_groups_give_each_walkers_value_with_less_memory(small_cube, beam,
                                                                     monkeypatch):
    theta, post, _ = _pair(small_cube, beam)
    rng = np.random.default_rng(3)
    thetas = jnp.asarray(theta + 1e-3 * rng.standard_normal((7, len(theta))) * np.abs(theta))
    together = np.asarray(_compile(_setup_of(post)).log_prob_batch(post.arrays, thetas))
    lowered_together = _compile(_setup_of(post)).log_prob_batch.lower(post.arrays, thetas)
    # The 40 x 40 map with 7 walkers, as if it were a map too large for all
    # walkers at once: groups of 2 (the last one short).
    points = max(int(np.size(a)) for a in jax.tree_util.tree_leaves(post.arrays))
    monkeypatch.setattr(posterior_module, "BATCH_POINTS", 2 * points)
    grouped = _compile(_setup_of(post))
    values = np.asarray(grouped.log_prob_batch(post.arrays, thetas))
    # emcee's values: the value-only program (float32 model), walker by walker.
    one_by_one = np.array([float(grouped.log_prob(post.arrays, t)) for t in thetas])
    assert np.ptp(one_by_one) > 1.0                     # walkers that differ
    np.testing.assert_allclose(values, one_by_one, rtol=1e-12, atol=0)
    np.testing.assert_allclose(values, together, rtol=1e-12, atol=0)
    # Working memory: two walkers' worth instead of seven.
    memory = grouped.log_prob_batch.lower(post.arrays, thetas).compile() \
        .memory_analysis().temp_size_in_bytes
    assert memory < 0.6 * lowered_together.compile().memory_analysis().temp_size_in_bytes
