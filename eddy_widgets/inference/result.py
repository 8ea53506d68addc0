"""The result of a fit: chains, log-probabilities, sampler statistics,
summaries and diagnostics; saved to and loaded from one ``.npz`` file."""

from __future__ import annotations

import json
import math
import threading

import numpy as np

from ..parameters import PARAMETERS
from .samplers import Chunk, RunInfo

PHASES = ("warmup", "sampling")


class FitResult:
    """Everything a run produced, growing chunk by chunk while it runs.

    It is itself a streaming callback: ``result(chunk, info)`` appends a chunk.

    Attributes:
        names: free parameters, in ``p0`` order.
        backend: ``'emcee'`` or ``'numpyro'``.
        chains: ``{'warmup': (nchains, n, ndim), 'sampling': (nchains, n, ndim)}``.
        log_prob: ``{'warmup': (nchains, n), 'sampling': (nchains, n)}``.
        stats: ``{'warmup': {name: (nchains, n)}, 'sampling': {...}}``.
        settings: the fit set-up (params, p0, priors, counts, options, start).
        sampler_state: what a sampler needs to continue exactly.
        stopped: whether the last run was stopped before its end.
    """

    def __init__(self, names, backend: str, nchains: int, settings: dict | None = None):
        self.names = tuple(names)
        self.backend = backend
        self.nchains = int(nchains)
        self.settings = dict(settings or {})
        ndim = len(self.names)
        self._chains = {p: [np.empty((self.nchains, 0, ndim))] for p in PHASES}
        self._log_prob = {p: [np.empty((self.nchains, 0))] for p in PHASES}
        self._stats = {p: {} for p in PHASES}
        self.sampler_state: dict = {}
        self.stopped = False
        # A run appends from its thread while views may read from another.
        self._lock = threading.RLock()
        self.n_warmup_target = 0
        self.n_samples_target = 0

    # -- Growing -------------------------------------------------------------

    def __call__(self, chunk: Chunk, info: RunInfo | None = None) -> None:
        self.append(chunk)

    def append(self, chunk: Chunk) -> None:
        with self._lock:
            expected = self.n_draws(chunk.phase)
            if chunk.start != expected:
                raise ValueError(f"chunk starts at draw {chunk.start} of "
                                 f"{chunk.phase} but the result holds {expected}")
            self._chains[chunk.phase].append(np.asarray(chunk.draws, dtype=float))
            self._log_prob[chunk.phase].append(np.asarray(chunk.log_prob, dtype=float))
            for key, value in chunk.stats.items():
                self._stats[chunk.phase].setdefault(key, []).append(np.asarray(value))

    def _joined(self, store, phase):
        with self._lock:
            parts = store[phase]
            if len(parts) > 1:
                store[phase] = [np.concatenate(parts, axis=1)]
            return store[phase][0]

    @property
    def chains(self) -> dict:
        return {p: self._joined(self._chains, p) for p in PHASES}

    @property
    def log_prob(self) -> dict:
        return {p: self._joined(self._log_prob, p) for p in PHASES}

    @property
    def stats(self) -> dict:
        out = {}
        for phase in PHASES:
            out[phase] = {}
            for key in list(self._stats[phase]):
                out[phase][key] = self._joined(self._stats[phase], key)
        return out

    def n_draws(self, phase: str = "sampling") -> int:
        with self._lock:
            return sum(part.shape[1] for part in self._chains[phase])

    # -- Summaries -------------------------------------------------------------

    @property
    def samples(self) -> np.ndarray:
        """Post-warmup draws of all chains, flat: ``(nchains * n, ndim)``.
        PA is wrapped into [0, 360) as astro-eddy does."""
        chain = self.chains["sampling"]
        flat = chain.reshape(-1, chain.shape[-1]).copy()
        if "PA" in self.names:
            i = self.names.index("PA")
            flat[:, i] %= 360.0
        return flat

    def percentiles(self, q=(16, 50, 84)) -> np.ndarray:
        """``(len(q), ndim)`` percentiles of the samples (astro-eddy's layout)."""
        samples = self.samples
        if samples.shape[0] == 0:
            raise ValueError("The run has no post-warmup draws yet.")
        return np.percentile(samples, q, axis=0)

    def medians(self) -> dict:
        return dict(zip(self.names, self.percentiles([50])[0]))

    def diagnostics(self) -> dict:
        """Per-parameter effective sample size and split R-hat.

        NUTS: numpyro's ESS over chains. emcee: walkers x steps divided by the
        integrated autocorrelation time (emcee's estimator). R-hat is the
        split Gelman-Rubin statistic with chains (or walkers) as chains; it
        needs at least 4 draws.
        """
        from numpyro.diagnostics import effective_sample_size, split_gelman_rubin

        chain = self.chains["sampling"]
        n = chain.shape[1]
        out = {}
        for i, name in enumerate(self.names):
            x = chain[:, :, i]
            if name == "PA":
                x = x % 360.0
            ess = rhat = math.nan
            if n >= 4 and self.nchains * n > 4:
                if self.backend == "emcee":
                    tau = _integrated_time(x)
                    ess = x.size / max(float(tau), 1.0)
                else:
                    ess = float(effective_sample_size(x))
                with np.errstate(invalid="ignore", divide="ignore"):
                    rhat = float(split_gelman_rubin(x))
            out[name] = {"ess": ess, "r_hat": rhat}
        return out

    def sampler_summary(self) -> dict:
        """Run-level statistics: acceptance, step size, tree depth, divergences."""
        stats = self.stats["sampling"]
        out = {"backend": self.backend, "nchains": self.nchains,
               "warmup": self.n_draws("warmup"), "samples": self.n_draws("sampling")}
        if "accepted" in stats and stats["accepted"].size:
            out["acceptance_fraction"] = float(stats["accepted"].mean())
        if "num_steps" in stats and stats["num_steps"].size:
            out["median_steps_per_draw"] = float(np.median(stats["num_steps"]))
            out["mean_tree_depth"] = float(stats["tree_depth"].mean())
            out["step_size"] = float(stats["step_size"][:, -1].mean())
            out["divergences"] = int(stats["diverging"].sum())
        warm = self.stats["warmup"]
        if "diverging" in warm and warm["diverging"].size:
            out["warmup_divergences"] = int(warm["diverging"].sum())
        return out

    def summary_table(self, truths: dict | None = None) -> str:
        """Plain-text table: median, 16th/84th percentile offsets, ESS, R-hat
        (and the true value where ``truths`` gives one)."""
        p16, p50, p84 = self.percentiles()
        diag = self.diagnostics()
        head = f"{'parameter':<10} {'unit':<7} {'median':>12} {'-':>10} {'+':>10}"
        head += f" {'ESS':>7} {'R-hat':>6}"
        if truths:
            head += f" {'truth':>12} {'(t-m)/sd':>9}"
        lines = [head, "-" * len(head)]
        for i, name in enumerate(self.names):
            unit = PARAMETERS[name].unit if name in PARAMETERS else ""
            row = (f"{name:<10} {unit:<7} {p50[i]:>12.5g} {p50[i] - p16[i]:>10.3g} "
                   f"{p84[i] - p50[i]:>10.3g} {diag[name]['ess']:>7.0f} "
                   f"{diag[name]['r_hat']:>6.3f}")
            if truths:
                t = truths.get(name)
                if t is None:
                    row += f" {'':>12} {'':>9}"
                else:
                    sd = 0.5 * (p84[i] - p16[i])
                    z = (p50[i] - t) / sd if sd > 0 else math.nan
                    row += f" {t:>12.5g} {z:>9.2f}"
            lines.append(row)
        return "\n".join(lines)

    # -- emcee compatibility --------------------------------------------------

    def get_chain(self, discard: int = 0, flat: bool = False, thin: int = 1):
        """emcee-style chain ``(nsteps, nchains, ndim)`` with warmup first."""
        full = np.concatenate([self.chains["warmup"], self.chains["sampling"]], axis=1)
        chain = np.swapaxes(full, 0, 1)[discard::thin]
        return chain.reshape(-1, chain.shape[-1]) if flat else chain

    @property
    def lnprobability(self) -> np.ndarray:
        """emcee-style ``(nsteps, nchains)`` log-probability, warmup first."""
        lp = self.log_prob
        return np.concatenate([lp["warmup"], lp["sampling"]], axis=1).T

    # -- Saving ------------------------------------------------------------------

    def save(self, path) -> None:
        """Write everything to one ``.npz`` file (load it with :meth:`load`)."""
        arrays = {}
        for phase in PHASES:
            arrays[f"chain_{phase}"] = self.chains[phase]
            arrays[f"logp_{phase}"] = self.log_prob[phase]
            for key, value in self.stats[phase].items():
                arrays[f"stat_{phase}_{key}"] = value
        for key, value in self.sampler_state.items():
            arrays[f"state_{key}"] = np.asarray(value)
        user_mask = self.settings.get("user_mask")
        if user_mask is not None:
            arrays["user_mask"] = np.asarray(user_mask)
        meta = {"names": list(self.names), "backend": self.backend,
                "nchains": self.nchains, "stopped": self.stopped,
                "n_warmup_target": self.n_warmup_target,
                "n_samples_target": self.n_samples_target,
                "settings": {k: v for k, v in self.settings.items() if k != "user_mask"}}
        arrays["meta"] = np.asarray(json.dumps(meta, default=_json_default))
        np.savez_compressed(path, **arrays)

    @classmethod
    def load(cls, path) -> "FitResult":
        with np.load(path, allow_pickle=False) as f:
            meta = json.loads(str(f["meta"]))
            settings = meta["settings"]
            if "user_mask" in f.files:
                settings["user_mask"] = f["user_mask"]
            result = cls(meta["names"], meta["backend"], meta["nchains"], settings)
            result.stopped = meta["stopped"]
            result.n_warmup_target = meta["n_warmup_target"]
            result.n_samples_target = meta["n_samples_target"]
            for phase in PHASES:
                result._chains[phase] = [f[f"chain_{phase}"]]
                result._log_prob[phase] = [f[f"logp_{phase}"]]
                prefix = f"stat_{phase}_"
                result._stats[phase] = {k[len(prefix):]: [f[k]] for k in f.files
                                        if k.startswith(prefix)}
            result.sampler_state = {k[6:]: f[k] for k in f.files if k.startswith("state_")}
        return result

    def __eq__(self, other) -> bool:
        if not isinstance(other, FitResult):
            return NotImplemented
        if (self.names, self.backend, self.nchains, self.stopped) != (
                other.names, other.backend, other.nchains, other.stopped):
            return False
        for phase in PHASES:
            if not np.array_equal(self.chains[phase], other.chains[phase]):
                return False
            if not np.array_equal(self.log_prob[phase], other.log_prob[phase]):
                return False
            a, b = self.stats[phase], other.stats[phase]
            if a.keys() != b.keys() or any(not np.array_equal(a[k], b[k]) for k in a):
                return False
        return True

    def __repr__(self) -> str:
        return (f"FitResult({self.backend}, {self.nchains} chains, "
                f"{self.n_draws('warmup')} warmup + {self.n_draws('sampling')} draws, "
                f"free: {', '.join(self.names)}{', stopped' if self.stopped else ''})")


def _integrated_time(x) -> float:
    """emcee's integrated autocorrelation time of ``x`` (walkers, steps),
    without its log message about short chains (the ESS says it already)."""
    import logging

    import emcee

    logger = logging.getLogger("emcee.autocorr")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        return float(emcee.autocorr.integrated_time(x.T[:, :, None], quiet=True)[0])
    finally:
        logger.setLevel(level)


def _json_default(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} in a result file")
