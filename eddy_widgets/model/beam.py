"""Gaussian beam kernel and FFT convolution (pure JAX).

The beam-convolved model map is the model on the map's grid *padded* by the
kernel's half-width (:func:`beam_padding`, :func:`padded_axes`), convolved
and cropped back (:func:`convolve_padded`): each pixel of the map, the
border's included, is then the beam's average of the model around it, as
in an observation whose disk does not stop at the edge of the field.
Renormalising at the edge (:func:`convolve_fft`) or zero-filling outside the
field (astro-eddy) both bias the border (docs/astro_eddy_compatibility.md).
"""


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


def beam_padding(kernel) -> tuple[int, int]:
    """Rows and columns the model grid is padded by on each side for
    :func:`convolve_padded`: the kernel's half-widths (``ceil(4 sigma)`` of
    the beam's major axis for :func:`beam_kernel`'s default)."""
    ky, kx = np.shape(kernel)
    return ky // 2, kx // 2


def padded_axes(xaxis, yaxis, padding):
    """``xaxis`` and ``yaxis`` extended by ``padding = (rows, columns)``
    pixels on each side, with their own spacing (the grid the model is
    evaluated on before :func:`convolve_padded`)."""
    py, px = padding

    def extend(axis, n):
        axis = np.asarray(axis, dtype=float)
        if n == 0:
            return axis
        if axis.size < 2:
            raise ValueError("A beam-convolved model needs at least two pixels along "
                             "each axis (the pixel spacing).")
        step = axis[1] - axis[0]
        k = np.arange(1, n + 1, dtype=float)
        return np.concatenate([axis[0] - step * k[::-1], axis, axis[-1] + step * k])

    return extend(xaxis, px), extend(yaxis, py)


def convolve_padded(image, kernel):
    """Convolution of a model evaluated on a padded grid, cropped to the map.

    ``image`` is the model on the map's grid padded by :func:`beam_padding`
    of ``kernel`` on each side (:func:`padded_axes`); the result has the
    map's shape. Every output pixel sees the whole kernel, so nothing is
    renormalised or zero-filled: a constant stays constant and the border is
    what a larger map would give there. The FFT has the padded grid's size
    (its wrap-around lands only in the cropped ring), as large as the
    zero-padded FFT of :func:`convolve_fft` on the map itself.
    """
    ny, nx = image.shape
    ky, kx = np.shape(kernel)
    py, px = ky // 2, kx // 2
    if ny <= 2 * py or nx <= 2 * px:
        raise ValueError(f"The padded image {image.shape} is not larger than twice "
                         f"the kernel's half-widths {(py, px)}.")
    shape = (ny, nx)
    kernel_f = jnp.fft.rfft2(jnp.asarray(kernel, dtype=image.dtype), s=shape)
    out = jnp.fft.irfft2(jnp.fft.rfft2(image, s=shape) * kernel_f, s=shape)
    # out[i] = sum_m kernel[m] image[i - m]: the centred convolution at the
    # padded grid's pixel i - p, for the map's pixels i = 2p .. n - 1.
    return out[2 * py:, 2 * px:]
