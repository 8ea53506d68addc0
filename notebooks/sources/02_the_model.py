# %% [markdown]
# # The model: what each parameter does
#
# A rotation map `v0(x, y)` is the line-of-sight velocity of the gas at each
# point of the sky. `eddy_widgets` models it as a thin disk in Keplerian
# rotation around a star, seen at an angle, whose emission comes from a
# surface that can rise above the midplane:
#
# $$ v_0 = v_{\rm kep}(r, z)\,\cos\phi\,\sin|i| + v_{\rm LSR},
# \qquad v_{\rm kep} = \sqrt{\frac{G M_\star r^2}{(r^2 + z^2)^{3/2}}} $$
#
# where $(r, \phi, z)$ are cylindrical coordinates in the disk (with $\phi = 0$
# along the red-shifted half of the major axis) of the point where our line of
# sight meets the emitting surface. The parameters come in three groups:
#
# - **geometry** — where the disk is and how it is oriented: `x0`, `y0`, `inc`, `PA`;
# - **star** — what sets the speeds: `mstar`, `dist`, `vlsr`;
# - **emission surface** — how high above the midplane the line is emitted:
#   `z0`, `psi`, `r_cavity`, `r_taper`, `q_taper`.
#
# Below: the table of parameters, a picture for each, the emission surface
# profile, and sliders that redraw the model as you move them.

# %%
from eddy_widgets.parameters import PARAMETERS

for group, title in [("geometry", "Geometry"), ("star", "Star"),
                     ("surface", "Emission surface")]:
    print(title)
    for p in PARAMETERS.values():
        if p.group == group:
            default = "off" if p.default is None else f"{p.default:g}"
            print(f"  {p.name:<9}{p.unit or '-':<8}default {default:<5} {p.description}")
    print()

# %% [markdown]
# Units follow astro-eddy: sky offsets and radii in **arcsec**, angles in
# **degrees**, velocities in **m/s**, masses in **solar masses**, distances in
# **parsec**. At a distance of `dist` pc one arcsec is `dist` au, which is how
# the model turns angles on the sky into metres for Kepler's law.
#
# ## The model is a pure JAX function
#
# `v0_map(xaxis, yaxis, params)` evaluates the model on an image grid. It has no
# state, so `jax.jit` compiles it once; after that a whole 80 x 80 map takes
# about a millisecond, fast enough to redraw while a slider moves. We use the
# grid of the bundled example at `downsample=4` and start from the parameters
# the example was made with.

# %%
from eddy_widgets import load_example, rotationmap
from eddy_widgets.model import disk_coords, emission_surface, v0_map

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

example = load_example()
cube = rotationmap(example.v0, FOV=8.0, downsample=4)
truths = dict(example.truths)

NAMES = ["x0", "y0", "inc", "PA", "mstar", "dist", "vlsr",
         "z0", "psi", "r_cavity", "r_taper", "q_taper"]


@jax.jit
def model_from_vector(theta):
    return v0_map(cube.xaxis, cube.yaxis, dict(zip(NAMES, theta)))


def model_map(**changes):
    """The model v0 map [m/s] with the example's parameters, except ``changes``."""
    values = truths | changes
    return np.asarray(model_from_vector(jnp.array([float(values[n]) for n in NAMES])))


v0 = model_map()
print(f"{v0.shape[0]} x {v0.shape[1]} model map, v0 from {v0.min() / 1e3:.2f} "
      f"to {v0.max() / 1e3:.2f} km/s")
rms = np.sqrt(np.nanmean((cube.data - v0) ** 2))
print(f"rms of data - model over the map: {rms:.0f} m/s (the noise of the example)")

# %% [markdown]
# ## Pictures: one parameter at a time
#
# Each row below changes one parameter and keeps the others at the example's
# values. The colour is `v0 - vlsr` in km/s (red: away from us, blue: towards
# us) and the black lines are iso-velocity contours at ±0.5, 1, 2 and 4 km/s:
# their shape is what a fit reads.

# %%
LEVELS = [-4, -2, -1, -0.5, 0.5, 1, 2, 4]


def gallery(name, values, unit="", **fixed):
    """Model maps for several values of one parameter, side by side."""
    fig, axes = plt.subplots(1, len(values), figsize=(2.6 * len(values), 2.7),
                             constrained_layout=True, sharey=True)
    for ax, value in zip(axes, values):
        dv = (model_map(**fixed, **{name: value}) - truths["vlsr"]) / 1e3
        ax.imshow(dv, origin="lower", extent=cube.extent, cmap="RdBu_r",
                  vmin=-5, vmax=5)
        ax.contour(cube.xaxis, cube.yaxis, dv, LEVELS, colors="k", linewidths=0.6)
        ax.set_title(f"{name} = {value:g} {unit}", fontsize=10)
        ax.set_xlabel("arcsec")
    axes[0].set_ylabel("arcsec")
    return fig


