"""Tampered result files: every problem a :class:`ResultFileError` naming the
file and the field, found from the file's headers before anything is
inflated, and no pickled code ever run (issue 19, item 13)."""

from __future__ import annotations

import io
import json
from pathlib import Path
import tracemalloc
import zipfile

import numpy as np
import pytest

from eddy_widgets import FitResult
from eddy_widgets.inference import result_file
from eddy_widgets.inference.backends import get_backend
from eddy_widgets.inference.result import ResultFileError

from helpers import tutorial_params

#: Three free parameters: a tampered ``names: "mst"`` has as many letters.
P0 = [312.0, 2.0, 5.7e3]


def _params(cube) -> dict:
    params = tutorial_params(cube)
    params.update(x0=0.0, y0=0.0, z0=0.25, psi=1.0, r_taper=3.0, q_taper=2.0,
                  PA=0, mstar=1, vlsr=2)
    return params


def _fit(cube, mcmc="emcee"):
    run = cube.prepare_fit(P0, _params(cube), optimize=False, nwalkers=8, nburnin=2,
                           nsteps=3, mcmc=mcmc, verbose=False, mcmc_kwargs={"seed": 3})
    return run.run()


@pytest.fixture(scope="module")
def genuine(cube, tmp_path_factory) -> Path:
    """A result file written by a real (short) emcee run."""
    return _fit(cube).save(tmp_path_factory.mktemp("genuine") / "result.npz")


def _npy(array, allow_pickle=False) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=allow_pickle)
    return buffer.getvalue()


def _meta(path) -> dict:
    with zipfile.ZipFile(path) as zf, zf.open("meta.npy") as fh:
        return json.loads(str(np.lib.format.read_array(fh)))


def _tampered(src, dst, entries=None, meta=None) -> Path:
    """A copy of ``src`` with ``entries`` (``{name: .npy bytes or None}``;
    ``None`` drops the entry) and ``meta`` (a function changing the metadata
    in place) applied."""
    entries = dict(entries or {})
    if meta is not None:
        changed = _meta(src)
        meta(changed)
        entries["meta"] = _npy(np.asarray(json.dumps(changed)))
    with zipfile.ZipFile(src) as old, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as new:
        for item in old.namelist():
            name = item[:-len(".npy")]
            if name not in entries:
                new.writestr(item, old.read(item))
        for name, data in entries.items():
            if data is not None:
                new.writestr(f"{name}.npy", data)
    return dst


def _header(shape, descr="<f8") -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": descr, "fortran_order": False, "shape": shape})
    return buffer.getvalue()


def test_a_genuine_file_loads_as_it_was_saved(cube, genuine):
    result = FitResult.load(genuine)
    assert result.names == ("PA", "mstar", "vlsr") and result.nchains == 8
    assert result.n_draws("sampling") == 3
    assert set(result.sampler_state) == set(get_backend("emcee").state_entries)


# -- Sizes, read from the headers before anything is inflated ----------------------


def test_a_header_claiming_a_huge_array_is_refused_before_it_is_allocated(genuine,
                                                                          tmp_path):
    # A (1e6, 1e6, 9) chain: 72 TB. The loader allocated it (MemoryError).
    with zipfile.ZipFile(genuine) as zf:
        data = zf.read("chain_sampling.npy")[len(_header((8, 3, 3))):]
    bad = _tampered(genuine, tmp_path / "huge.npz", {
        "chain_sampling": _header((10**6, 10**6, 9)) + data})
    with pytest.raises(ResultFileError, match=r"huge.npz: .*'chain_sampling'.*"
                                              r"\(1000000, 1000000, 9\)") as err:
        FitResult.load(bad)
    assert err.value.field == "chain_sampling" and err.value.path == bad


