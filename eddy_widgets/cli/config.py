"""The set-up of ``eddy-widgets-fit`` (:mod:`.fit`): its TOML file read and
every section, key and value checked before anything runs or is written.

Each mistake is a :class:`ConfigError` whose message names the file, the
section, the key, the value as written and what is expected, with a
did-you-mean for a misspelt key::

    fit.toml: [map] unknown key 'fov' (did you mean 'FOV'?); known: path,
    uncertainty, FOV, downsample.
    fit.toml: [free] mstar = "two": expected a number.
"""

from __future__ import annotations

import difflib
import json
import math
from pathlib import Path

from eddy_widgets.inference.backends import BACKENDS, COUNT_ARGS
from eddy_widgets.parameters import MASK_SETTINGS, PARAMETERS

__all__ = ["FIT_KEYS", "MAP_KEYS", "SECTIONS", "ConfigError", "check_value",
           "did_you_mean", "read_config", "unknown_message"]

#: The sections of the TOML file.
SECTIONS = ("map", "free", "fixed", "priors", "mask", "fit")
#: The keys of ``[map]``.
MAP_KEYS = ("path", "uncertainty", "FOV", "downsample")
#: The keys of ``[fit]``: the sampler, its counts and options, and the
#: seconds between checkpoints (``--checkpoint-interval``).
FIT_KEYS = ("mcmc", *COUNT_ARGS, "seed", "checkpoint_interval", "moves",
            "max_tree_depth", "target_accept_prob", "chain_method")
#: The likelihoods of ``[mask] noise``.
NOISE_MODELS = ("independent", "correlated")
#: The seconds between checkpoints without ``checkpoint_interval``.
DEFAULT_CHECKPOINT_INTERVAL = 30.0


class ConfigError(ValueError):
    """A fit set-up (TOML file or options) that cannot be used."""


def known_keys(section: str) -> tuple[str, ...]:
    """The keys ``[section]`` takes."""
    if section == "map":
        return MAP_KEYS
    if section == "mask":
        return tuple(MASK_SETTINGS)
    if section == "fit":
        return FIT_KEYS
    return tuple(PARAMETERS)


def did_you_mean(word, choices) -> str:
    """`` (did you mean 'X'?)`` for the closest of ``choices`` (case aside),
    or ``''``."""
    lower = {str(c).lower(): c for c in choices}
    close = difflib.get_close_matches(str(word).lower(), list(lower), n=1)
    return f" (did you mean {lower[close[0]]!r}?)" if close else ""


def unknown_message(where: str, what: str, names, choices) -> str:
    """``where`` unknown ``what`` ``names``, each with a did-you-mean, and the
    known ``choices``."""
    names = [f"{n!r}{did_you_mean(n, choices)}" for n in names]
    plural = "s" if len(names) > 1 else ""
    return (f"{where} unknown {what}{plural} {', '.join(names)}; known: "
            f"{', '.join(choices)}.")


def as_toml(value) -> str:
    """``value`` as it is written in TOML (strings in double quotes)."""
    if isinstance(value, float):
        return repr(value)
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return str(value)


def _number(value, finite: bool = False) -> bool:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    return ok and not math.isnan(value) and (math.isfinite(value) or not finite)


def _count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def check_value(section: str, key: str, value):
    """``value`` for ``[section] key``, with ``downsample`` given as text
    (``--downsample 4``) made an int; :class:`ConfigError` with only what
    is expected (the caller names where) if it is not usable."""
    expected = None
    if section == "free" and not _number(value, finite=True):
        expected = "a number (the start value)"
    elif section == "fixed" and not _number(value):
        expected = "a number"
    elif section == "priors":
        ok = (isinstance(value, list) and len(value) == 3
              and value[0] in ("flat", "gaussian")
              and all(_number(v) for v in value[1:]))
        if not ok:
            expected = '["flat", low, high] or ["gaussian", mean, sigma]'
    elif section == "map":
        if key in ("path", "uncertainty") and not (isinstance(value, str) and value):
            expected = "a file name in quotes"
        elif key == "FOV" and not (_number(value, finite=True) and value > 0):
            expected = "a positive number of arcsec"
        elif key == "downsample":
            if isinstance(value, str) and value.strip().isdigit():
                value = int(value)
            if not (value == "beam" or (_count(value) and value >= 1)):
                expected = 'an integer >= 1 or "beam"'
    elif section == "mask":
        default = MASK_SETTINGS[key]
        if key == "noise":
            if value not in NOISE_MODELS:
                expected = " or ".join(f'"{n}"' for n in NOISE_MODELS)
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                expected = "true or false"
        elif key != "user_mask" and not _number(value):
            expected = "a number"
    elif section == "fit":
        if key == "mcmc":
            if value not in BACKENDS:
                choices = ", ".join(f'"{b}"' for b in BACKENDS)
                expected = f"one of {choices}{did_you_mean(value, BACKENDS)}"
        elif key in (*COUNT_ARGS, "seed", "max_tree_depth"):
            if not _count(value):
                expected = "an integer >= 0"
        elif key == "checkpoint_interval":
            if not (_number(value, finite=True) and value >= 0):
                expected = "a number of seconds >= 0"
        elif key == "target_accept_prob":
            if not _number(value, finite=True):
                expected = "a number"
        elif key == "chain_method" and not isinstance(value, str):
            expected = "a name in quotes"
    if expected is not None:
        raise ConfigError(f"expected {expected}.")
    return value


def read_config(path) -> dict:
    """The set-up in a TOML file, every section, key and value checked, with
    paths made relative to the file."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    path = Path(path)
    try:
        config = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"No config file {path}.") from None
    except IsADirectoryError:
        raise ConfigError(f"{path} is a folder, not a TOML file.") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: not valid TOML ({err}).") from None
    unknown = [s for s in config if s not in SECTIONS]
    if unknown:
        raise ConfigError(unknown_message(f"{path}:", "section", unknown, SECTIONS))
    for section, table in config.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: {section} = {as_toml(table)}: expected a "
                              f"section [{section}].")
        choices = known_keys(section)
        unknown = [k for k in table if k not in choices]
        if unknown:
            what = "parameter" if section in ("free", "fixed", "priors") else "key"
            raise ConfigError(unknown_message(f"{path}: [{section}]", what, unknown,
                                              choices))
        for key, value in table.items():
            try:
                table[key] = check_value(section, key, value)
            except ConfigError as err:
                raise ConfigError(f"{path}: [{section}] {key} = {as_toml(value)}: "
                                  f"{err}") from None
    both = [n for n in config.get("free", {}) if n in config.get("fixed", {})]
    if both:
        name = both[0]
        raise ConfigError(f"{path}: {name} is in [free] ({name} = "
                          f"{as_toml(config['free'][name])}) and in [fixed] ({name} = "
                          f"{as_toml(config['fixed'][name])}): keep it in one.")
    for key in ("path", "uncertainty"):
        value = config.get("map", {}).get(key)
        if value and not Path(value).is_absolute():
            config["map"][key] = str(path.parent / value)
    return config