# %% [markdown]
# ### Geometry
#
# **`inc`, the inclination** (deg) is the angle between the disk's axis and our
# line of sight: 0 is face-on, 90 edge-on. Only the velocity component along
# the line of sight is seen, so speeds scale as `sin(inc)`: a face-on disk
# shows no rotation at all. The disk also looks squeezed along its minor axis
# by `cos(inc)`, which pinches the iso-velocity contours into the familiar
# "butterfly". The sign of `inc` is the sense of rotation: `-46.7` is the same
# disk turning the other way, so red and blue swap sides.

# %%
gallery("inc", [10, 30, 46.7, 75, -46.7], "deg")
plt.show()

# %% [markdown]
# **`PA`, the position angle** (deg) is the direction of the red-shifted half
# of the major axis, measured from north through east (counter-clockwise on
# the sky, where east is left). Changing it just rotates the pattern.

# %%
gallery("PA", [0, 90, 180, 312], "deg")
plt.show()

# %% [markdown]
# **`x0`, `y0`** (arcsec) move the disk's centre from the image centre (east and
# north positive). A fit needs them because a star is rarely exactly at the
# phase centre; here they are exaggerated.

# %%
gallery("x0", [-1.0, 0.0, 1.0], "arcsec")
plt.show()

# %% [markdown]
# ### Star
#
# **`mstar`** (Msun) sets the speed: `v_kep ∝ sqrt(mstar)`. The contours keep
# their shape but every speed scales, so the ±1 km/s contour moves out for a
# heavier star. Note that `mstar` and `inc` both scale the projected speed
# (`sqrt(mstar) sin(inc)`): only the shape of the contours, set by `cos(inc)`,
# separates them, so the two are correlated in any fit (exercise 1 shows it).
#
# **`dist`** (pc) converts arcsec to au: at fixed angular radius a farther disk
# is physically larger and rotates more slowly, `v ∝ sqrt(mstar / dist)`. That
# is why the distance is fixed in a fit (it is degenerate with the mass) and
# why a mass from a rotation map is only as good as the distance (exercise 2).
#
# **`vlsr`** (m/s), the systemic velocity, adds the same velocity everywhere;
# here it would only change the colours, so it is not shown.

# %%
gallery("mstar", [0.5, 1.0, 2.02, 4.0], "Msun")
gallery("dist", [50, 101, 200], "pc")
plt.show()

# %% [markdown]
# ### Emission surface
#
# Molecular lines like CO are emitted from a layer high above the midplane,
# `z(r) = z0 * r_eff**psi * exp(-(r_eff / r_taper)**q_taper)` with
# `r_eff = max(r - r_cavity, 0)`, the radius measured from the cavity's edge
# (astro-eddy's convention):
#
# - **`z0`** (arcsec): the height 1 arcsec outside the cavity, before the
#   taper; 0 is a flat disk;
# - **`psi`**: the flaring index, how fast the height grows with radius
#   (`psi = 1` is a cone of opening angle `arctan(z0)`);
# - **`r_cavity`** (arcsec): inside it the surface lies in the midplane;
# - **`r_taper`** (arcsec) and **`q_taper`**: the exponential taper that brings
#   the surface back down in the outer disk (the gas gets too thin to emit);
#   like the height, the taper is measured from `r_cavity`.
#
# On the sky, a raised surface moves each ring of the disk along the minor
# axis (pictured further down), so the iso-velocity contours lose their
# front-back symmetry and bend: that bend is how a fit measures the height.

# %%
gallery("z0", [0.0, 0.1, 0.26, 0.4], "arcsec")
gallery("psi", [1.0, 1.7, 2.5])
plt.show()

# %% [markdown]
# The profile `z(r)` itself, with the example's values (black) and changes of
# one parameter at a time:

# %%
r = np.linspace(0.0, 5.0, 400)


def surface(**changes):
    p = truths | changes
    return np.asarray(emission_surface(r, p["z0"], p["psi"], p["r_cavity"],
                                       p["r_taper"], p["q_taper"]))


fig, axes = plt.subplots(1, 4, figsize=(13, 2.9), constrained_layout=True, sharey=True)
for ax, (name, values) in zip(axes, [("psi", [1.0, 1.25, 2.0]),
                                     ("r_taper", [2.0, 4.0, 1e3]),
                                     ("q_taper", [1.0, 4.0]),
                                     ("r_cavity", [0.5, 1.0])]):
    ax.plot(r, surface(), color="k", label="example")
    for value in values:
        ax.plot(r, surface(**{name: value}), label=f"{name} = {value:g}")
    ax.set_xlabel("r [arcsec]")
    ax.legend(fontsize=8)
axes[0].set_ylabel("z [arcsec]")
print(f"example: z(1 arcsec) = {np.interp(1.0, r, surface()):.3f} arcsec, highest "
      f"z = {surface().max():.2f} arcsec at r = {r[surface().argmax()]:.1f} arcsec")

