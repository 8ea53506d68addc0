"""The fit set-up and the run of one fit, as one observable object.

:class:`FitSession` is the state the widgets observe (glue-jupyter's "state
apart from the view"): which parameters are free, their start or fixed values,
priors, the mask radii, the MCMC backend with its counts and options, and the
state of the run (status, error, the growing :class:`FitResult`). It converts
exactly to and from ``rotationmap.fit_map``'s arguments, writes a runnable
script, validates the set-up, and runs ``cube.prepare_fit`` /
``FitRun.run`` in a background thread.

It holds no physics and no sampler code: everything numerical happens in
:mod:`eddy_widgets.rotationmap` and :mod:`eddy_widgets.inference`.

Example::

    from eddy_widgets.session import FitSession
    session = FitSession.from_fit_kwargs(p0, params, priors=cube.priors,
                                         cube=cube, mcmc='numpyro', nwalkers=1)
    session.start()          # returns at once; the fit runs in a thread
    session.stop()           # keeps every draw made so far
    session.resume()         # continues where it stopped
    session.wait()           # blocks until the thread has finished
    print(session.result.verdict_text())   # converged? and what to do if not
    session.result.summary_table()

Every run writes a checkpoint (the result with the sampler's state) every
``checkpoint_interval`` seconds and when it stops or ends, by default to
``./eddy_widgets_checkpoints/<date>-<time>.npz``; ``session.checkpoint_file``
is the current run's. A run lost with its kernel goes on with
``session.continue_from(path)`` (or ``cube.continue_fit(result=FitResult.load(path))``).
"""

from __future__ import annotations

from contextlib import contextmanager
import datetime
import math
import os
from pathlib import Path
import threading

from traitlets import (Any, Bool, Dict, Enum, Float, HasTraits, Instance, Int, List,
                       TraitType, Unicode, default, observe)
from traitlets import validate as validate_trait

from .inference.backends import BACKENDS, CHAIN_METHODS, COUNT_ARGS, get_backend
from .inference.priors import PRIOR_KINDS, Prior, PriorError
from .inference.result import FitResult, result_path
from .inference.samplers import RunInfo, StopRequested
from .inference.spec import FitSpec, is_index
from .parameters import MASK_SETTINGS, PARAMETERS

__all__ = ["FitSession", "ParameterSetting", "BackendOptions", "SetupError",
           "DEFAULT_FREE", "EMCEE_MOVES", "STATUSES", "CHECKPOINT_FOLDER",
           "new_checkpoint_path", "format_number", "parse_number"]

#: Parameters free in a new session (the others are fixed at the table default).
DEFAULT_FREE = ("x0", "y0", "PA", "mstar", "vlsr")

#: Run states, in the order a run goes through them.
STATUSES = ("idle", "optimising", "running", "stopped", "done", "error")

#: Finite upper bounds known to be sensible where the table's prior is
#: unbounded (astro-eddy's numpyro tutorial: r_taper beyond the field of view
#: is irrelevant, so 50 arcsec is generous).
SUGGESTED_UPPER = {"r_taper": 50.0}

#: emcee moves offered by the backend selector, by name.
EMCEE_MOVES = ("stretch", "de", "de+snooker")

#: Folder of the checkpoints of runs started from a session (relative to the
#: working directory when the run starts).
CHECKPOINT_FOLDER = "eddy_widgets_checkpoints"

#: Checkpoint paths handed out in this process (two runs started within the
#: same second get different files).
_HANDED_OUT: set[str] = set()
_HANDED_OUT_LOCK = threading.Lock()


def new_checkpoint_path(folder=None, reserve: bool = True) -> str:
    """A checkpoint file for a new run, ``<folder>/<YYYYmmdd-HHMMSS>.npz``
    (default folder :data:`CHECKPOINT_FOLDER`), with ``-2``, ``-3``, ... added
    when that name is taken; ``reserve=False`` only shows what the name
    would be."""
    folder = Path(CHECKPOINT_FOLDER if folder is None else folder)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    with _HANDED_OUT_LOCK:
        n = 1
        while True:
            name = stamp if n == 1 else f"{stamp}-{n}"
            path = str(folder / f"{name}.npz")
            if path not in _HANDED_OUT and not os.path.exists(path):
                if reserve:
                    _HANDED_OUT.add(path)
                return path
            n += 1


#: fit_map arguments that do not belong to the set-up (accepted and ignored
#: when a script's call is loaded).
_FIT_MAP_ONLY = ("plots", "returns", "pool", "niter", "callbacks", "verbose")


