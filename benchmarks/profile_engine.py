"""Where our time goes, and what the engine could change (measurements behind
the suggestions in benchmarks/README.md; nothing here changes the engine).

    .venv/bin/python benchmarks/profile_engine.py [--only init,shard,f32,ops]

- ``init``: NUTS set-up. ``NutsSampler`` calls numpyro's ``init_kernel``
  eagerly: every JAX operation of the potential and its gradient is compiled
  on its own, and none of them is slow enough (>= 0.2 s) to be kept in the
  persistent cache, so every session pays it again. Compared with the same
  call under ``jax.jit`` (cold: empty cache; warm: cache filled), each in a
  fresh process.
- ``shard``: the emcee half-ensemble batch (16 walkers) as one ``vmap`` on one
  device vs split over the host devices our package creates (one per core).
- ``f32``: one log-probability of the standard problem in float32 vs float64.
- ``ops``: cost per element of the model's transcendental functions (f64).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def _setup(x64=True):
    import eddy_widgets  # noqa: F401, I001  (first: x64, devices, cache)
    import jax

    if not x64:
        jax.config.update("jax_enable_x64", False)
    from bench_fit import (
        DOWNSAMPLE,
        FOV,
        FREE,
        R_TAPER_PRIOR,
        example_files,
        standard_params,
    )

    from eddy_widgets import rotationmap

    files = example_files()
    cube = rotationmap(files["v0"], FOV=FOV, downsample=DOWNSAMPLE)
    cube.set_prior("r_taper", R_TAPER_PRIOR, "flat")
    theta = np.array([files["truths"][n] for n in FREE])
    post = cube.posterior(standard_params(cube.bmaj), theta)
    return post, theta


def _median_us(fn, n=300):
    """Median warm time of ``fn`` [us] (bench_scale's timer, 5 warm-up calls)."""
    from bench_scale import median_ms

    return median_ms(fn, n, warmups=6) * 1e3


def child_init(variant: str) -> dict:
    from functools import partial

    import jax
    import jax.numpy as jnp
    from numpyro.infer.hmc import hmc

    post, theta = _setup()
    _ = post.bijections
    u0 = jnp.asarray(post.to_unconstrained(theta))
    init_kernel, _ = hmc(potential_fn_gen=lambda c, s: partial(
        post.potential, centre=c, scale=s), algo="NUTS")
    ms = (post.standardizer.centre, post.standardizer.scale)
    kw = dict(step_size=0.5, dense_mass=True, target_accept_prob=0.8,
              max_tree_depth=6, find_heuristic_step_size=False)
    t = time.perf_counter()
    if variant == "eager":  # what NutsSampler.__init__ does
        state = init_kernel(u0, 500, inverse_mass_matrix=jnp.eye(u0.size),
                            rng_key=jax.random.PRNGKey(1), model_args=ms, **kw)
    else:
        init = jax.jit(lambda z, imm, key, c, s: init_kernel(
            z, 500, inverse_mass_matrix=imm, rng_key=key, model_args=(c, s), **kw))
        state = init(u0, jnp.eye(u0.size), jax.random.PRNGKey(1), *ms)
    jax.block_until_ready(state)
    return {"seconds": time.perf_counter() - t}


def child_shard() -> dict:
    import jax
    import jax.numpy as jnp

    post, theta = _setup()
    ndev = jax.local_device_count()
    rng = np.random.default_rng(0)
    batch = jnp.asarray(theta * (1 + 1e-4 * rng.standard_normal((16, theta.size))))
    one = post.log_prob_batch
    split = jax.pmap(jax.vmap(post.log_prob))
    sharded = batch.reshape(ndev, -1, theta.size)
    a = np.asarray(one(batch))
    b = np.asarray(split(sharded)).ravel()
    assert np.allclose(a, b), (a, b)
    return {"devices": ndev, "vmap16_us": _median_us(lambda: one(batch)),
            "pmap_us": _median_us(lambda: split(sharded)),
            "single_us": _median_us(lambda: post.log_prob_jit(batch[0]))}


def child_f32(x64: bool) -> dict:
    import jax.numpy as jnp

    post, theta = _setup(x64)
    th = jnp.asarray(theta, dtype=jnp.float64 if x64 else jnp.float32)
    return {"x64": x64, "dtype": str(post._d.dtype),
            "logp": float(post.log_prob_jit(th)),
            "logp_us": _median_us(lambda: post.log_prob_jit(th)),
            "grad_us": _median_us(lambda: post.value_and_grad(th))}


def child_ops() -> dict:
    import jax
    import jax.numpy as jnp

    import eddy_widgets  # noqa: F401

    n = 4288 * 18
    x = jnp.asarray(np.random.default_rng(0).random(n) + 0.5)
    out = {}
    for name, f in (("exp", jnp.exp), ("log", jnp.log), ("pow", lambda v: v ** 1.7),
                    ("sqrt", jnp.sqrt), ("mul", lambda v: v * 1.1),
                    ("arctan2", lambda v: jnp.arctan2(v, v + 1.0))):
        g = jax.jit(f)
        out[name + "_ns"] = _median_us(lambda: g(x)) * 1e3 / n  # noqa: B023
    return out


def spawn(args: list[str], env: dict | None = None) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        path = f.name
    proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(args),
                           "--child-out", path], env={**os.environ, **(env or {})},
                          capture_output=True, text=True)
    if proc.returncode:
        print(proc.stderr[-3000:])
        return {"error": True}
    res = json.loads(Path(path).read_text())
    os.unlink(path)
    return res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", default="init,shard,f32,ops")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--child-out", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        what = json.loads(args.child)
        fn = {"init": lambda: child_init(what[1]), "shard": child_shard,
              "f32": lambda: child_f32(what[1] == "64"), "ops": child_ops}[what[0]]
        import eddy_widgets  # noqa: F401  (before jax: one host device per core)
        Path(args.child_out).write_text(json.dumps(fn()))
        return 0
    only = args.only.split(",")
    print(f"1-min load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    if "init" in only:
        with tempfile.TemporaryDirectory() as cache:
            env = {"EDDY_WIDGETS_JAX_CACHE": cache}
            rows = [("eager (now), cold cache", spawn(["init", "eager"], env)),
                    ("eager (now), warm cache", spawn(["init", "eager"], env)),
                    ("jax.jit, cold cache", spawn(["init", "jit"], env)),
                    ("jax.jit, warm cache", spawn(["init", "jit"], env))]
        print("\nNUTS init_kernel (fresh process each):")
        for label, r in rows:
            print(f"  {label:<26} {r.get('seconds', float('nan')):6.2f} s")
    if "shard" in only:
        r = spawn(["shard"])
        print(f"\nemcee half-ensemble (16 walkers): one vmap {r['vmap16_us']:.0f} us; "
              f"split over {r['devices']} devices (pmap) {r['pmap_us']:.0f} us; "
              f"one walker alone {r['single_us']:.0f} us")
    if "f32" in only:
        a, b = spawn(["f32", "64"]), spawn(["f32", "32"])
        print(f"\nlog-prob float64 {a['logp_us']:.0f} us (grad {a['grad_us']:.0f} us), "
              f"float32 {b['logp_us']:.0f} us (grad {b['grad_us']:.0f} us); "
              f"values {a['logp']:.4f} vs {b['logp']:.4f}")
    if "ops" in only:
        r = spawn(["ops"])
        print("\nfloat64 cost per element (jit, 77k elements): " + ", ".join(
            f"{k[:-3]} {v:.1f} ns" for k, v in r.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
