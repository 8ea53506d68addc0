"""The model explorer under the noise model: its parameters are the
likelihood's, so the explorer has no slider and no tab for them, and a
correlated fit's params open it as any other."""

from __future__ import annotations

import pytest

from eddy_widgets.data import load_example
from eddy_widgets.parameters import GROUPS, NOISE_PARAMETERS
from eddy_widgets.rotationmap import rotationmap
from eddy_widgets.widgets.explorer import ModelExplorer


@pytest.fixture(scope="module")
def cube():
    return rotationmap(load_example().v0, FOV=4.0, downsample=8)


def _titles(explorer) -> list[str]:
    tabs = explorer.children[0].children[0]
    return [tabs.get_title(i) for i in range(len(tabs.children))]


def test_the_explorer_has_no_noise_tab(cube):
    truths = dict(load_example().truths)
    explorer = ModelExplorer(cube, truths)
    assert GROUPS["noise"] not in _titles(explorer)
    assert not set(NOISE_PARAMETERS) & set(explorer.sliders)
    assert not set(NOISE_PARAMETERS) & set(explorer.values)
    # A correlated fit's params (noise_scale an index into p0, the kernel
    # fixed) show the same model, without the noise settings.
    params = dict(truths, mstar=0, noise_scale=1, noise_nugget=0.2, noise_width=1.1,
                  noise="correlated", noise_clip=4.0)
    noisy = ModelExplorer(cube, params, p0=[truths["mstar"], 1.3])
    assert list(noisy.sliders) == list(explorer.sliders)
    assert GROUPS["noise"] not in _titles(noisy)
    assert not {"noise", "noise_clip", *NOISE_PARAMETERS} & set(noisy.params)
    assert (noisy.model_map == explorer.model_map).all()
    with pytest.raises(ValueError, match="No slider"):
        ModelExplorer(cube, truths, sliders=["inc", "noise_scale"])