def test_a_small_file_that_inflates_to_gigabytes_is_refused_without_inflating(
        genuine, tmp_path):
    # log-probabilities of (8, 39_062_500) zeros: 2.5 GB, ~11 MB deflated
    # (compresslevel 1 keeps the writing to ~3 s; level 6 gives ~2.4 MB in
    # ~7 s). Written in chunks: never in memory here either.
    bomb = _tampered(genuine, tmp_path / "bomb.npz", {"logp_sampling": None})
    shape = (8, 39_062_500)
    nbytes = 8 * shape[0] * shape[1]
    with zipfile.ZipFile(bomb, "a", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        with zf.open("logp_sampling.npy", "w", force_zip64=True) as fh:
            fh.write(_header(shape))
            zeros = bytes(1 << 22)
            for start in range(0, nbytes, len(zeros)):
                fh.write(zeros[:nbytes - start] if nbytes - start < len(zeros)
                         else zeros)
    assert bomb.stat().st_size < 20e6
    tracemalloc.start()
    try:
        with pytest.raises(ResultFileError) as err:
            FitResult.load(bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 200e6, f"the loader's peak memory was {peak / 1e6:.0f} MB"
    assert err.value.field == "logp_sampling"
    assert str(err.value).startswith(f"{bomb}: ")


def test_a_file_that_needs_more_memory_than_is_free_is_refused(genuine, tmp_path,
                                                              monkeypatch):
    # Consistent arrays, but more than the machine has free (here: 1 MB).
    n = 20_000
    bad = _tampered(genuine, tmp_path / "big.npz", {
        "chain_sampling": _npy(np.zeros((8, n, 3))),
        "logp_sampling": _npy(np.zeros((8, n))),
        "stat_sampling_accepted": _npy(np.zeros((8, n), dtype=bool))})
    assert FitResult.load(bad).n_draws("sampling") == n
    monkeypatch.setattr(result_file, "available_memory", lambda: 1_000_000)
    with pytest.raises(ResultFileError, match=r"big.npz: .*needs [\d.]+ MB of memory"
                                              r".*'chain_sampling'.*only 1 MB is free"):
        FitResult.load(bad)


# -- The schema, checked before use -------------------------------------------------


TAMPERED_META = {
    "nchains": (lambda m: m.update(nchains="eight"), r"'nchains' is 'eight'"),
    "names": (lambda m: m.update(names="mst"), r"'names' is 'mst'"),
    "names_of_others": (lambda m: m.update(names=["m", "s", "t"]),
                        r"'names' \['m', 's', 't'\] .* 'settings.params.free'"),
    "stopped": (lambda m: m.update(stopped="no"), r"'stopped' is 'no'"),
    "settings": (lambda m: m.pop("settings"), r"'settings' is missing"),
    "params": (lambda m: m["settings"].pop("params"), r"'settings.params' is missing"),
    "start": (lambda m: m["settings"].update(start=[1.0, 2.0]),
              r"'settings.start' .*3 numbers"),
    "options": (lambda m: m["settings"].update(options="fast"),
                r"'settings.options' is 'fast'"),
    "priors": (lambda m: m["settings"].update(priors={"mstar": "flat"}),
               r"'settings.priors.mstar'"),
    "backend": (lambda m: m.update(backend="pymc"), r"'backend' is 'pymc'"),
    "format": (lambda m: m.update(format=99), r"'format' 99.*newer"),
    "target": (lambda m: m.update(n_samples_target=-5), r"'n_samples_target' is -5"),
}


@pytest.mark.parametrize("case", TAMPERED_META)
def test_tampered_metadata_is_refused_naming_the_field(genuine, tmp_path, case):
    change, message = TAMPERED_META[case]
    bad = _tampered(genuine, tmp_path / f"{case}.npz", meta=change)
    with pytest.raises(ResultFileError, match=rf"{case}.npz: .*{message}"):
        FitResult.load(bad)


@pytest.mark.parametrize("entries, message", [
    ({"state_rng_key": None}, r"'state_rng_key' is missing"),
    ({f"state_{k}": None for k in get_backend("emcee").state_entries},
     r"'state_coords' is missing"),
    ({"state_coords": _npy(np.zeros((8, 2)))},
     r"'state_coords' has shape \(8, 2\), expected \(8, 3\)"),
    ({"chain_warmup": _npy(np.zeros((8, 2, 3), dtype=np.int64))},
     r"'chain_warmup' holds int64"),
    ({"stat_sampling_accepted": _npy(np.zeros((8, 4), dtype=bool))},
     r"'stat_sampling_accepted' has shape \(8, 4\)"),
    ({"meta": _npy(np.asarray("not json"))}, r"'meta' is not JSON"),
    ({"meta": _npy(np.asarray("[1, 2]"))}, r"'meta' is not a JSON object"),
    ({"meta": _npy(np.zeros(3))}, r"'meta' holds float64"),
    ({"meta": None}, r"no 'meta' entry"),
])
def test_missing_or_misshapen_arrays_are_refused_naming_the_entry(genuine, tmp_path,
                                                                  entries, message):
    bad = _tampered(genuine, tmp_path / "bad.npz", entries)
    with pytest.raises(ResultFileError, match=rf"bad.npz: .*{message}"):
        FitResult.load(bad)


def test_the_sampler_state_table_matches_what_the_samplers_write(cube, genuine):
    # Backend.state_entries names what each sampler's export_state writes.
    for backend, result in (("emcee", FitResult.load(genuine)),
                            ("zeus", _fit(cube, "zeus"))):
        state = result.sampler_state
        table = get_backend(backend).state_entries
        assert set(state) == set(table), backend
        shapes = {"n": result.nchains, "d": len(result.names)}
        for key, shape in table.items():
            assert np.shape(state[key]) == tuple(shapes.get(s, s) for s in shape), key


def test_a_numpyro_state_with_a_leaf_missing_is_refused(genuine, tmp_path):
    def numpyro(meta):
        meta.update(backend="numpyro", nchains=8)
        meta["settings"].update(standardizer_centre=[0.0] * 3,
                                standardizer_scale=[1.0] * 3)

    leaves = {f"state_nuts_leaf_{i:03d}": _npy(np.zeros(3)) for i in (0, 1, 3)}
    drop = {f"state_{k}": None for k in get_backend("emcee").state_entries}
    drop["stat_sampling_accepted"] = drop["stat_warmup_accepted"] = None
    bad = _tampered(genuine, tmp_path / "nuts.npz", {**drop, **leaves}, meta=numpyro)
    with pytest.raises(ResultFileError, match=r"nuts.npz: .*'state_nuts_leaf_002' "
                                              r"is missing"):
        FitResult.load(bad)
    whole = {**leaves, "state_nuts_leaf_002": _npy(np.zeros(3))}
    good = _tampered(genuine, tmp_path / "whole.npz", {**drop, **whole}, meta=numpyro)
    assert len(FitResult.load(good).sampler_state) == 4


# -- No pickle ever runs ------------------------------------------------------------


class Explosive:
    """Unpickled, it creates ``marker``: proof that pickled code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_an_object_array_is_refused_without_unpickling_it(genuine, tmp_path):
    # The payload is live: loaded with pickles allowed, it creates its marker.
    control = tmp_path / "control"
    payload = _npy(np.array([Explosive(control)], dtype=object), allow_pickle=True)
    np.load(io.BytesIO(payload), allow_pickle=True)
    assert control.exists()

    marker = tmp_path / "marker"
    payload = _npy(np.array([Explosive(marker)], dtype=object), allow_pickle=True)
    for name in ("meta", "state_coords", "chain_sampling", "stat_warmup_accepted"):
        bad = _tampered(genuine, tmp_path / f"{name}.npz", {name: payload})
        with pytest.raises(ResultFileError, match=rf"{name}.npz: .*'{name}' holds "
                                                  r"Python objects"):
            FitResult.load(bad)
    # Also in an entry the loader does not use.
    extra = _tampered(genuine, tmp_path / "extra.npz", {"extra": payload})
    with pytest.raises(ResultFileError, match=r"'extra' holds Python objects"):
        FitResult.load(extra)
    assert not marker.exists()
