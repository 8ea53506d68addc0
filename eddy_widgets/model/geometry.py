"""Sky to disk coordinates and the emission surface (pure JAX).

Sky offsets are in arcsec from the image centre, x positive to the east, y to
the north. Disk-frame cylindrical coordinates are ``r`` (arcsec), ``phi``
(radians, 0 along the red-shifted major axis) and ``z`` (arcsec).

All functions are differentiable everywhere inside the prior support: the
few places where a naive expression has an infinite or undefined derivative
(``r = r_cavity``, the pixel at the disk centre, ``r ** psi`` at zero) use
the "double where" pattern so that the gradient is finite.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

#: Fixed-point iterations used to find where a line of sight meets a flared
#: surface (astro-eddy uses 5).
FLARED_NITER = 5


def effective_inclination(inc):
    """Inclination in degrees with astro-eddy's convention (>= 90 -> inc - 180)."""
    return jnp.where(inc < 90.0, inc, inc - 180.0)


def safe_sqrt(r2):
    """``sqrt(r2)`` with a finite (zero) gradient at 0."""
    positive = r2 > 0.0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, r2, 1.0)), 0.0)


def safe_norm(x, y):
    """``hypot(x, y)`` with a finite (zero) gradient at the origin."""
    return safe_sqrt(x * x + y * y)