class SetupError(ValueError):
    """The set-up has invalid entries; ``issues`` maps names to messages."""

    def __init__(self, issues: dict):
        self.issues = dict(issues)
        lines = "; ".join(f"{k}: {v}" for k, v in self.issues.items())
        super().__init__(f"The fit set-up is not valid: {lines}")


# ----------------------------------------------------------------------------
# Numbers typed by a person
# ----------------------------------------------------------------------------


def parse_number(text):
    """What a text field holds: ``None`` for an empty field (or 'none' /
    'off'), a float when the text is a number (``'inf'`` included), else the
    text itself, kept so that nothing typed is lost and it can be flagged."""
    if text is None:
        return None
    if not isinstance(text, str):
        return text
    s = text.strip()
    if s == "" or s.lower() in ("none", "off"):
        return None
    try:
        value = float(s)
    except ValueError:
        return text
    return text if math.isnan(value) else value


def format_number(value) -> str:
    """The text shown for a value: shortest exact repr, ``''`` for ``None``."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    s = repr(float(value))
    return s[:-2] if s.endswith(".0") else s


def as_float(value) -> float | None:
    """``value`` as a finite-or-infinite float, or ``None`` if it is not a number."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        value = parse_number(value)
        if not isinstance(value, float):
            return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(out) else out


class NumberOrText(TraitType):
    """A float, ``None``, or the text a person typed that is not a number.

    Ints and numpy scalars become floats (in ``params`` an int would mean a
    free parameter); NaN is kept as the text ``'nan'`` so that it is flagged.
    """

    default_value = None
    info_text = "a number, None, or text"

    def validate(self, obj, value):
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, bool):
            self.error(obj, value)
        try:
            out = float(value)
        except (TypeError, ValueError):
            self.error(obj, value)
        return "nan" if math.isnan(out) else out


# ----------------------------------------------------------------------------
# Pieces of the set-up
# ----------------------------------------------------------------------------


class ParameterSetting(HasTraits):
    """One row of the parameter table as the user set it.

    Attributes:
        name: parameter name (a key of :data:`~eddy_widgets.parameters.PARAMETERS`).
        free: whether it is fitted.
        value: start value (``p0``) if free, the fixed value otherwise, in the
            table's unit; ``None`` switches an optional component off.
        prior_kind: ``'flat'`` or ``'gaussian'``.
        prior_a, prior_b: low and high (flat) or mean and sigma (gaussian).
    """

    name = Unicode(read_only=True)
    free = Bool(False)
    value = NumberOrText()
    prior_kind = Enum(PRIOR_KINDS, default_value="flat")
    prior_a = NumberOrText()
    prior_b = NumberOrText()

    def __init__(self, name: str, **kwargs):
        super().__init__(**kwargs)
        self.set_trait("name", name)
        self.reset()

    @property
    def parameter(self):
        return PARAMETERS[self.name]

    def reset(self) -> None:
        """Fixed at the table's default value, with the table's default prior."""
        p = self.parameter
        kind, (a, b) = p.prior
        with self.hold_trait_notifications():
            self.free = False
            self.value = p.default
            self.prior_kind = kind
            self.prior_a, self.prior_b = a, b

    def set_prior(self, prior: Prior) -> None:
        with self.hold_trait_notifications():
            self.prior_kind = prior.kind
            self.prior_a, self.prior_b = prior.a, prior.b

    def prior(self) -> Prior:
        """The :class:`Prior` of this row (raises :class:`PriorError` if invalid)."""
        return _row_prior(self)


class BackendOptions(HasTraits):
    """The ``mcmc_kwargs`` options of one backend, one trait per option of the
    backend table (defaults from the table). Made by :func:`make_options`."""

    backend = Unicode(read_only=True)

    def values(self) -> dict:
        return {k: getattr(self, k) for k in BACKENDS[self.backend].options}

    def defaults(self) -> dict:
        options = dict(BACKENDS[self.backend].options)
        if "moves" in options:
            options["moves"] = "stretch"
        return options


def _option_trait(name, default):
    if name == "moves":
        # A name of EMCEE_MOVES, or a move object loaded from a script.
        return Any("stretch")
    if name == "chain_method":
        return Enum(CHAIN_METHODS, default_value=default)
    if isinstance(default, bool):
        return Bool(default)
    if isinstance(default, int):
        return Int(default)
    if isinstance(default, float):
        return Float(default)
    return Any(default)


_OPTION_CLASSES: dict = {}


def make_options(backend: str) -> BackendOptions:
    """A fresh :class:`BackendOptions` for ``backend`` with the table defaults."""
    if backend not in _OPTION_CLASSES:
        traits = {k: _option_trait(k, v) for k, v in BACKENDS[backend].options.items()}
        _OPTION_CLASSES[backend] = type(f"{backend.capitalize()}Options",
                                        (BackendOptions,), traits)
    opts = _OPTION_CLASSES[backend]()
    opts.set_trait("backend", backend)
    return opts


