"""Gaussian beam kernel and FFT convolution (pure JAX)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))


def beam_kernel(bmaj, bmin, bpa, dpix, nsigma=4.0):
    """Normalised 2-D Gaussian kernel of a beam on the pixel grid.

    Args:
        bmaj, bmin: beam FWHM along the major and minor axis [arcsec].
        bpa: beam position angle, east of north [deg].
        dpix: pixel size [arcsec].
        nsigma: half-size of the kernel in units of the major-axis sigma.

    Returns:
        ``(n, n)`` numpy array summing to 1, with ``n`` odd. Rows run along
        +y (north), columns along the image x axis (east to the left, as in
        the data arrays where x decreases with column index).
    """
    s_maj = bmaj * FWHM_TO_SIGMA / dpix
    s_min = bmin * FWHM_TO_SIGMA / dpix
    half = max(1, int(np.ceil(nsigma * s_maj)))
    offs = np.arange(-half, half + 1, dtype=float)
    # Column index increases to the west, so east offset = -column offset.
    east, north = np.meshgrid(-offs, offs)
    pa = np.radians(bpa)
    along = north * np.cos(pa) + east * np.sin(pa)
    across = east * np.cos(pa) - north * np.sin(pa)
    kernel = np.exp(-0.5 * ((along / s_maj) ** 2 + (across / s_min) ** 2))
    return kernel / kernel.sum()


def convolve_fft(image, kernel, coverage=None):
    """Linear (zero-padded) convolution of ``image`` with a centred ``kernel``.

    Edge pixels are renormalised by the kernel's coverage so that a constant
    image stays constant, which matters for a velocity map (no darkening of
    the border towards zero velocity). ``coverage`` is that normalisation,
    :func:`beam_coverage` of the image's shape; pass it when convolving many
    images of one shape (it is computed here otherwise).
    """
    ny, nx = image.shape
    ky, kx = kernel.shape
    shape = (ny + ky - 1, nx + kx - 1)
    kernel_f = jnp.fft.rfft2(jnp.asarray(kernel, dtype=image.dtype), s=shape)

    def conv(a):
        out = jnp.fft.irfft2(jnp.fft.rfft2(a, s=shape) * kernel_f, s=shape)
        return out[ky // 2:ky // 2 + ny, kx // 2:kx // 2 + nx]

    if coverage is None:
        coverage = conv(jnp.ones_like(image))
    return conv(image) / coverage


def beam_coverage(shape, kernel):
    """The kernel's coverage of each pixel of a ``shape`` image (1 inside,
    less than 1 within a kernel half-width of the border): the normalisation
    :func:`convolve_fft` divides by."""
    return convolve_fft(jnp.ones(shape, dtype=jnp.asarray(kernel).dtype), kernel,
                        coverage=1.0)
