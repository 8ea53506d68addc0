"""The result of a fit: chains, log-probabilities, sampler statistics,
summaries and diagnostics; saved to and loaded from one ``.npz`` file."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
import threading

import numpy as np

from ..atomic import write_atomic
from ..formatting import plural
from ..parameters import PARAMETERS
from . import diagnostics as D
from .backends import get_backend
from .result_file import FORMAT, PHASES, ResultFileError, read_result_file
from .samplers import Chunk, RunInfo
from .sandwich import Sandwich, sandwich_line

__all__ = ["FORMAT", "PHASES", "FitResult", "ResultFileError", "result_path"]


class FitResult:
    """Everything a run produced, growing chunk by chunk while it runs.

    It is itself a streaming callback: ``result(chunk, info)`` appends a chunk.

    Attributes:
        names: free parameters, in ``p0`` order.
        backend: the backend's name (``'emcee'``, ``'numpyro'``, ``'zeus'``).
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
            draws = np.asarray(chunk.draws, dtype=float)
            log_prob = np.asarray(chunk.log_prob, dtype=float)
            stats = {k: np.asarray(v) for k, v in chunk.stats.items()}
            lists = [self._chains[chunk.phase], self._log_prob[chunk.phase]]
            lists += [self._stats[chunk.phase].setdefault(k, []) for k in stats]
            lengths = [len(x) for x in lists]
            try:
                for target, value in zip(lists, [draws, log_prob, *stats.values()]):
                    target.append(value)
            except BaseException:
                # All or nothing, even if interrupted half way.
                for target, n in zip(lists, lengths):
                    del target[n:]
                raise

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
        """Post-warmup draws of all chains, flat: ``(nchains * n, ndim)``, in
        the order astro-eddy returns them, ``get_chain(discard=nburnin,
        flat=True)``: emcee's step-major order (all walkers of the first
        step, then of the second, ...), and numpyro's chain-major one (as
        ``MCMC.get_samples()``); for zeus ``fit_map``'s returns reorder them
        walker-major, as zeus flattens its chain. PA is wrapped into [0, 360)
        as astro-eddy does."""
        flat = self.raw_samples
        adjustment = self.sandwich
        if adjustment is not None:
            flat = adjustment.apply(flat, self.names)
        for i, name in enumerate(self.names):
            if name in D.CIRCULAR:
                flat[:, i] %= 360.0
        return flat

    @property
    def raw_samples(self) -> np.ndarray:
        """Post-warmup draws as the sampler made them, flat, in the order of
        :attr:`samples`, not moved by the sandwich adjustment nor wrapped."""
        return self.get_chain(discard=self.n_draws("warmup"), flat=True).copy()

    @property
    def sandwich(self):
        """The run's block sandwich adjustment
        (:class:`~eddy_widgets.inference.sandwich.Sandwich`; ``noise=
        'correlated'`` fits), or None: :attr:`samples` are the draws it moved."""
        found = (self.settings.get("noise") or {}).get("sandwich")
        if not found or "omega" not in found:
            return None
        return Sandwich.from_json(found)

    def percentiles(self, q=(16, 50, 84)) -> np.ndarray:
        """``(len(q), ndim)`` percentiles of the samples (astro-eddy's layout).

        Angles (PA) are summarised on the circle: the median is wrapped into
        [0, 360) and the other percentiles keep their offsets from it, so a
        posterior that straddles 0/360 gives e.g. 0.5 -1.0/+1.0, not
        1.4 +358/-1.0.
        """
        samples = self.samples
        if samples.shape[0] == 0:
            raise ValueError("The run has no post-warmup draws yet.")
        out = np.percentile(samples, q, axis=0)
        for i, name in enumerate(self.names):
            if name in D.CIRCULAR:
                out[:, i] = D.circular_percentiles(samples[:, i], q)
        return out

    def medians(self) -> dict:
        return dict(zip(self.names, self.percentiles([50])[0]))

    def diagnostics(self) -> dict:
        """Per-parameter diagnostics that fit the sampler (see
        :mod:`eddy_widgets.inference.diagnostics`): emcee ``tau``, ``n_tau``,
        ``ess`` from the autocorrelation time; NUTS rank-normalised ``r_hat``
        and ``ess_bulk`` / ``ess_tail`` (ArviZ). ``ess`` is always the
        effective sample size used for the verdict."""
        return D.chain_diagnostics(self.chains["sampling"], self.names,
                                   self.backend_spec)

    @property
    def backend_spec(self):
        """The run's :class:`~eddy_widgets.inference.backends.Backend`."""
        return get_backend(self.backend)

    @property
    def warnings(self) -> list[str]:
        """Every problem found with this fit, each a sentence that says what to
        do; empty on a good fit."""
        return self._verdict()[1]

    @property
    def converged(self) -> bool:
        """Whether the chains pass every convergence check of their sampler."""
        return self._verdict()[0]

    def _verdict(self) -> tuple[bool, list[str]]:
        """:func:`~eddy_widgets.inference.diagnostics.verdict`, computed once
        for the draws and settings the result holds now."""
        with self._lock:
            key = (self.n_draws("warmup"), self.n_draws("sampling"), self.stopped,
                   json.dumps({k: self.settings.get(k) for k in (
                       "fit_quality", "optimizer", "priors", "options")},
                       default=_json_default, sort_keys=True))
            cached = getattr(self, "_verdict_cache", None)
            if cached is None or cached[0] != key:
                self._verdict_cache = (key, D.verdict(self))
            converged, notes = self._verdict_cache[1]
            return converged, list(notes)

    def verdict_text(self) -> str:
        """The verdict in words: one line, then one line per warning."""
        converged, notes = self._verdict()
        return "\n".join([D.headline(converged, notes), *(f"  - {n}" for n in notes)])

    def sampler_summary(self) -> dict:
        """Run-level statistics: acceptance, step size, tree depth, divergences
        (after warmup), draws at the tree-depth cap, reduced chi-squared."""
        stats = self.stats["sampling"]
        out = {"backend": self.backend, "nchains": self.nchains,
               "warmup": self.n_draws("warmup"), "samples": self.n_draws("sampling")}
        out.update(self.backend_spec.summary(stats, self.settings))
        warm = self.stats["warmup"]
        if "diverging" in warm and warm["diverging"].size:
            out["warmup_divergences"] = int(warm["diverging"].sum())
        chi2 = (self.settings.get("fit_quality") or {}).get("reduced_chi2")
        if chi2 is not None:
            out["reduced_chi2"] = float(chi2)
        return out

    def summary_table(self, truths: dict | None = None, verdict: bool = True) -> str:
        """Plain-text table: median, 16th/84th percentile offsets, the
        sampler's diagnostics (emcee: ESS and chain length in tau; NUTS: bulk
        and tail ESS and R-hat), the true value and the pull where ``truths``
        gives one; then the verdict."""
        p16, p50, p84 = self.percentiles()
        diag = self.diagnostics()
        emcee = self.backend_spec.ensemble
        head = f"{'parameter':<10} {'unit':<7} {'median':>12} {'-':>10} {'+':>10}"
        head += (f" {'ESS':>7} {'n/tau':>6}" if emcee else
                 f" {'ESS_bulk':>8} {'ESS_tail':>8} {'R-hat':>6}")
        if truths:
            head += f" {'truth':>12} {'(med-true)/sd':>13}"
        lines = [head, "-" * len(head)]
        for i, name in enumerate(self.names):
            unit = PARAMETERS[name].unit if name in PARAMETERS else ""
            d = diag[name]
            row = (f"{name:<10} {unit:<7} {p50[i]:>12.5g} {p50[i] - p16[i]:>10.3g} "
                   f"{p84[i] - p50[i]:>10.3g}")
            row += (f" {d['ess']:>7.0f} {d['n_tau']:>6.0f}" if emcee else
                    f" {d['ess_bulk']:>8.0f} {d['ess_tail']:>8.0f} {d['r_hat']:>6.3f}")
            if truths:
                t = truths.get(name)
                if t is None:
                    row += f" {'':>12} {'':>13}"
                else:
                    sd = 0.5 * (p84[i] - p16[i])
                    diff = p50[i] - t
                    if name in D.CIRCULAR:
                        diff = (diff + 180.0) % 360.0 - 180.0
                    z = diff / sd if sd > 0 else math.nan
                    row += f" {t:>12.5g} {z:>13.2f}"
            lines.append(row)
        if emcee:
            lines.append("ESS = nwalkers x nsteps / tau (emcee's integrated "
                         "autocorrelation time); n/tau = chain length in tau.")
        else:
            lines.append("ESS_bulk, ESS_tail and rank-normalised split R-hat "
                         "from ArviZ.")
        adjustment = self.sandwich
        noise = self.settings.get("noise") or {}
        if adjustment is not None:
            lines.append(sandwich_line(adjustment))
        elif noise.get("sandwich"):
            lines.append("The intervals are NOT widened for the noise's correlation "
                         "on large scales (" + noise["sandwich"]["error"] + "): read "
                         "them as ~2x too narrow.")
        elif noise:
            lines.append("The intervals are not yet widened for the noise's "
                         "correlation on large scales (that is done when the run "
                         "ends): read them as ~2x too narrow.")
        if truths:
            lines.append("(med-true)/sd: how many posterior widths the median "
                         "lies above the true value.")
        if verdict:
            lines += ["", self.verdict_text()]
        return "\n".join(lines)

    # -- emcee compatibility --------------------------------------------------

    def get_chain(self, discard: int = 0, flat: bool = False, thin: int = 1):
        """The chain, warmup first, laid out as the sampler object astro-eddy
        returns lays it out: for emcee, ``(nsteps, nwalkers, ndim)`` as
        ``emcee.EnsembleSampler.get_chain`` (flat: step-major); for numpyro,
        ``(nchains, ndraws, ndim)`` as astro-eddy's NUTS adapter (flat:
        chain-major, the order of numpyro's ``MCMC.get_samples()``), with the
        real warmup draws where astro-eddy has NaN."""
        full = np.concatenate([self.chains["warmup"], self.chains["sampling"]], axis=1)
        if self.backend_spec.ensemble:
            chain = np.swapaxes(full, 0, 1)[discard::thin]
        else:
            chain = full[:, discard::thin]
        return chain.reshape(-1, chain.shape[-1]) if flat else chain

    @property
    def lnprobability(self) -> np.ndarray:
        """emcee-style ``(nsteps, nchains)`` log-probability, warmup first."""
        lp = self.log_prob
        return np.concatenate([lp["warmup"], lp["sampling"]], axis=1).T

    # -- ArviZ ---------------------------------------------------------------------

    def to_arviz(self, warmup: bool = True):
        """The chains as an ArviZ ``InferenceData``.

        Groups: ``posterior`` (one variable per free parameter, dims
        ``(chain, draw)``, its unit in ``attrs['units']``), ``sample_stats``
        (``lp``: the log-posterior; NUTS: ``diverging``, ``tree_depth``,
        ``step_size``, ``acceptance_rate``, ``n_steps``, numpyro's and Stan's
        names as ArviZ uses them; emcee: ``accepted``, whether each walker's
        move was accepted) and, with ``warmup=True`` and warmup draws kept,
        ``warmup_posterior`` and ``warmup_sample_stats``. Angles (PA) are on
        the branch of their circular median (median in [0, 360)), so the
        numbers of ``az.summary`` match :meth:`percentiles`.

        emcee's walkers are the ``chain`` dimension (as ``az.from_emcee``),
        but they are not independent chains: each move uses the other
        walkers. ``az.summary``'s ``r_hat``, ``ess_bulk`` and ``ess_tail``
        treat them as if they were, which is not valid; the verdict
        (:attr:`converged`, :meth:`diagnostics`) uses emcee's
        autocorrelation time instead. ``posterior.attrs`` say so
        (``chain_dimension``, ``diagnostics_note``). For NUTS the chains are
        independent and ArviZ's diagnostics are the package's own.

        Args:
            warmup: include the warmup (burn-in) draws as warmup groups.

        Returns:
            ``arviz.InferenceData``.

        Raises:
            ValueError: the run has no post-warmup draws yet.
        """
        az = D._arviz()
        if self.n_draws("sampling") == 0:
            raise ValueError("The run has no post-warmup draws yet: nothing to put "
                             "in an ArviZ posterior.")
        chains = self.chains
        centres = {}
        for i, name in enumerate(self.names):
            if name in D.CIRCULAR:
                centres[i] = D.circular_percentiles(
                    chains["sampling"][:, :, i].ravel(), [50])[0]

        def variables(chain):
            out = {}
            for i, name in enumerate(self.names):
                x = chain[:, :, i]
                if i in centres:
                    x = centres[i] + (x - centres[i] + 180.0) % 360.0 - 180.0
                out[name] = x
            return out

        renamed = {"accept_prob": "acceptance_rate", "num_steps": "n_steps"}

        def sample_stats(phase):
            out = {"lp": self.log_prob[phase]}
            for key, value in self.stats[phase].items():
                out[renamed.get(key, key)] = value
            return out

        groups = {"posterior": variables(chains["sampling"]),
                  "sample_stats": sample_stats("sampling")}
        if warmup and self.n_draws("warmup"):
            groups["warmup_posterior"] = variables(chains["warmup"])
            groups["warmup_sample_stats"] = sample_stats("warmup")
        ensemble = self.backend_spec.ensemble
        attrs = {"inference_library": self.backend,
                 "chain_dimension": (f"{self.backend} walker" if ensemble
                                     else "independent chain")}
        if ensemble:
            attrs["diagnostics_note"] = (
                f"{self.backend} walkers are not independent chains: r_hat and ess "
                f"from ArviZ are not valid for them; use FitResult.diagnostics() (ESS "
                f"from emcee's autocorrelation time) and FitResult.converged.")
        idata = az.from_dict(**groups, save_warmup=bool(warmup), attrs=dict(attrs),
                             posterior_attrs=dict(attrs), sample_stats_attrs=dict(attrs))
        for group in ("posterior", "warmup_posterior"):
            if group in idata.groups():
                for name in self.names:
                    unit = PARAMETERS[name].unit if name in PARAMETERS else ""
                    idata[group][name].attrs["units"] = unit
        return idata

    # -- Saving ------------------------------------------------------------------

    def save(self, path) -> Path:
        """Write everything to one ``.npz`` file (load it with :meth:`load`).

        ``.npz`` is added to a path without it, as :meth:`load` expects. The
        file is written next to its destination and renamed over it only
        when complete, so a failed save (a full disk, a kill) leaves any
        earlier file whole. Returns the path written.
        """
        path = result_path(path)
        with self._lock:
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
            meta = {"format": FORMAT, "names": list(self.names),
                    "backend": self.backend, "nchains": self.nchains,
                    "stopped": self.stopped,
                    "n_warmup_target": self.n_warmup_target,
                    "n_samples_target": self.n_samples_target,
                    "settings": {k: v for k, v in self.settings.items()
                                 if k != "user_mask"}}
            arrays["meta"] = np.asarray(json.dumps(meta, default=_json_default))
        return write_atomic(path, lambda fh: np.savez_compressed(fh, **arrays))

    @classmethod
    def load(cls, path) -> "FitResult":
        """Read a file written by :meth:`save` (``.npz`` may be left out).

        Raises ``FileNotFoundError`` for a missing file and
        :class:`ResultFileError`, naming the file and the field at fault, for
        a corrupt, truncated, inconsistent or tampered one: sizes and the
        schema are checked before any array is inflated, and nothing in the
        file is ever unpickled (see :mod:`eddy_widgets.inference.result_file`).
        """
        path = Path(path)
        if not path.exists() and path.suffix != ".npz" and result_path(path).exists():
            path = result_path(path)
        if not path.exists():
            raise FileNotFoundError(missing_result_message(path))
        meta, data = read_result_file(path)
        return cls._from_arrays(meta, data)

    @classmethod
    def _from_arrays(cls, meta: dict, data: dict) -> "FitResult":
        """The result of checked metadata and arrays (:func:`read_result_file`)."""
        settings = dict(meta["settings"])
        if "user_mask" in data:
            settings["user_mask"] = data["user_mask"]
        result = cls(meta["names"], meta["backend"], meta["nchains"], settings)
        result.stopped = meta["stopped"]
        result.n_warmup_target = meta["n_warmup_target"]
        result.n_samples_target = meta["n_samples_target"]
        for phase in PHASES:
            result._chains[phase] = [data[f"chain_{phase}"]]
            result._log_prob[phase] = [data[f"logp_{phase}"]]
            prefix = f"stat_{phase}_"
            result._stats[phase] = {k[len(prefix):]: [v] for k, v in data.items()
                                    if k.startswith(prefix)}
        result.sampler_state = {k[len("state_"):]: v for k, v in data.items()
                                if k.startswith("state_")}
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
        return (f"FitResult({self.backend}, {plural(self.nchains, 'chain')}, "
                f"{self.n_draws('warmup')} warmup + {self.n_draws('sampling')} draws, "
                f"free: {', '.join(self.names)}{', stopped' if self.stopped else ''})")


def missing_result_message(path) -> str:
    """Why ``path`` cannot be loaded, with what would help: the absolute
    path, the working directory and the result files near it."""
    path = Path(path)
    full = Path(os.path.abspath(path))
    tried = full if full.suffix == ".npz" else f"{full} (nor {result_path(full)})"
    folder = full.parent
    if folder.is_dir():
        near = sorted(p.name for p in folder.glob("*.npz") if not p.name.startswith("."))
        found = (f" Result files in {folder}: {', '.join(near[-8:])}"
                 f"{' (the last 8 of ' + str(len(near)) + ')' if len(near) > 8 else ''}."
                 if near else f" {folder} holds no .npz file.")
    else:
        found = f" There is no folder {folder}."
    return (f"No result file {tried}; the working directory is {os.getcwd()}."
            f"{found}")


def result_path(path) -> Path:
    """``path`` with ``.npz`` added if it has another or no suffix (as
    ``numpy.savez`` would), so ``save('fit')`` and ``load('fit')`` agree."""
    path = Path(path)
    return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")


def _json_default(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} in a result file")
