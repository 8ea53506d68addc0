"""Priors: flat and gaussian, as a JAX log-density and as a numpyro distribution."""

from __future__ import annotations

from dataclasses import dataclass
import math

import jax.numpy as jnp

from ..parameters import PARAMETERS

PRIOR_KINDS = ("flat", "gaussian")


class PriorError(ValueError):
    """A prior that cannot be used, or a value outside its prior."""


@dataclass(frozen=True)
class Prior:
    """A prior on one parameter.

    ``kind='flat'``: uniform on ``[a, b]`` (``a`` or ``b`` may be infinite).
    ``kind='gaussian'``: normal with mean ``a`` and standard deviation ``b``.
    """

    kind: str
    a: float
    b: float

    @classmethod
    def from_args(cls, args, kind: str = "flat", name: str = "parameter") -> "Prior":
        """Build and validate a prior from astro-eddy's ``set_prior`` arguments."""
        kind = str(kind).lower()
        if kind not in PRIOR_KINDS:
            raise PriorError(f"Prior type for '{name}' must be 'flat' or 'gaussian', "
                             f"not {kind!r}.")
        try:
            a, b = (float(v) for v in args)
        except (TypeError, ValueError):
            raise PriorError(f"Prior for '{name}' needs two numbers "
                             f"({'[low, high]' if kind == 'flat' else '[mean, sigma]'}), "
                             f"got {args!r}.") from None
        if math.isnan(a) or math.isnan(b):
            raise PriorError(f"Prior for '{name}' contains NaN: {args!r}.")
        if kind == "flat":
            if a > b:
                raise PriorError(
                    f"Flat prior for '{name}': low ({_literal(a)}) must be below high "
                    f"({_literal(b)}); give the bounds in order, "
                    f"set_prior('{name}', [{_literal(b)}, {_literal(a)}], 'flat').")
            if not a < b:
                raise PriorError(f"Flat prior for '{name}' needs low < high, got {args!r}.")
            return cls("flat", a, b)
        if not (b > 0.0 and math.isfinite(b) and math.isfinite(a)):
            raise PriorError(f"Gaussian prior for '{name}' needs a finite mean and "
                             f"sigma > 0, got mean={a}, sigma={b}.")
        return cls("gaussian", a, b)

    @classmethod
    def default(cls, name: str) -> "Prior":
        """The parameter table's default prior for ``name``."""
        kind, args = PARAMETERS[name].prior
        return cls.from_args(args, kind, name)

    # -- Properties ----------------------------------------------------------

    @property
    def bounded(self) -> bool:
        """True unless a flat prior has an infinite bound (improper)."""
        return self.kind == "gaussian" or (math.isfinite(self.a) and math.isfinite(self.b))

    @property
    def bounds(self) -> tuple[float | None, float | None]:
        """Optimiser bounds: finite flat bounds, ``None`` elsewhere."""
        if self.kind == "gaussian":
            return (None, None)
        return (self.a if math.isfinite(self.a) else None,
                self.b if math.isfinite(self.b) else None)

    def contains(self, value: float) -> bool:
        """Whether ``value`` is inside the prior support."""
        if self.kind == "gaussian":
            return math.isfinite(value)
        return self.a <= value <= self.b

    def describe(self) -> str:
        if self.kind == "flat":
            return f"flat [{self.a:g}, {self.b:g}]"
        return f"gaussian (mean {self.a:g}, sigma {self.b:g})"

    def as_args(self) -> tuple[list[float], str]:
        """``(args, type)`` as ``set_prior`` takes them."""
        return [self.a, self.b], self.kind

    # -- Densities -------------------------------------------------------------

    def log_density(self, x):
        """JAX log-density (up to a constant); ``-inf`` outside a flat prior."""
        if self.kind == "gaussian":
            return -0.5 * ((x - self.a) / self.b) ** 2
        inside = jnp.logical_and(x >= self.a, x <= self.b)
        width = self.b - self.a
        value = -math.log(width) if math.isfinite(width) else 0.0
        return jnp.where(inside, value, -jnp.inf)

    def distribution(self):
        """The numpyro distribution of this prior (improper if unbounded)."""
        import numpyro.distributions as dist
        from numpyro.distributions import constraints

        if self.kind == "gaussian":
            return dist.Normal(self.a, self.b)
        lo_finite, hi_finite = math.isfinite(self.a), math.isfinite(self.b)
        if lo_finite and hi_finite:
            return dist.Uniform(self.a, self.b)
        if lo_finite:
            support = constraints.greater_than(self.a)
        elif hi_finite:
            support = constraints.less_than(self.b)
        else:
            support = constraints.real
        return dist.ImproperUniform(support, (), ())


def _literal(value: float) -> str:
    """A bound as it would be typed (``np.inf`` for infinity)."""
    if math.isinf(value):
        return "np.inf" if value > 0 else "-np.inf"
    return f"{value:g}"


def default_priors() -> dict[str, Prior]:
    """A fresh dictionary of the default prior of every table parameter."""
    return {name: Prior.default(name) for name in PARAMETERS}
