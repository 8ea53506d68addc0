"""The set-up as a ``fit_map`` call, both ways: a session from a call's
arguments, the arguments of the session's set-up, and a runnable script.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from traitlets import HasTraits

from ..inference.backends import BACKENDS, COUNT_ARGS, get_backend
from ..inference.priors import Prior, PriorError
from ..inference.spec import FitSpec, is_index, with_noise
from ..parameters import MASK_SETTINGS, NOISE_PARAMETERS, PARAMETERS
from .settings import SetupError, as_float, make_options

if TYPE_CHECKING:
    from . import FitSession

#: emcee moves offered by the backend selector, by name.
EMCEE_MOVES = ("stretch", "de", "de+snooker")

#: fit_map arguments that do not belong to the set-up (accepted and ignored
#: when a script's call is loaded).
_FIT_MAP_ONLY = ("plots", "returns", "pool", "niter", "callbacks", "verbose")


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


class FitMapCall(HasTraits):
    """The set-up of :class:`~eddy_widgets.session.state.SetupState` to and
    from ``fit_map``'s arguments, and as a script; see
    :class:`~eddy_widgets.session.FitSession`."""

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
                ``scatter``, ``mcmc``, ``mcmc_kwargs``, ``noise``); ``plots``,
                ``returns``, ``pool``, ``niter`` and ``callbacks`` are ignored.
        """
        session = cls(cube=cube, free=())
        session.load_fit_kwargs(p0, params, priors=priors, **kwargs)
        return session

    def load_fit_kwargs(self, p0, params, priors=None, r_min=None, r_max=None,
                        optimize=True, nwalkers=None, nburnin=300, nsteps=100,
                        scatter=None, mcmc="emcee", mcmc_kwargs=None, noise=None,
                        **ignored) -> None:
        """Replace the set-up by a ``fit_map`` call's (see :meth:`from_fit_kwargs`).

        ``noise='correlated'`` (or ``params['noise']``) is held as
        ``params['noise']``, with ``noise_scale`` free, last, starting at 1
        when ``params`` does not give it, as ``fit_map`` makes it.

        Raises ``ValueError`` / ``TypeError`` with ``fit_map``'s messages when
        the arguments could not be given to ``fit_map`` either.
        """
        unknown = [k for k in ignored if k not in _FIT_MAP_ONLY]
        if unknown:
            raise TypeError(f"Unknown fit_map argument(s): {', '.join(unknown)}.")
        backend = get_backend(mcmc)
        params = dict(params)
        if noise is not None:       # fit_map's noise= wins over params['noise']
            params.pop("noise", None)
            if noise != MASK_SETTINGS["noise"]:
                params["noise"] = noise
        params, p0 = with_noise(params, p0, None)
        spec = FitSpec.parse(dict(params), p0)
        p0 = [float(v) for v in (p0 if hasattr(p0, "__len__") else [p0])]
        counts = {}
        for arg, value in zip(COUNT_ARGS, (nwalkers, nburnin, nsteps)):
            counts[arg] = backend.count_defaults[arg] if value is None else int(value)
        mcmc_kwargs = dict(mcmc_kwargs or {})
        if scatter is not None and "scatter" in backend.options:
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

        The noise model is ``params['noise']`` (``fit_map``'s ``noise=``
        folded in, as every reader of ``params`` understands it); under the
        default ``'independent'`` the noise rows and ``noise_clip`` are left
        out, so ``params`` is astro-eddy's. Under ``'correlated'`` a fixed
        ``noise_scale`` is always written (left out, ``fit_map`` would free it).

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
        correlated = self.noise == "correlated"
        for name, row in self.parameters.items():
            if row.free:
                continue
            value = row.value if row.value is None else as_float(row.value)
            if name in NOISE_PARAMETERS:
                if not correlated:
                    continue        # the independent likelihood has none
                if name == "noise_scale":
                    params[name] = value
                    continue
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
        params.update({k: v for k, v in self.extra_params.items()
                       if correlated or k != "noise_clip"})
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

    def to_script(self, path=None, uncertainty=None, FOV=None, downsample=None,  # noqa: N803
                  plots=None, returns=None) -> str:
        """A runnable Python script doing this fit with ``fit_map``.

        Args:
            path: the v0 map (default: the cube's file).
            uncertainty: its uncertainty map (default: the cube's, if any).
            FOV, downsample: as the map was loaded (default: as the cube's
                map records them, so the script fits the same pixels).
            plots, returns: ``fit_map``'s arguments (default: its defaults).
        """
        kwargs = self.to_fit_kwargs()
        data = getattr(self.cube, "map", None)
        if path is None:
            path = getattr(data, "path", None)
            if uncertainty is None:
                uncertainty = getattr(data, "uncertainty_path", None)
        if FOV is None:
            FOV = getattr(data, "FOV", None)  # noqa: N806
        if downsample is None:
            downsample = getattr(data, "downsample", None)
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
            if key != "noise":          # fit_map's own argument, below
                lines.append(f"params[{key!r}] = {_literal(value)}")
        lines += [f"p0 = {_literal(kwargs['p0'])}", ""]
        call = ["samples = cube.fit_map(", "    p0=p0,", "    params=params,"]
        for key in ("r_min", "r_max"):
            if kwargs[key] is not None:
                call.append(f"    {key}={_literal(kwargs[key])},")
        if self.noise != MASK_SETTINGS["noise"]:
            call.append(f"    noise={self.noise!r},")
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
