"""The bundled example: an HD 163296-like rotation map with known truths.

``HD163296_like_v0.fits`` and ``HD163296_like_dv0.fits`` are a synthetic v0
map and its uncertainty in bettermoments' naming, made by
``scripts/make_example.py`` from this package's own model with the parameters
in ``truths.json`` (geometry and stellar mass close to HD 163296's), plus
Gaussian noise of the stated uncertainty. They let tutorials and tests run
without any download, and a fit of them should recover the truths.

The grid is 400 x 400 pixels of 0.025 arcsec (10 arcsec across) with BUNIT
'm/s' and an ALMA-like beam in the header (the map itself is not convolved).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
import json
from pathlib import Path

__all__ = ["ExampleMap", "example_paths", "load_example"]

V0_NAME = "HD163296_like_v0.fits"
DV0_NAME = "HD163296_like_dv0.fits"
TRUTHS_NAME = "truths.json"


def _example_dir() -> Path:
    """Folder holding the example files (inside the installed package)."""
    return Path(str(resources.files(__package__).joinpath("example")))


def example_paths() -> dict[str, str]:
    """Absolute paths of the example maps.

    Returns:
        ``{'v0': ..._v0.fits, 'dv0': ..._dv0.fits}`` (v0 and its uncertainty,
        both in m/s), ready for ``read_rotation_map(paths['v0'])``.

    Raises:
        FileNotFoundError: the example files are missing from the installation
            (regenerate them with ``python scripts/make_example.py``).
    """
    folder = _example_dir()
    paths = {"v0": folder / V0_NAME, "dv0": folder / DV0_NAME}
    for p in paths.values():
        if not p.is_file():
            raise FileNotFoundError(
                f"example map not found: {p}. Regenerate it with "
                "`python scripts/make_example.py` from the repository root.")
    return {key: str(p.resolve()) for key, p in paths.items()}


@dataclass
class ExampleMap:
    """The bundled example.

    Attributes:
        v0: absolute path of the v0 map [m/s].
        dv0: absolute path of its uncertainty [m/s].
        truths: model parameters the map was made with (names of
            :mod:`eddy_widgets.parameters`; arcsec, deg, Msun, pc, m/s).
        description: how the map was made (grid, beam, noise, seed).
    """

    v0: str
    dv0: str
    truths: dict[str, float]
    description: dict = field(default_factory=dict)


def load_example() -> ExampleMap:
    """Paths and true parameters of the bundled HD 163296-like example.

    Example:
        >>> from eddy_widgets.data import load_example, read_rotation_map
        >>> ex = load_example()
        >>> data = read_rotation_map(ex.v0, FOV=8.0, downsample=4)
        >>> ex.truths['inc']
        46.7
    """
    paths = example_paths()
    info = json.loads((_example_dir() / TRUTHS_NAME).read_text())
    return ExampleMap(v0=paths["v0"], dv0=paths["dv0"], truths=dict(info["truths"]),
                      description={k: v for k, v in info.items() if k != "truths"})
