"""The bundled examples: what they hold is what their truths files say."""

from __future__ import annotations

import numpy as np
import pytest

from eddy_widgets import load_example, rotationmap


def test_unknown_example_lists_the_choices():
    with pytest.raises(ValueError, match="'HD163296_like', 'kink'"):
        load_example("planet")


def test_kink_example_holds_the_stated_perturbation():
    example = load_example("kink")
    kink = example.perturbation
    assert set(kink) >= {"r", "phi", "amplitude", "width"}
    cube = rotationmap(example.v0, FOV=8.0)
    truths = example.truths
    model = cube.evaluate_models(params={k: float(v) for k, v in truths.items()})
    residual = cube.data - model
    r, phi, _ = cube.disk_coords(**{k: truths[k] for k in (
        "x0", "y0", "inc", "PA", "z0", "psi", "r_cavity", "r_taper", "q_taper")})
    phi_k = np.radians(kink["phi"])
    d = np.hypot(r * np.cos(phi) - kink["r"] * np.cos(phi_k),
                 r * np.sin(phi) - kink["r"] * np.sin(phi_k))
    core = (d < 0.5 * kink["width"]) & np.isfinite(residual)
    far = (d > 5 * kink["width"]) & np.isfinite(residual)
    # Inside half a width the bump is >= 88% of its peak; far away nothing.
    weights = cube.error[core] ** -2
    bump = np.sum(weights * residual[core]) / np.sum(weights)
    assert bump == pytest.approx(0.94 * kink["amplitude"], abs=15.0)
    assert abs(np.mean(residual[far])) < 2.0
    assert np.std(residual[far] / cube.error[far]) == pytest.approx(1.0, abs=0.05)
