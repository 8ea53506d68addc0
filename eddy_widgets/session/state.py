"""The set-up half of :class:`~eddy_widgets.session.FitSession`: which
parameters are free, their values and priors, the mask radii, the backend with
its counts, and the checks that run on every change.
"""

from __future__ import annotations

from contextlib import contextmanager
import math

from traitlets import (
    Any,
    Bool,
    Dict,
    HasTraits,
    Int,
    List,
    TraitError,
    Unicode,
    observe,
)
from traitlets import validate as validate_trait

from ..inference.backends import BACKENDS, COUNT_ARGS, check_count
from ..inference.noise import NOISE_MODELS
from ..inference.priors import Prior, PriorError
from ..inference.spec import FitInputError, FitSpec, check_radii
from ..parameters import MASK_SETTINGS, NOISE_PARAMETERS, PARAMETERS
from .settings import (
    BackendOptions,
    NumberOrText,
    ParameterSetting,
    SetupError,
    as_float,
    format_number,
    make_options,
)

#: Parameters free in a new session (the others are fixed at the table default).
DEFAULT_FREE = ("x0", "y0", "PA", "mstar", "vlsr")

#: The noise kernel's parameters: estimated from the residuals at the
#: optimised start when left empty (``None``), or fixed to a number; never
#: free (:func:`~eddy_widgets.inference.spec.with_noise`).
ESTIMATED_NOISE = ("noise_nugget", "noise_width")

#: Finite upper bounds known to be sensible where the table's prior is
#: unbounded (astro-eddy's numpyro tutorial: r_taper beyond the field of view
#: is irrelevant, so 50 arcsec is generous).
SUGGESTED_UPPER = {"r_taper": 50.0}