# %% [markdown]
# Where each line of sight meets that surface gives the disk radius seen at
# each pixel. For a flat disk the contours of constant radius are ellipses
# centred on the star. On the flared surface a ring of radius `r` sits at
# height `z(r)`, which moves it on the sky by `z(r) sin(inc)` along the minor
# axis: the rings are no longer concentric, the higher (outer) ones shifted the
# most.

# %%
x, y = np.meshgrid(cube.xaxis, cube.yaxis)
fig, axes = plt.subplots(1, 2, figsize=(8, 3.8), constrained_layout=True, sharey=True)
for ax, z0 in zip(axes, [None, truths["z0"]]):
    p = truths | {"z0": z0}
    rr, phi, zz = (np.asarray(a) for a in disk_coords(
        x, y, p["x0"], p["y0"], p["inc"], p["PA"], p["z0"], p["psi"], p["r_cavity"],
        p["r_taper"], p["q_taper"]))
    lines = ax.contour(cube.xaxis, cube.yaxis, rr, [0.5, 1, 1.5, 2, 2.5, 3, 3.5],
                       cmap="viridis")
    ax.clabel(lines, fontsize=7, fmt="%g")
    ax.plot(p["x0"], p["y0"], "k*")
    ax.set_xlim(cube.extent[:2])
    ax.set_title("flat disk (z0 off)" if z0 is None else f"flared surface (z0 = {z0})",
                 fontsize=10)
    ax.set_xlabel("arcsec")
axes[0].set_ylabel("arcsec")
plt.show()

# %% [markdown]
# ## Move the sliders
#
# Every slider below redraws the model map (left), the residual `data - model`
# against the bundled example (middle) and the emission surface profile
# (right) as it moves. Start from the example's values and try:
#
# - `inc` towards 0: the rotation disappears; negative: it turns around;
# - `mstar` up and down: the residual shows red and blue halves when the speed
#   is wrong;
# - `z0` to 0: the residual shows a front-back pattern, the signature of the
#   surface height;
# - `x0`: a dipole in the residual at the centre.
#
# The explorer is a widget of the package, `ModelExplorer`: its sliders come
# from the parameter table (names, units, ranges; hover over a name for its
# description), and it evaluates the package's own model, compiled once, so
# the map is exactly what `cube.evaluate_models` gives for those values. The
# maps are [bqplot](https://bqplot.github.io/bqplot/) figures that pan and zoom
# together, with the beam in a corner and colour limits and stretch under
# each; only the new arrays are sent to the browser, so they follow the
# slider (the grey line under the plots says how long the last redraw took).
# A static copy of this page shows the sliders but cannot move them: run the
# notebook.

# %%
from eddy_widgets.widgets.explorer import ModelExplorer

explorer = ModelExplorer(cube, truths)
explorer

# %% [markdown]
# A slider can also be moved from code, which is what the cell below does (a
# stored copy of the notebook cannot move them for you). The readout under
# the plots follows:

# %%
explorer.set(inc=46.7, mstar=1.5)
print("mstar 1.5 Msun:", explorer.readout.value)
explorer.set(mstar=truths["mstar"])
print("mstar 2.02 Msun:", explorer.readout.value)
explorer.set(z0=0.0)
print("flat disk:      ", explorer.readout.value)
explorer.reset()

# %% [markdown]
# A model that is too light leaves the two halves of the residual map red and
# blue (an rms of hundreds of m/s), the example's values leave only the noise
# (its rms, under 100 m/s), and a flat disk leaves a front-back pattern.
#
# How fast is a redraw? (Timings depend on the machine, so this cell's output is
# not compared by the notebook tests.)

# %% tags=nbval-ignore-output
import time

theta = jnp.array([float(truths[n]) for n in NAMES])
model_from_vector(theta).block_until_ready()
t0 = time.perf_counter()
for _ in range(50):
    model_from_vector(theta).block_until_ready()
t_model = (time.perf_counter() - t0) / 50
t_redraw = []
for k in range(20):
    explorer.sliders["inc"].value = 40.0 + k * 0.5
    t_redraw.append(explorer.redraw_ms)
explorer.reset()
print(f"model map: {1e3 * t_model:.1f} ms; whole redraw (model, residual, surface, "
      f"readout, sent): median {np.median(t_redraw):.1f} ms, slowest "
      f"{max(t_redraw):.1f} ms")

# %% [markdown]
# Both are far below the ~50 ms at which a redraw starts to lag behind the mouse.
#
# ## Next
#
# The fit turns this around: it searches for the parameters whose model map
# leaves the smallest residual, given the noise. [03 fitting with
# emcee](03_fitting_with_emcee.ipynb) does it from a script; exercise 1 in
# `exercises/` asks you to find the inclination with a slider first.
