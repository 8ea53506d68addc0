"""emcee's ``moves`` in ``mcmc_kwargs``: names, objects and weighted lists,
checked and normalised, and stored in a result file so that a run can be
continued with the same moves."""

from __future__ import annotations

import difflib
import inspect
import math
import numbers

import numpy as np

from .spec import FitInputError

#: The backend selector's names of emcee moves (see ``session.EMCEE_MOVES``),
#: accepted beside emcee's class names.
MOVE_ALIASES = {
    "stretch": (("StretchMove", 1.0),),
    "de": (("DEMove", 1.0),),
    "de+snooker": (("DEMove", 0.8), ("DESnookerMove", 0.2)),
}


def _emcee_moves_module():
    import emcee

    return emcee.moves


def _move_classes() -> dict:
    """emcee's move classes by name (the base classes too)."""
    moves = _emcee_moves_module()
    return {name: cls for name, cls in vars(moves).items()
            if inspect.isclass(cls) and issubclass(cls, moves.Move)}


def _needs_arguments(cls) -> list[str]:
    """Names of the required arguments of a move's constructor."""
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    return [p.name for p in params if p.default is p.empty
            and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def move_names() -> tuple[str, ...]:
    """emcee's move class names that can be made by name alone (not the base
    classes ``Move``, ``RedBlueMove``, ``MHMove``, nor moves that need
    arguments such as ``GaussianMove``)."""
    classes = _move_classes()
    bases = {name for name, cls in classes.items()
             if any(other is not cls and issubclass(other, cls)
                    for other in classes.values())}
    return tuple(sorted(name for name, cls in classes.items()
                        if name not in bases and not _needs_arguments(cls)))


def _valid_moves_text() -> str:
    return (f"an emcee move name ({', '.join(move_names())}; or the selector's "
            f"{', '.join(repr(a) for a in MOVE_ALIASES)}), an emcee.moves object, a "
            f"list of them, or a list of (move, weight) pairs such as "
            f"[('DEMove', 0.8), ('DESnookerMove', 0.2)]")


def _move_from_name(name: str, kwargs: dict | None = None):
    cls = _move_classes().get(name)
    valid = move_names()
    # Unknown, or a base class (Move, RedBlueMove) that is no move by itself.
    if cls is None or (name not in valid and not _needs_arguments(cls)):
        close = difflib.get_close_matches(name, list(valid) + list(MOVE_ALIASES), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise FitInputError(f"Unknown emcee move {name!r}: moves must be "
                            f"{_valid_moves_text()}.{hint}")
    if name not in valid:
        needed = ", ".join(_needs_arguments(cls))
        raise FitInputError(f"emcee's {name} needs arguments ({needed}) and cannot be "
                            f"made from its name: pass an object, e.g. "
                            f"mcmc_kwargs={{'moves': emcee.moves.{name}({needed})}}; "
                            f"names alone work for {', '.join(valid)}.")
    try:
        return cls(**(kwargs or {}))
    except TypeError as err:
        raise FitInputError(f"emcee.moves.{name}(**{kwargs!r}) failed: "
                            f"{err}.") from None


def _one_move(item):
    moves = _emcee_moves_module()
    if isinstance(item, moves.Move):
        return item
    if isinstance(item, str):
        return _move_from_name(item)
    raise FitInputError(f"mcmc_kwargs['moves'] contains {item!r}, which is not an "
                        f"emcee move: moves must be {_valid_moves_text()}.")


def _weight(move, weight) -> float:
    if (isinstance(weight, (bool, np.bool_)) or not isinstance(weight, numbers.Real)
            or not math.isfinite(float(weight)) or not float(weight) > 0.0):
        raise FitInputError(f"The weight of emcee move {move!r} must be a finite "
                            f"number > 0, got {weight!r}.")
    return float(weight)


def normalise_moves(moves):
    """emcee's ``moves`` argument from what a user (or a saved result) gives.

    Accepts ``None`` (emcee's default, the stretch move), a move name, an
    ``emcee.moves`` object, a list of names / objects, or a list of
    ``(move or name, weight)`` pairs (and the ``[name, weight, kwargs]``
    entries of :func:`moves_to_json`). Names become objects; objects and the
    shape of the argument are kept. Anything else raises
    :class:`~eddy_widgets.inference.spec.FitInputError` listing the valid names.
    """
    if moves is None:
        return None
    if isinstance(moves, str):
        if moves in MOVE_ALIASES:
            pairs = MOVE_ALIASES[moves]
            if len(pairs) == 1:
                return _move_from_name(pairs[0][0])
            return [(_move_from_name(name), weight) for name, weight in pairs]
        return _move_from_name(moves)
    if isinstance(moves, (list, tuple)):
        if not moves:
            raise FitInputError(f"mcmc_kwargs['moves'] is empty: give "
                                f"{_valid_moves_text()}, or leave it out for emcee's "
                                f"default stretch move.")
        weighted = any(isinstance(item, (list, tuple)) for item in moves)
        out = []
        for item in moves:
            if not isinstance(item, (list, tuple)):
                move = _one_move(item)
                out.append((move, 1.0) if weighted else move)
                continue
            if len(item) == 3 and isinstance(item[0], str) and (
                    item[2] is None or isinstance(item[2], dict)):
                name, weight, kwargs = item
                if kwargs is None:
                    raise FitInputError(
                        f"The stored emcee move {name!r} had settings that were not "
                        f"saved, so it cannot be rebuilt: start a new fit with "
                        f"mcmc_kwargs={{'moves': emcee.moves.{name}(...)}}.")
                out.append((_move_from_name(name, kwargs), _weight(name, weight)))
                continue
            if len(item) != 2:
                raise FitInputError(f"mcmc_kwargs['moves'] entry {item!r} is not a "
                                    f"(move, weight) pair: moves must be "
                                    f"{_valid_moves_text()}.")
            move = _one_move(item[0])
            out.append((move, _weight(item[0], item[1])))
        return out
    return _one_move(moves)


def moves_to_json(moves):
    """A JSON-able record of an emcee ``moves`` argument that
    :func:`normalise_moves` turns back into the same moves: ``None`` for the
    default, else a list of ``[class name, weight, kwargs]`` where ``kwargs``
    are the settings that differ from the class's defaults. A move that cannot
    be rebuilt from its name and settings (e.g. ``GaussianMove``, a custom
    class) is stored with ``kwargs=None``; resuming it then raises a clear
    error instead of silently using another move."""
    moves = normalise_moves(moves)
    if moves is None:
        return None
    items = moves if isinstance(moves, list) else [moves]
    out = []
    for item in items:
        move, weight = item if isinstance(item, tuple) else (item, 1.0)
        out.append([type(move).__name__, float(weight), _move_settings(move)])
    return out


def _json_scalar(value) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def _move_settings(move) -> dict | None:
    """Settings of ``move`` that differ from a default instance of its class, or
    ``None`` if the move cannot be rebuilt from its class name and settings."""
    cls = type(move)
    name = cls.__name__
    if _move_classes().get(name) is not cls or name not in move_names():
        return None
    default = vars(cls())
    state = vars(move)
    if set(state) != set(default) or not all(_json_scalar(v) for v in state.values()):
        return None
    changed = {k: v for k, v in state.items() if v != default[k]}
    try:
        rebuilt = cls(**changed)
    except TypeError:
        return None
    return changed if vars(rebuilt) == state else None