def emcee_moves(name):
    """The emcee ``moves`` argument for a move name (objects pass through)."""
    if not isinstance(name, str):
        return name
    import emcee

    if name == "stretch":
        return None
    if name == "de":
        return emcee.moves.DEMove()
    if name == "de+snooker":
        return [(emcee.moves.DEMove(), 0.8), (emcee.moves.DESnookerMove(), 0.2)]
    raise ValueError(f"Unknown emcee move {name!r}: choose one of {EMCEE_MOVES}.")


def _moves_name(moves):
    """The name of an emcee ``moves`` argument, or the object if unknown."""
    if moves is None:
        return "stretch"
    if isinstance(moves, str):
        if moves not in EMCEE_MOVES:
            raise ValueError(f"Unknown emcee move {moves!r}: choose one of "
                             f"{EMCEE_MOVES}.")
        return moves
    kinds = []
    items = moves if isinstance(moves, (list, tuple)) else [moves]
    for item in items:
        move = item[0] if isinstance(item, (list, tuple)) else item
        kinds.append(type(move).__name__)
    if kinds == ["StretchMove"]:
        return "stretch"
    if kinds == ["DEMove"]:
        return "de"
    if kinds == ["DEMove", "DESnookerMove"]:
        weights = [item[1] for item in items if isinstance(item, (list, tuple))]
        if weights == [0.8, 0.2]:
            return "de+snooker"
    return moves


_MOVES_SCRIPT = {
    "de": "emcee.moves.DEMove()",
    "de+snooker": "[(emcee.moves.DEMove(), 0.8), (emcee.moves.DESnookerMove(), 0.2)]",
}


def _row_prior(row: ParameterSetting) -> Prior:
    a, b = as_float(row.prior_a), as_float(row.prior_b)
    words = ("low", "high") if row.prior_kind == "flat" else ("mean", "sigma")
    for word, raw, val in ((words[0], row.prior_a, a), (words[1], row.prior_b, b)):
        if val is None:
            shown = "empty" if raw is None else repr(raw)
            raise PriorError(f"prior {word} is not a number ({shown})")
    if row.prior_kind == "flat" and not a < b:
        raise PriorError(f"prior low ({format_number(a)}) must be smaller than "
                         f"high ({format_number(b)})")
    if row.prior_kind == "gaussian" and not b > 0:
        raise PriorError(f"prior sigma ({format_number(b)}) must be > 0")
    return Prior.from_args([a, b], row.prior_kind, row.name)


def _same(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return float(a) == float(b)


def _literal(value) -> str:
    """Python source of a value for :meth:`FitSession.to_script`."""
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, float):
        if math.isinf(value):
            return "np.inf" if value > 0 else "-np.inf"
        return repr(value)
    if isinstance(value, (list, tuple)):
        inner = ", ".join(_literal(v) for v in value)
        return f"[{inner}]"
    if isinstance(value, dict):
        inner = ", ".join(f"{k!r}: {_literal(v)}" for k, v in value.items())
        return "{" + inner + "}"
    return repr(value)


# ----------------------------------------------------------------------------
# The session
# ----------------------------------------------------------------------------


