"""Data layer: FITS I/O of rotation maps and the bundled example map.

- :func:`read_rotation_map` reads a v0 map and its uncertainty (axes in arcsec,
  velocities in m/s, beam, FOV clipping, downsampling);
- :func:`load_example` / :func:`example_paths` give the bundled HD 163296-like
  example and the parameters it was made with.
"""

from .example import ExampleMap, example_paths, load_example
from .fits_io import MapFormatError, RotationMapData, read_rotation_map

__all__ = ["ExampleMap", "MapFormatError", "RotationMapData", "example_paths",
           "load_example", "read_rotation_map"]
