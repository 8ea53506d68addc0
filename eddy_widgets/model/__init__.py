"""Pure JAX rotation-map model: geometry, emission surface, velocities, beam.

No state, no I/O: every function takes arrays and parameters and returns
arrays, and is differentiable with ``jax.grad``.
"""

from .beam import (
    beam_coverage,
    beam_kernel,
    beam_padding,
    convolve_fft,
    convolve_padded,
    padded_axes,
)
from .geometry import (
                       FLARED_NITER,
                       disk_coords,
                       disk_frame,
                       effective_inclination,
                       emission_surface,
                       midplane_coords,
                       polar_from_point,
                       surface_from_r2,
                       surface_point,
)
from .rotation import complete, rotation_speed, v0_map, v0_model
from .velocity import enclosed_disk_mass, keplerian, keplerian_los, power_law, project

__all__ = [
    "FLARED_NITER", "beam_coverage", "beam_kernel", "beam_padding", "complete",
    "convolve_fft", "convolve_padded", "disk_coords", "disk_frame",
    "effective_inclination", "emission_surface", "enclosed_disk_mass", "keplerian",
    "keplerian_los", "midplane_coords", "padded_axes", "polar_from_point",
    "power_law", "project", "rotation_speed", "surface_from_r2", "surface_point",
    "v0_map", "v0_model",
]