class FitSession(HasTraits):
    """The fit set-up and the state of its run; the widgets observe it.

    Set-up (names as ``fit_map`` takes them):

    - ``parameters``: ``{name: ParameterSetting}`` for every table parameter
      (free, value, prior); ``free_order`` lists the free ones in ``p0`` order.
    - ``r_min``, ``r_max``: radial range to fit [arcsec] (``None``: no limit).
    - ``mcmc``: ``'emcee'`` or ``'numpyro'``; ``nwalkers``, ``nburnin``,
      ``nsteps``: the counts (numpyro: num_chains, num_warmup, num_samples),
      kept when the backend changes; ``optimize``: find the MAP start first.
    - ``options``: ``{backend: BackendOptions}``, the ``mcmc_kwargs`` of each.

    Checks (updated on every change): ``issues`` ``{name: message}`` of
    invalid entries (they block a run), ``prior_warnings`` ``{name: message}``
    of unbounded flat priors under NUTS (legal but slow), ``valid``.

    Run: ``status`` (one of :data:`STATUSES`), ``error`` (message of an
    exception in the run, ``''`` if none), ``messages`` (warnings the engine
    gave while preparing or running), ``result`` (the growing
    :class:`~eddy_widgets.inference.result.FitResult`; once the run stops or
    ends, ``result.converged``, ``result.warnings`` and
    ``result.verdict_text()`` give its verdict), ``info`` (its
    :class:`~eddy_widgets.inference.samplers.RunInfo`), ``run_id`` (bumped
    for every new run), ``extend_steps`` (draws that :meth:`resume` adds to a
    finished run). ``fit_run`` is the engine's ``FitRun``.

    Checkpoints: ``checkpoint`` is the file each new run writes its result
    (with the sampler's state) to, every ``checkpoint_interval`` seconds and
    when it stops or ends; by default a new
    ``./eddy_widgets_checkpoints/<date>-<time>.npz`` for every run (see
    :func:`new_checkpoint_path`), ``None`` turns them off. A path set by hand
    is used by every run (each new run overwrites it). ``checkpoint_file`` is
    the absolute path of the current run's checkpoint (``''`` when off).

    Views get every chunk of draws with :meth:`observe_chunks`; their
    callbacks run in the fit's thread and should be quick.
    """

    cube = Any(None, help="the rotationmap to fit (needs .prepare_fit, .set_prior)")
    free_order = List(Unicode())
    r_min = NumberOrText()
    r_max = NumberOrText()
    mcmc = Enum(tuple(BACKENDS), default_value="emcee")
    nwalkers = Int(BACKENDS["emcee"].count_defaults["nwalkers"])
    nburnin = Int(BACKENDS["emcee"].count_defaults["nburnin"])
    nsteps = Int(BACKENDS["emcee"].count_defaults["nsteps"])
    optimize = Bool(True)
    extra_params = Dict(help="other mask settings of params (phi_min, beam, ...), "
                             "passed through")

    issues = Dict(read_only=True)
    prior_warnings = Dict(read_only=True)
    valid = Bool(True, read_only=True)

    status = Enum(STATUSES, default_value="idle")
    error = Unicode("")
    messages = List(Unicode())
    result = Any(None, allow_none=True)
    info = Instance(RunInfo, allow_none=True)
    run_id = Int(0)
    extend_steps = Int(BACKENDS["emcee"].count_defaults["nsteps"])
    checkpoint = Any(help="checkpoint file of new runs (str), or None: off")
    checkpoint_interval = Float(60.0, help="seconds between checkpoint writes")
    checkpoint_file = Unicode("", help="the current run's checkpoint, absolute")

    def __init__(self, cube=None, free=DEFAULT_FREE, **kwargs):
        self.parameters: dict[str, ParameterSetting] = {
            name: ParameterSetting(name) for name in PARAMETERS}
        self.options: dict[str, BackendOptions] = {
            name: make_options(name) for name in BACKENDS}
        self._batching = 0
        self._listed_params: set[str] = set()
        self._listed_options: dict[str, set] = {name: set() for name in BACKENDS}
        self._mask_in_params: set[str] = set()
        self._chunk_observers: list = []
        self._thread: threading.Thread | None = None
        self._stop_flag = threading.Event()
        self._lock = threading.RLock()
        self._auto_checkpoint: str | None = None
        self.fit_run = None
        super().__init__(cube=cube, **kwargs)
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

    # -- Building from / to fit_map arguments ----------------------------------

    @classmethod
    def from_fit_kwargs(cls, p0, params, priors=None, cube=None, **kwargs) -> "FitSession":
        """A session holding a ``fit_map`` call's set-up.

        Args:
            p0, params: as ``fit_map`` takes them.
            priors: ``{name: Prior}`` (e.g. ``cube.priors``), or
                ``{name: (args, kind)}`` as ``set_prior`` takes them; the
                table default for the others.
            cube: the rotationmap to fit.
            **kwargs: the other ``fit_map`` arguments (``r_min``, ``r_max``,
                ``optimize``, ``nwalkers``, ``nburnin``, ``nsteps``,
                ``scatter``, ``mcmc``, ``mcmc_kwargs``); ``plots``,
                ``returns``, ``pool``, ``niter`` and ``callbacks`` are ignored.
        """
        session = cls(cube=cube, free=())
        session.load_fit_kwargs(p0, params, priors=priors, **kwargs)
        return session

    def load_fit_kwargs(self, p0, params, priors=None, r_min=None, r_max=None,
                        optimize=True, nwalkers=None, nburnin=300, nsteps=100,
                        scatter=None, mcmc="emcee", mcmc_kwargs=None, **ignored) -> None:
        """Replace the set-up by a ``fit_map`` call's (see :meth:`from_fit_kwargs`).

        Raises ``ValueError`` / ``TypeError`` with ``fit_map``'s messages when
        the arguments could not be given to ``fit_map`` either.
        """
        unknown = [k for k in ignored if k not in _FIT_MAP_ONLY]
        if unknown:
            raise TypeError(f"Unknown fit_map argument(s): {', '.join(unknown)}.")
        backend = get_backend(mcmc)
        spec = FitSpec.parse(dict(params), p0)
        p0 = [float(v) for v in (p0 if hasattr(p0, "__len__") else [p0])]
        counts = {}
        for arg, value in zip(COUNT_ARGS, (nwalkers, nburnin, nsteps)):
            counts[arg] = backend.count_defaults[arg] if value is None else int(value)
        mcmc_kwargs = dict(mcmc_kwargs or {})
        if scatter is not None and backend.name == "emcee":
            mcmc_kwargs.setdefault("scatter", scatter)
        loaded_priors = {}
        for name, prior in (priors or {}).items():
            if name not in PARAMETERS:
                raise PriorError(f"Unknown parameter '{name}' in priors.")
            if not isinstance(prior, Prior):
                if isinstance(prior, dict):
                    prior = Prior.from_args([prior["a"], prior["b"]], prior["kind"], name)
                else:
                    args, kind = prior
                    prior = Prior.from_args(args, kind, name)
            loaded_priors[name] = prior

        with self._batch():
            for row in self.parameters.values():
                row.reset()
            self._listed_params = set()
            self._mask_in_params = set()
            extra = {}
            for key, value in params.items():
                if key in MASK_SETTINGS:
                    if key in ("r_min", "r_max"):
                        self._mask_in_params.add(key)
                    else:
                        extra[key] = value
                elif not is_index(value):
                    self._listed_params.add(key)
            for i, name in enumerate(spec.free):
                row = self.parameters[name]
                row.free = True
                row.value = p0[i]
            for name in self._listed_params:
                self.parameters[name].value = spec.fixed[name]
            for name, prior in loaded_priors.items():
                self.parameters[name].set_prior(prior)
            self.free_order = list(spec.free)
            self.extra_params = extra
            self.r_min = params["r_min"] if "r_min" in params else None
            self.r_max = params["r_max"] if "r_max" in params else None
            if r_min is not None:
                self.r_min = r_min
                self._mask_in_params.discard("r_min")
            if r_max is not None:
                self.r_max = r_max
                self._mask_in_params.discard("r_max")
            self.optimize = bool(optimize)
            self.mcmc = backend.name
            self.nwalkers, self.nburnin, self.nsteps = (counts[a] for a in COUNT_ARGS)
            for name in BACKENDS:
                opts = make_options(name)
                for key in BACKENDS[name].options:
                    self.options[name].set_trait(key, getattr(opts, key))
                self._listed_options[name] = set()
            options = self.options[backend.name]
            for key, value in mcmc_kwargs.items():
                if key not in backend.options:
                    raise ValueError(f"mcmc_kwargs[{key!r}] is not an option of the "
                                     f"{backend.name} backend; it accepts "
                                     f"{', '.join(sorted(backend.options))}.")
                setattr(options, key, _moves_name(value) if key == "moves" else value)
                self._listed_options[backend.name].add(key)

    def to_fit_kwargs(self, check: bool = True) -> dict:
        """The set-up as ``fit_map`` (and ``prepare_fit``) arguments:
        ``p0``, ``params``, ``r_min``, ``r_max``, ``optimize``, ``nwalkers``,
        ``nburnin``, ``nsteps``, ``mcmc``, ``mcmc_kwargs``.

        Raises :class:`SetupError` if the set-up has issues (unless ``check``
        is False, which gives what can be given).
        """
        if check:
            issues = self.validate()
            if issues:
                raise SetupError(issues)
        return self._build_kwargs()

    def _build_kwargs(self) -> dict:
        free = list(self.free_order)
        p0 = [as_float(self.parameters[name].value) for name in free]
        params: dict = {name: i for i, name in enumerate(free)}
        for name, row in self.parameters.items():
            if row.free:
                continue
            value = row.value if row.value is None else as_float(row.value)
            if name in self._listed_params or not _same(value, row.parameter.default):
                params[name] = value
        kwargs = {"p0": p0, "params": params}
        for key in ("r_min", "r_max"):
            value = getattr(self, key)
            value = None if value is None else as_float(value)
            if key in self._mask_in_params:
                params[key] = value
                kwargs[key] = None
            else:
                kwargs[key] = value
        params.update(self.extra_params)
        kwargs.update(optimize=self.optimize, nwalkers=self.nwalkers,
                      nburnin=self.nburnin, nsteps=self.nsteps, mcmc=self.mcmc,
                      mcmc_kwargs=self.mcmc_kwargs())
        return kwargs

    def mcmc_kwargs(self, objects: bool = True) -> dict:
        """Options of the selected backend that differ from the table default
        (or were given explicitly). ``objects``: emcee move names become
        ``emcee.moves`` objects."""
        opts = self.options[self.mcmc]
        defaults = opts.defaults()
        listed = self._listed_options[self.mcmc]
        out = {}
        for key, value in opts.values().items():
            if key in listed or (value is not defaults[key] and value != defaults[key]):
                out[key] = emcee_moves(value) if key == "moves" and objects else value
        return out

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

    def to_script(self, path=None, uncertainty=None, FOV=None, downsample=None,  # noqa: N803
                  plots=None, returns=None) -> str:
        """A runnable Python script doing this fit with ``fit_map``.

        Args:
            path: the v0 map (default: the cube's file).
            uncertainty: its uncertainty map (default: the cube's, if any).
            FOV, downsample: as the map was loaded (not stored on the cube;
                give them to reproduce the same pixels).
            plots, returns: ``fit_map``'s arguments (default: its defaults).
        """
        kwargs = self.to_fit_kwargs()
        data = getattr(self.cube, "map", None)
        if path is None:
            path = getattr(data, "path", None)
            if uncertainty is None:
                uncertainty = getattr(data, "uncertainty_path", None)
        if path is None:
            raise ValueError("to_script needs the path of the v0 map (path=...).")
        mcmc_kwargs = self.mcmc_kwargs(objects=False)
        moves = mcmc_kwargs.get("moves")
        lines = ['"""Fit set-up exported by eddy_widgets (FitSession.to_script)."""',
                 ""]
        if moves is not None and moves != "stretch":
            if not isinstance(moves, str):
                raise ValueError("to_script cannot write a custom emcee move object; "
                                 f"choose one of {EMCEE_MOVES}.")
            lines.append("import emcee")
        lines += ["import numpy as np", "",
                  "from eddy_widgets.rotationmap import rotationmap", "",
                  f"cube = rotationmap({path!r}, uncertainty={uncertainty!r}, "
                  f"FOV={_literal(FOV)}, downsample={_literal(downsample)})", ""]
        set_priors = []
        for name in self.free_order:
            prior = self.parameters[name].prior()
            if prior != Prior.default(name):
                args, kind = prior.as_args()
                set_priors.append(f"cube.set_prior({name!r}, {_literal(args)}, {kind!r})")
        if set_priors:
            lines += set_priors + [""]
        lines.append("params = {}")
        for key, value in kwargs["params"].items():
            lines.append(f"params[{key!r}] = {_literal(value)}")
        lines += [f"p0 = {_literal(kwargs['p0'])}", ""]
        call = ["samples = cube.fit_map(", "    p0=p0,", "    params=params,"]
        for key in ("r_min", "r_max"):
            if kwargs[key] is not None:
                call.append(f"    {key}={_literal(kwargs[key])},")
        call.append(f"    optimize={kwargs['optimize']!r},")
        names = BACKENDS[self.mcmc].counts
        for arg in COUNT_ARGS:
            note = f"  # {self.mcmc}: {names[arg]}" if names[arg] != arg else ""
            call.append(f"    {arg}={kwargs[arg]},{note}")
        call.append(f"    mcmc={self.mcmc!r},")
        items = []
        for key, value in mcmc_kwargs.items():
            if key == "moves":
                items.append(f"{key!r}: {_MOVES_SCRIPT.get(value, 'None')}")
            else:
                items.append(f"{key!r}: {_literal(value)}")
        call.append("    mcmc_kwargs={" + ", ".join(items) + "},")
        if plots is not None:
            call.append(f"    plots={plots!r},")
        if returns is not None:
            call.append(f"    returns={returns!r},")
        call.append(")")
        return "\n".join(lines + call) + "\n"

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

    # -- Checks ----------------------------------------------------------------

    def validate(self) -> dict:
        """``{name: message}`` of everything that blocks a run: rows (start
        value not a number, prior bounds, start outside the prior), counts,
        the mask radii and model combinations."""
        issues: dict = {}
        nfree = len(self.free_order)
        for name, row in self.parameters.items():
            message = self._row_issue(row)
            if message:
                issues[name] = message
        if nfree == 0:
            issues["free"] = "no free parameter: tick at least one 'free' box"
        radii = {}
        for key in ("r_min", "r_max"):
            raw = getattr(self, key)
            radii[key] = None if raw is None else as_float(raw)
            if raw is not None and radii[key] is None:
                issues[key] = f"{key} is not a number ({raw!r})"
        if (radii["r_min"] is not None and radii["r_max"] is not None
                and not radii["r_min"] < radii["r_max"]):
            issues["r_max"] = (f"r_min ({format_number(radii['r_min'])}) must be "
                               f"smaller than r_max ({format_number(radii['r_max'])})")
        names = BACKENDS[self.mcmc].counts
        if self.nwalkers < 1:
            issues["nwalkers"] = f"{names['nwalkers']} must be at least 1"
        elif self.mcmc == "emcee" and self.nwalkers < 2 * nfree:
            issues["nwalkers"] = (f"emcee needs at least 2 x {nfree} = {2 * nfree} "
                                  f"walkers for {nfree} free parameters")
        for arg in ("nburnin", "nsteps"):
            if getattr(self, arg) < 0:
                issues[arg] = f"{names[arg]} must be >= 0"
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
        if self.mcmc != "numpyro":
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

    # -- Running ---------------------------------------------------------------

    @property
    def busy(self) -> bool:
        """Whether a fit is being prepared or run."""
        return self.status in ("optimising", "running")

    @property
    def can_resume(self) -> bool:
        """Whether :meth:`resume` can continue the last run."""
        return (not self.busy and self.fit_run is not None
                and self.status in ("stopped", "done"))

    def observe_chunks(self, callback) -> None:
        """Call ``callback(chunk, info)`` with every chunk of draws (in the
        fit's thread, after the result has the chunk)."""
        if callback not in self._chunk_observers:
            self._chunk_observers.append(callback)

    def unobserve_chunks(self, callback) -> None:
        if callback in self._chunk_observers:
            self._chunk_observers.remove(callback)

    def start(self) -> None:
        """Start a new fit in a background thread and return at once.

        Raises :class:`SetupError` if the set-up has issues, ``RuntimeError``
        if no cube is set or a fit is running.
        """
        with self._lock:
            if self.cube is None:
                raise RuntimeError("No map to fit: set session.cube = rotationmap(...).")
            self._claim_thread()
            kwargs = self.to_fit_kwargs()
            priors = self.priors()
            checkpoint = self._next_checkpoint()
            self._begin(checkpoint)
            self._launch(self._work_new, kwargs, priors, checkpoint)

    def continue_from(self, result, nsteps: int | None = None) -> None:
        """Continue a saved run on this session's map, in a background thread.

        Args:
            result: a :class:`~eddy_widgets.inference.result.FitResult` or
                the path of one (e.g. a checkpoint of a run whose kernel died).
            nsteps: post-warmup draws to add once the run has reached its
                planned end (default: none for a stopped run, else
                ``extend_steps``).

        The map, the fitted pixels and the cube's priors must be those the
        result was made with; otherwise the run fails with a
        ``SetupMismatchError`` naming every difference, shown in ``error``.
        The run writes a new checkpoint (``checkpoint_file``), never over the
        file it was loaded from. The editor's set-up is left as it is.
        """
        with self._lock:
            if self.cube is None:
                raise RuntimeError("No map to fit: set session.cube = rotationmap(...).")
            self._claim_thread()
            checkpoint = self._next_checkpoint()
            if checkpoint is not None and not isinstance(result, FitResult):
                if Path(os.path.abspath(result_path(result))) == checkpoint:
                    checkpoint = Path(os.path.abspath(new_checkpoint_path(
                        checkpoint.parent)))
            self._begin(checkpoint)
            self._launch(self._work_continue, result, nsteps, checkpoint)

    def _begin(self, checkpoint) -> None:
        """Clear the last run's state for a new one (under the lock)."""
        self._stop_flag.clear()
        self.fit_run = None
        self.error = ""
        self.messages = []
        self.checkpoint_file = "" if checkpoint is None else str(checkpoint)
        self.status = "optimising"

    def stop(self) -> None:
        """Stop the fit after the chunk in progress; every draw is kept (in
        ``result``, and in the checkpoint file when the run writes one).
        A stop while optimising keeps the prepared run with no draws."""
        self._stop_flag.set()
        run = self.fit_run
        if run is not None:
            run.request_stop()

    def resume(self, nsteps: int | None = None) -> None:
        """Continue the last run: a stopped run goes on to its planned end; a
        finished one gets ``nsteps`` (default ``extend_steps``) more draws."""
        with self._lock:
            if not self.can_resume:
                raise RuntimeError("Nothing to continue: start a fit first, and wait "
                                   "until it has stopped or finished.")
            self._claim_thread()
            run = self.fit_run
            if nsteps is None:
                nsteps = 0 if not run.complete else self.extend_steps
            self._stop_flag.clear()
            self.error = ""
            self.status = "running"
            self._launch(self._work_extend, run, int(nsteps))

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the fit's thread has finished (views included);
        returns False on timeout.

        Ctrl-C (a kernel interrupt) while waiting stops the run as Stop does,
        so every draw is kept (and written to the checkpoint), waits for
        that, and raises ``KeyboardInterrupt``; a second Ctrl-C stops waiting
        at once (the run still stops after its chunk)."""
        thread = self._thread
        if thread is None:
            return True
        try:
            thread.join(timeout)
        except KeyboardInterrupt:
            self.stop()
            thread.join()
            raise
        return not thread.is_alive()

    def _claim_thread(self) -> None:
        if self.busy:
            raise RuntimeError("A fit is running: stop it first.")
        # The last thread may still be refreshing views after its status
        # changed; let it finish so that no one reads the result while a new
        # run appends to it.
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(30.0)
            if self._thread.is_alive():
                raise RuntimeError("The last fit's thread is still busy.")

    def _launch(self, target, *args) -> None:
        self._thread = threading.Thread(target=self._guarded, args=(target, *args),
                                        name="eddy-widgets-fit", daemon=True)
        self._thread.start()

    def _guarded(self, target, *args) -> None:
        """Run ``target`` and turn any exception into ``error`` / 'error'.
        Nothing in the thread prints: messages go to traits."""
        try:
            target(*args)
        except Exception as exc:  # noqa: BLE001 - shown to the user
            self.error = f"{type(exc).__name__}: {exc}"
            self.status = "error"

    def _next_checkpoint(self) -> Path | None:
        """The absolute checkpoint path of a new run (``None``: off). The
        default gives every run a new file; a path set by hand is kept."""
        if self.checkpoint is None:
            return None
        if self.checkpoint == self._auto_checkpoint:
            self._auto_checkpoint = new_checkpoint_path()
            self.checkpoint = self._auto_checkpoint
        return Path(os.path.abspath(result_path(self.checkpoint)))

    @default("checkpoint")
    def _default_checkpoint(self):
        self._auto_checkpoint = new_checkpoint_path(reserve=False)
        return self._auto_checkpoint

    @validate_trait("checkpoint")
    def _valid_checkpoint(self, proposal):
        value = proposal["value"]
        if value is None:
            return None
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"checkpoint must be a file path or None, not {value!r}")
        return value

    def _prepare_checkpoint(self, checkpoint: Path | None) -> None:
        if checkpoint is not None:
            checkpoint.parent.mkdir(parents=True, exist_ok=True)

    def _work_new(self, kwargs: dict, priors: dict, checkpoint: Path | None) -> None:
        cube = self.cube
        for name, prior in priors.items():
            args, kind = prior.as_args()
            cube.set_prior(name, args, kind)
        self._prepare_checkpoint(checkpoint)
        run = cube.prepare_fit(**kwargs, verbose=False, warn=False,
                               checkpoint=checkpoint,
                               checkpoint_interval=self.checkpoint_interval)
        self._adopt(run, cube)
        if self._stop_flag.is_set():
            run.result.stopped = True
            self.status = "stopped"
            return
        self.status = "running"
        try:
            result = run.run([self._forward])
        finally:
            self._sync_messages()
        self.status = "stopped" if result.stopped else "done"

    def _work_continue(self, source, nsteps: int | None,
                       checkpoint: Path | None) -> None:
        cube = self.cube
        result = source if isinstance(source, FitResult) else FitResult.load(source)
        self._prepare_checkpoint(checkpoint)
        run = cube.resume(result, checkpoint, self.checkpoint_interval)
        self._adopt(run, cube)
        if nsteps is None:
            nsteps = 0 if not run.complete else self.extend_steps
        if self._stop_flag.is_set():
            self.status = "stopped"
            return
        self.status = "running"
        self._work_extend(run, int(nsteps))

    def _adopt(self, run, cube) -> None:
        """Make ``run`` (on ``cube``) the session's run (views start afresh)."""
        self.messages = list(run.messages)
        self.fit_run = run
        if hasattr(cube, "last_run"):
            cube.last_run = run
        self.info = run.info
        self.result = run.result
        self.run_id += 1

    def _sync_messages(self) -> None:
        """Add what the run said while running (e.g. a failed checkpoint
        write) to ``messages``."""
        run = self.fit_run
        new = [m for m in getattr(run, "messages", []) if m not in self.messages]
        if new:
            self.messages = [*self.messages, *new]

    def _work_extend(self, run, nsteps: int) -> None:
        try:
            result = run.extend(nsteps, [self._forward])
        finally:
            self._sync_messages()
        self.status = "stopped" if result.stopped else "done"

    def _forward(self, chunk, info) -> None:
        for callback in list(self._chunk_observers):
            try:
                callback(chunk, info)
            except StopRequested:
                raise
            except Exception as exc:  # noqa: BLE001 - a view must not kill the run
                note = f"view {callback!r} failed: {type(exc).__name__}: {exc}"
                if note not in self.messages:
                    self.messages = [*self.messages, note]
        if self._stop_flag.is_set():
            raise StopRequested
