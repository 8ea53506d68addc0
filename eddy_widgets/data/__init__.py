"""Data layer: FITS I/O of rotation maps and the bundled example map.

- :func:`read_rotation_map` reads a v0 map and its uncertainty (axes in arcsec,
  velocities in m/s, beam, FOV clipping, downsampling, astro-eddy's ``fill``
  and ``force_center``);
- :class:`RotationMapData` holds a map in memory; :func:`clipped` and
  :func:`downsampled` cut its grid with astro-eddy's rules;
- :func:`load_example` / :func:`example_paths` give the bundled HD 163296-like
  example and the parameters it was made with.
"""

from .example import ExampleMap, example_paths, load_example
from .fits_io import MapFormatError, read_rotation_map
from .mapdata import RotationMapData, clipped, downsample_step, downsampled

__all__ = ["ExampleMap", "MapFormatError", "RotationMapData", "clipped",
           "downsample_step", "downsampled", "example_paths", "load_example",
           "read_rotation_map"]