class SetupState(HasTraits):
    """The fit set-up as traits, checked on every change (``issues``,
    ``prior_warnings``, ``valid``); see :class:`~eddy_widgets.session.FitSession`.

    Its checks build the ``fit_map`` arguments with ``_build_kwargs`` of
    :class:`~eddy_widgets.session.script.FitMapCall`, the other half of the
    session's set-up.
    """

    cube = Any(None, help="the rotationmap to fit (needs .prepare_fit, .set_prior)")
    free_order = List(Unicode())
    r_min = NumberOrText()
    r_max = NumberOrText()
    mcmc = Unicode("emcee", help="a backend's name (the registered backends of "
                                 "eddy_widgets.inference.backends)")
    nwalkers = Int(BACKENDS["emcee"].count_defaults["nwalkers"])
    nburnin = Int(BACKENDS["emcee"].count_defaults["nburnin"])
    nsteps = Int(BACKENDS["emcee"].count_defaults["nsteps"])
    optimize = Bool(True)
    extra_params = Dict(help="other mask settings of params (phi_min, beam, ...), "
                             "passed through")

    issues = Dict(read_only=True)
    prior_warnings = Dict(read_only=True)
    valid = Bool(True, read_only=True)

    @validate_trait("mcmc")
    def _known_backend(self, proposal):
        name = proposal["value"]
        if name not in BACKENDS or name not in self.options:
            raise TraitError(f"Unknown mcmc backend {name!r}: choose one of "
                             f"{', '.join(repr(k) for k in self.options)}.")
        return name

    def _init_setup(self) -> None:
        """The rows and options (before the traits are set)."""
        self.parameters: dict[str, ParameterSetting] = {
            name: ParameterSetting(name) for name in PARAMETERS}
        self.options: dict[str, BackendOptions] = {
            name: make_options(name) for name in BACKENDS}
        self._batching = 0
        self._listed_params: set[str] = set()
        self._listed_options: dict[str, set] = {name: set() for name in BACKENDS}
        self._mask_in_params: set[str] = set()
        #: The counts typed for each backend ({backend: {fit_map name: n}}):
        #: the selected backend's are the traits, the others wait here.
        self._counts: dict[str, dict] = {name: dict(spec.count_defaults)
                                         for name, spec in BACKENDS.items()}

    def _watch_setup(self, cube, free) -> None:
        """Check the set-up on every change, and free the ``free`` rows
        (``vlsr`` starting at the cube's systemic velocity)."""
        for row in self.parameters.values():
            row.observe(self._row_changed)
        for opts in self.options.values():
            opts.observe(self._setup_changed)
        with self._batch():
            for name in free:
                self.parameters[name].free = True
            if cube is not None and "vlsr" in free:
                try:
                    self.parameters["vlsr"].value = round(float(cube.vlsr), 1)
                except Exception:  # noqa: BLE001 - a cube without data keeps the default
                    pass

    def priors(self) -> dict:
        """``{name: Prior}`` of the free parameters (raises
        :class:`SetupError` if a free row's prior is invalid)."""
        out, issues = {}, {}
        for name in self.free_order:
            try:
                out[name] = self.parameters[name].prior()
            except PriorError as exc:
                issues[name] = str(exc)
        if issues:
            raise SetupError(issues)
        return out

    # -- Editing helpers -------------------------------------------------------

    def set_parameter(self, name: str, value=None, free: bool | None = None,
                      prior: Prior | tuple | None = None) -> None:
        """Set one row: ``value``, ``free``, ``prior`` as a :class:`Prior` or
        ``(kind, a, b)``."""
        row = self.parameters[name]
        with self._batch():
            if free is not None:
                row.free = free
            if value is not None:
                row.value = value
            if prior is not None:
                if isinstance(prior, Prior):
                    row.set_prior(prior)
                else:
                    kind, a, b = prior
                    row.prior_kind, row.prior_a, row.prior_b = kind, a, b

    def set_mask_setting(self, name: str, value) -> None:
        """Set one of the other mask settings of ``params`` (``phi_min``,
        ``phi_max`` [deg], ``exclude_phi``, ...; see ``MASK_SETTINGS``) in
        :attr:`extra_params`; ``None`` removes it (the default applies).
        ``'noise'`` goes through :meth:`set_noise`."""
        if name not in MASK_SETTINGS or name in ("r_min", "r_max"):
            raise ValueError(f"{name!r} is not a mask setting of extra_params; "
                             f"r_min and r_max are session.r_min / session.r_max.")
        if name == "noise":
            self.set_noise(MASK_SETTINGS["noise"] if value is None else value)
            return
        extra = dict(self.extra_params)
        if value is None:
            extra.pop(name, None)
        else:
            extra[name] = value
        if extra != self.extra_params:
            self.extra_params = extra

    @property
    def noise(self) -> str:
        """The likelihood's noise model, ``params['noise']``: ``'independent'``
        (astro-eddy's, the default) or ``'correlated'`` (over the beam)."""
        return self.extra_params.get("noise", MASK_SETTINGS["noise"])

    def set_noise(self, model: str) -> None:
        """Choose the noise model, as ``fit_map(..., noise=model)`` would.

        ``'correlated'`` frees ``noise_scale`` (start 1), as ``fit_map`` does
        when ``params`` does not give it, unless it was given a fixed value;
        ``'independent'`` (stored as no ``'noise'`` key: the default) unticks
        the noise rows, which it does not use. ``noise_clip`` and fixed
        values of the noise rows are kept for a later switch back."""
        extra = dict(self.extra_params)
        if model == MASK_SETTINGS["noise"]:
            extra.pop("noise", None)
        else:
            extra["noise"] = model
        with self._batch():
            if model == "correlated":
                scale = self.parameters["noise_scale"]
                if not scale.free and "noise_scale" not in self._listed_params:
                    scale.free = True
            elif model == "independent":
                for name in NOISE_PARAMETERS:
                    self.parameters[name].free = False
            if extra != self.extra_params:
                self.extra_params = extra

    def suggested_bounds(self, name: str) -> tuple[float, float]:
        """Finite ``(low, high)`` replacing the infinite bound(s) of a flat prior:
        :data:`SUGGESTED_UPPER` where known, else ten times the start value
        (at least 1 away from the other bound)."""
        row = self.parameters[name]
        low, high = as_float(row.prior_a), as_float(row.prior_b)
        value = as_float(row.value)
        scale = max(abs(value) if value is not None and math.isfinite(value) else 0.0,
                    abs(low) if low is not None and math.isfinite(low) else 0.0,
                    abs(high) if high is not None and math.isfinite(high) else 0.0,
                    1.0)
        if high is None or math.isinf(high):
            high = SUGGESTED_UPPER.get(name, 10.0 * scale)
            if value is not None and math.isfinite(value) and high <= value:
                high = 10.0 * scale
        if low is None or math.isinf(low):
            low = -10.0 * scale
        return low, high

    def bound_prior(self, name: str) -> None:
        """Give an unbounded flat prior the :meth:`suggested_bounds`."""
        low, high = self.suggested_bounds(name)
        row = self.parameters[name]
        with self._batch():
            row.prior_a, row.prior_b = low, high

    # -- Counts per backend ----------------------------------------------------

    def counts_of(self, backend: str) -> dict:
        """``{nwalkers, nburnin, nsteps}`` of ``backend``: the traits for the
        selected one, else what was last set for it (default: the backend
        table's ``count_defaults``)."""
        if backend == self.mcmc:
            return {arg: getattr(self, arg) for arg in COUNT_ARGS}
        return dict(self._counts[backend])

    def use_count_defaults(self, table: dict, keep=()) -> None:
        """Start the backends of ``table`` (``{backend: {nwalkers, nburnin,
        nsteps}}``, e.g. the dashboard's
        :data:`~eddy_widgets.data.example.RUN_DEFAULTS`) at its counts
        instead of ``fit_map``'s, except those in ``keep`` (the backend whose
        counts a loaded ``fit_map`` call gave). The selected backend's counts
        change now, the others' when it is chosen."""
        with self._batch():
            for backend, counts in table.items():
                if backend in keep or backend not in self._counts:
                    continue
                if backend == self.mcmc:
                    for arg in COUNT_ARGS:
                        setattr(self, arg, int(counts[arg]))
                else:
                    self._counts[backend] = {arg: int(counts[arg]) for arg in COUNT_ARGS}

    @observe("mcmc")
    def _swap_counts(self, change) -> None:
        """Keep the counts of the backend left, show those of the one chosen
        (32 emcee walkers do not become 32 NUTS chains)."""
        if change.old in self._counts:
            self._counts[change.old] = {arg: getattr(self, arg) for arg in COUNT_ARGS}
        with self._batch():
            for arg, value in self._counts[change.new].items():
                setattr(self, arg, value)

    def chain_warning(self) -> str:
        """A sentence when NUTS chains would run one after another
        (``chain_method='sequential'``, or ``'parallel'`` with more chains than
        JAX devices: CPU cores, or GPUs), saying how much longer the run takes;
        ``''`` otherwise."""
        import jax

        n = self.nwalkers
        if "chain_method" not in BACKENDS[self.mcmc].options or n < 2:
            return ""
        method = self.options[self.mcmc].chain_method
        if method == "sequential":
            why = "chain_method 'sequential' runs them one after another"
        elif method == "parallel" and n > jax.local_device_count():
            devices = jax.local_device_count()
            kind = "CPU cores" if jax.default_backend() == "cpu" else "devices"
            why = (f"'parallel' needs one device per chain and JAX sees {devices} "
                   f"{kind}, so they run one after another")
        else:
            return ""
        return (f"{n} NUTS chains: {why}, so the run takes about {n} times as long "
                f"as one chain.")

    # -- Checks ----------------------------------------------------------------

    def validate(self) -> dict:
        """``{name: message}`` of everything that blocks a run: rows (start
        value not a number, prior bounds, start outside the prior), counts,
        the mask radii and model combinations."""
        issues: dict = {}
        nfree = len(self.free_order)
        for name, row in self.parameters.items():
            if name in NOISE_PARAMETERS and self.noise != "correlated" \
                    and not row.free:
                continue        # not used: whatever it holds blocks nothing
            message = self._row_issue(row)
            if message:
                issues[name] = message
        # The noise rows' own rules say more than a row's (a free nugget's
        # "start value is empty": it is never free).
        issues.update(self._noise_issues())
        if nfree == 0:
            issues["free"] = "no free parameter: tick at least one 'free' box"
        radii = {}
        for key in ("r_min", "r_max"):
            raw = getattr(self, key)
            radii[key] = None if raw is None else as_float(raw)
            if raw is not None and radii[key] is None:
                issues[key] = f"{key} is not a number ({raw!r})"
        # The engine's own rules and words (fit_map, the CLI and fit_many
        # say the same).
        try:
            check_radii(radii["r_min"], radii["r_max"])
        except ValueError as exc:
            issues.setdefault("r_max", str(exc))
        backend = BACKENDS[self.mcmc]
        for arg in COUNT_ARGS:
            try:
                check_count(backend, arg, getattr(self, arg), nfree or None)
            except FitInputError as exc:
                issues[arg] = str(exc)
        if not issues:
            try:
                kwargs = self._build_kwargs()
                params = dict(kwargs["params"])
                for key in ("r_min", "r_max"):
                    if kwargs[key] is not None:
                        params[key] = kwargs[key]
                FitSpec.parse(params, kwargs["p0"])
            except (ValueError, TypeError) as exc:
                issues["model"] = str(exc)
        return issues

    def _noise_issues(self) -> dict:
        """``{name: message}`` of the noise set-up, in the words of the row
        or field they belong to (``spec._check_noise``'s rules, and the
        kernel's ranges that the engine checks only once the run starts)."""
        noise = self.noise
        if noise not in NOISE_MODELS:
            return {"noise": f"noise = {noise!r} is not a noise model: choose "
                             f"'independent' or 'correlated'"}
        issues = {}
        for name in NOISE_PARAMETERS:
            row = self.parameters[name]
            if noise != "correlated":
                if row.free:
                    issues[name] = (f"{name} belongs to the correlated noise model: "
                                    f"choose Noise: correlated, or untick free")
                continue
            if name in ESTIMATED_NOISE and row.free:
                issues[name] = ("estimated from the residuals at the optimised start "
                                "and fixed for the run, never free: untick free and "
                                "give a number, or leave it empty to estimate it")
                continue
            value = None if row.free else as_float(row.value)
            if value is None:
                continue
            if name == "noise_nugget" and not 0.0 < value <= 1.0:
                issues[name] = (f"noise_nugget must lie in (0, 1] (the uncorrelated "
                                f"share of the noise); got {format_number(value)}; "
                                f"empty: estimated")
            elif name == "noise_width" and not 0.0 < value < math.inf:
                issues[name] = (f"noise_width must be a positive number (in units "
                                f"of the beam); got {format_number(value)}; empty: "
                                f"estimated")
        if noise == "correlated":
            clip = self.extra_params.get("noise_clip", MASK_SETTINGS["noise_clip"])
            if clip is not None and (isinstance(clip, bool) or as_float(clip) is None
                                     or not as_float(clip) > 1.0):
                issues["noise_clip"] = (
                    f"noise_clip must be a number above 1 (pixels whose peak S/N, "
                    f"Fnu / dFnu, is below noise_clip are left out), or off; got "
                    f"{format_number(clip) if not isinstance(clip, bool) else clip}")
        return issues

    def _row_issue(self, row: ParameterSetting) -> str:
        if not row.free:
            if row.value is None:
                if row.parameter.default is not None:
                    return "needs a value (only optional components can be off)"
                return ""
            if as_float(row.value) is None:
                return f"fixed value is not a number ({row.value!r})"
            return ""
        value = as_float(row.value)
        problems = []
        if value is None:
            shown = "empty" if row.value is None else repr(row.value)
            problems.append(f"start value is not a number ({shown})")
        elif math.isinf(value):
            problems.append("start value must be finite")
        try:
            prior = row.prior()
        except PriorError as exc:
            problems.append(str(exc))
        else:
            if value is not None and math.isfinite(value) and not prior.contains(value):
                problems.append(f"start value {format_number(value)} is outside the "
                                f"prior {prior.describe()}")
        return "; ".join(problems)

    def unbounded_priors(self) -> dict:
        """``{name: message}`` of free parameters with an unbounded flat prior
        when the backend is NUTS (legal, but trees grow very long)."""
        if not BACKENDS[self.mcmc].unconstrained:
            return {}
        out = {}
        for name in self.free_order:
            row = self.parameters[name]
            if row.prior_kind != "flat":
                continue
            a, b = as_float(row.prior_a), as_float(row.prior_b)
            if a is None or b is None:
                continue
            if math.isinf(a) or math.isinf(b):
                low, high = self.suggested_bounds(name)
                out[name] = (f"NUTS with an unbounded flat prior "
                             f"[{format_number(a)}, {format_number(b)}] samples "
                             f"slowly: give it finite bounds such as "
                             f"[{format_number(low)}, {format_number(high)}]")
        return out

    def _row_changed(self, change) -> None:
        row = change.owner
        if change.name == "free":
            order = [n for n in self.free_order if n != row.name]
            if row.free:
                order.append(row.name)
            self.free_order = order
        elif change.name == "value" and not row.free:
            self._listed_params.add(row.name)
        self._revalidate()

    @observe("r_min", "r_max", "mcmc", "nwalkers", "nburnin", "nsteps", "free_order",
             "extra_params")
    def _setup_changed(self, change) -> None:
        self._revalidate()

    def _revalidate(self) -> None:
        if self._batching:
            return
        issues = self.validate()
        self.set_trait("issues", issues)
        self.set_trait("prior_warnings", self.unbounded_priors())
        self.set_trait("valid", not issues)

    @contextmanager
    def _batch(self):
        """Change many things, check once at the end."""
        self._batching += 1
        try:
            yield
        finally:
            self._batching -= 1
            if not self._batching:
                self._revalidate()