def _is_static(value, target) -> bool:
    """Whether ``value`` is a plain Python number equal to ``target`` (known
    when the model is traced, so a branch can be dropped from the program)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and (
        value == target)


def surface_from_r2(r2, z0, psi=1.0, r_cavity=0.0, r_taper=jnp.inf, q_taper=1.0):
    """:func:`emission_surface` from the squared radius ``r2`` [arcsec^2].

    ``z = z0 * r_eff ** psi * exp(-(r_eff / r_taper) ** q_taper)`` with
    ``r_eff = max(r - r_cavity, 0)``: the taper, like the power law, uses the
    radius measured from the cavity edge (astro-eddy 3.2 and disksurf).

    Works in ``log r_eff`` so that one logarithm and two exponentials per
    pixel give the surface; a cavity fixed at 0 and a taper fixed at
    infinity drop out of the compiled program altogether.
    """
    positive = r2 > 0.0
    log_r = 0.5 * jnp.log(jnp.where(positive, r2, 1.0))
    if _is_static(r_cavity, 0.0):
        inside = positive
        log_r_eff = log_r
    else:
        r_eff = jnp.where(positive, jnp.exp(log_r), 0.0) - r_cavity
        inside = r_eff > 0.0
        # Double where: at and inside the cavity edge the logarithm sees 1,
        # so no derivative is 0 * inf there.
        log_r_eff = jnp.log(jnp.where(inside, r_eff, 1.0))
    exponent = psi * log_r_eff
    if not _is_static(r_taper, jnp.inf):
        # (r_eff / r_taper) ** q_taper = exp(q_taper * (log r_eff - log r_taper)).
        # An infinite r_taper switches it off without a NaN in any derivative.
        finite = jnp.isfinite(r_taper)
        r_taper_safe = jnp.where(finite, r_taper, 1.0)
        taper = jnp.exp(q_taper * (log_r_eff - jnp.log(r_taper_safe)))
        exponent = exponent - jnp.where(finite, taper, 0.0)
    return jnp.where(inside, z0 * jnp.exp(exponent), 0.0)


def emission_surface(r, z0, psi=1.0, r_cavity=0.0, r_taper=jnp.inf, q_taper=1.0):
    """Height of the emission surface in arcsec.

    ``z(r) = z0 * r_eff ** psi * exp(-(r_eff / r_taper) ** q_taper)`` with
    ``r_eff = max(r - r_cavity, 0)`` (astro-eddy 3.2's and disksurf's
    convention: the taper is measured from the cavity edge too).

    Args:
        r: midplane radius [arcsec], any shape, >= 0.
        z0: height at ``r_eff = 1`` arcsec before the taper [arcsec];
            negative values give the far side.
        psi: flaring index.
        r_cavity: radius inside which z = 0 [arcsec].
        r_taper: taper radius [arcsec], measured from ``r_cavity``; ``inf``
            switches the taper off.
        q_taper: taper exponent.

    Returns:
        z [arcsec], same shape as ``r``; 0 inside the cavity.
    """
    r = jnp.asarray(r)
    return surface_from_r2(r * r, z0, psi, r_cavity, r_taper, q_taper)


def midplane_coords(x_sky, y_sky, x0, y0, inc, PA):
    """Rotate sky offsets into the disk frame and deproject the minor axis.

    Args:
        x_sky, y_sky: sky offsets [arcsec], any (equal) shape.
        x0, y0: disk centre [arcsec].
        inc: inclination [deg] (already through :func:`effective_inclination`).
        PA: position angle [deg].

    Returns:
        ``(x_mid, y_mid)``: major-axis and deprojected minor-axis offsets
        [arcsec].
    """
    dx = x_sky - x0
    dy = y_sky - y0
    pa = jnp.radians(PA)
    cos_pa, sin_pa = jnp.cos(pa), jnp.sin(pa)
    x_mid = dy * cos_pa + dx * sin_pa
    y_rot = dx * cos_pa - dy * sin_pa
    return x_mid, y_rot / jnp.cos(jnp.radians(inc))


def disk_coords(x_sky, y_sky, x0=0.0, y0=0.0, inc=0.0, PA=0.0, z0=None, psi=1.0,
                r_cavity=0.0, r_taper=jnp.inf, q_taper=1.0, niter=FLARED_NITER,
                z_func=None):
    """Disk-frame cylindrical coordinates of each sky position.

    With ``z0=None`` (and no ``z_func``) the disk is flat. Otherwise the
    point where each line of sight meets the surface ``z(r)`` (see
    :func:`emission_surface`, or ``z_func``) is found by the fixed-point
    iteration ``y = y_mid + z(r) tan(inc)``.

    Args:
        x_sky, y_sky: sky offsets [arcsec], any (equal) shape.
        x0, y0: disk centre [arcsec].
        inc: inclination [deg]; the sign sets the rotation sense and which
            side of the surface faces us; >= 90 maps to inc - 180.
        PA: position angle of the red-shifted major axis [deg].
        z0, psi, r_cavity, r_taper, q_taper: emission surface.
        niter: fixed-point iterations.
        z_func: a user surface instead of the analytic one: a JAX-traceable
            function of the cylindrical radius [arcsec] returning the height
            [arcsec] (astro-eddy's ``z_func``); ``z0``, ``psi``, ``r_cavity``,
            ``r_taper`` and ``q_taper`` are then not used.

    Returns:
        ``(r, phi, z)`` in [arcsec], [rad], [arcsec]; ``cos(phi)`` and
        ``sin(phi)`` are better taken from :func:`disk_frame` which avoids
        ``arctan2`` at the centre.
    """
    r, cos_phi, sin_phi, z = disk_frame(x_sky, y_sky, x0, y0, inc, PA, z0, psi,
                                        r_cavity, r_taper, q_taper, niter, z_func)
    return r, jnp.arctan2(sin_phi, cos_phi), z


def surface_point(x_sky, y_sky, x0=0.0, y0=0.0, inc=0.0, PA=0.0, z0=None, psi=1.0,
                  r_cavity=0.0, r_taper=jnp.inf, q_taper=1.0, niter=FLARED_NITER,
                  rolled=False, z_func=None):
    """Where each line of sight meets the emission surface, in the disk frame.

    Returns ``(x_mid, y, r2, z)``: the major-axis coordinate, the minor-axis
    coordinate on the surface, the squared cylindrical radius ``x_mid^2 +
    y^2`` [arcsec^2] and the height [arcsec]. The model's hot path works with
    these directly (no square root, no angle).

    ``rolled`` only changes speed: the compiler makes the fastest value-only
    program from a rolled loop (about 3x faster than unrolled on a CPU) and
    the fastest gradient from an unrolled one (about 2x).

    ``z_func`` (a function of the radius [arcsec] returning the height
    [arcsec]) replaces the analytic surface.
    """
    inc = effective_inclination(inc)
    x_mid, y_mid = midplane_coords(x_sky, y_sky, x0, y0, inc, PA)
    x2 = x_mid * x_mid
    if z0 is None and z_func is None:
        r2 = x2 + y_mid * y_mid
        return x_mid, y_mid, r2, jnp.zeros_like(r2)
    tan_inc = jnp.tan(jnp.radians(inc))

    if z_func is None:
        def surface(r2):
            return surface_from_r2(r2, z0, psi, r_cavity, r_taper, q_taper)
    else:
        def surface(r2):
            return jnp.asarray(z_func(safe_sqrt(r2)), dtype=r2.dtype)

    def step(_, y):
        return y_mid + surface(x2 + y * y) * tan_inc

    if rolled:
        y = jax.lax.fori_loop(0, niter, step, y_mid)
    else:
        y = y_mid
        for i in range(niter):
            y = step(i, y)
    r2 = x2 + y * y
    return x_mid, y, r2, surface(r2)


def polar_from_point(x_mid, y, r2):
    """``(r, cos_phi, sin_phi)`` of disk-frame points; ``cos_phi = 1`` and
    ``sin_phi = 0`` at the exact centre so that gradients stay finite."""
    positive = r2 > 0.0
    r = jnp.where(positive, jnp.sqrt(jnp.where(positive, r2, 1.0)), 0.0)
    r_safe = jnp.where(positive, r, 1.0)
    return (r, jnp.where(positive, x_mid / r_safe, 1.0),
            jnp.where(positive, y / r_safe, 0.0))


def disk_frame(x_sky, y_sky, x0=0.0, y0=0.0, inc=0.0, PA=0.0, z0=None, psi=1.0,
               r_cavity=0.0, r_taper=jnp.inf, q_taper=1.0, niter=FLARED_NITER,
               z_func=None):
    """Like :func:`disk_coords` but returns ``(r, cos_phi, sin_phi, z)``.

    ``cos_phi`` and ``sin_phi`` are 1 and 0 at the exact disk centre so that
    projected velocities and their gradients stay finite there.
    """
    x_mid, y, r2, z = surface_point(x_sky, y_sky, x0, y0, inc, PA, z0, psi, r_cavity,
                                    r_taper, q_taper, niter, z_func=z_func)
    r, cos_phi, sin_phi = polar_from_point(x_mid, y, r2)
    return r, cos_phi, sin_phi, z
