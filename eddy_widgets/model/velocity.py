"""Velocity fields and their projection onto the line of sight (pure JAX).

Radii are in arcsec, heights in arcsec, distances in pc, masses in solar
masses and velocities in m/s. An arcsec at ``dist`` pc is ``dist`` au.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

#: Gravitational constant [m^3 kg^-1 s^-2] (CODATA 2018).
G = 6.67430e-11
#: Solar mass [kg] (IAU 2015 nominal GM / G), as astro-eddy uses.
MSUN = 1.98847e30
#: Astronomical unit [m].
AU = 1.495978707e11


def _positive(r):
    """``(mask, r_safe)`` for expressions singular at r = 0."""
    positive = r > 0.0
    return positive, jnp.where(positive, r, 1.0)


def enclosed_disk_mass(r, mdisk, gamma=1.0, r_in=0.0, r_out=10.0):
    """Pseudo self-gravity: disk mass inside ``r`` [Msun].

    ``mdisk * clip((r^(2-g) - r_in^(2-g)) / (r_out^(2-g) - r_in^(2-g)), 0, 1)``
    with radii in arcsec (astro-eddy's form).
    """
    positive, r_safe = _positive(r)
    exponent = 2.0 - gamma
    r_in_safe = jnp.where(r_in > 0.0, r_in, 1e-10)
    scale = (r_safe ** exponent - r_in_safe ** exponent) / (
        r_out ** exponent - r_in_safe ** exponent)
    return jnp.where(positive, mdisk * jnp.clip(scale, 0.0, 1.0), 0.0)


def keplerian(r, z, mstar, dist, mdisk=None, gamma=1.0, r_in=0.0, r_out=10.0):
    """Keplerian rotation speed including the height of the surface [m/s].

    ``v = sqrt(G M r^2 / (r^2 + z^2)^1.5)`` with ``r, z`` in metres.

    Args:
        r, z: cylindrical radius and height [arcsec].
        mstar: stellar mass [Msun].
        dist: distance [pc].
        mdisk, gamma, r_in, r_out: optional pseudo self-gravity term.
    """
    positive, r_safe = _positive(r)
    mass = mstar
    if mdisk is not None:
        mass = mass + enclosed_disk_mass(r, mdisk, gamma, r_in, r_out)
    r_m = r_safe * dist * AU
    z_m = z * dist * AU
    v2 = G * mass * MSUN * r_m ** 2 * (r_m ** 2 + z_m ** 2) ** -1.5
    return jnp.where(positive, jnp.sqrt(v2), 0.0)


def keplerian_los(x_mid, r2, z, mstar, dist):
    """Line-of-sight part ``v_kep(r, z) cos(phi)`` of Keplerian rotation [m/s].

    Equal to ``keplerian(r, z, ...) * x_mid / r`` but needs neither ``r`` nor
    an angle: ``sqrt(G M / (dist au)) * x_mid * (r^2 + z^2)^(-3/4)`` with the
    coordinates in arcsec. This is the model's hot path.
    """
    s2 = r2 + z * z
    positive = s2 > 0.0
    inv_sqrt = jax.lax.rsqrt(jnp.where(positive, s2, 1.0))
    scale = jnp.sqrt(G * MSUN * mstar / (dist * AU))
    return jnp.where(positive, scale * x_mid * inv_sqrt * jnp.sqrt(inv_sqrt), 0.0)


def power_law(r, dist, v_100, q):
    """Power-law speed ``v_100 * (r / 100 au) ** q`` [m/s]."""
    positive, r_safe = _positive(r)
    return jnp.where(positive, v_100 * jnp.exp(q * jnp.log(r_safe * dist / 100.0)), 0.0)


def project(v_phi, v_r, cos_phi, sin_phi, inc, vlsr):
    """Line-of-sight velocity [m/s] of rotation ``v_phi`` and radial ``v_r``.

    ``v0 = v_phi cos(phi) sin|i| - v_r sin(phi) sin(i) + vlsr``, astro-eddy's
    projection, with ``inc`` in degrees after the >= 90 convention.
    """
    sin_inc = jnp.sin(jnp.radians(inc))
    v0 = v_phi * cos_phi * jnp.abs(sin_inc) + vlsr
    if v_r is not None:
        v0 = v0 - v_r * sin_phi * sin_inc
    return v0
