"""Complete priors: every evaluation dose on the planning CT is a prior course or excluded by name;
the mapped dose's maximum matches its stated total; registration uncertainty widens a prior."""
import dataclasses

import numpy as np
import pytest

import mock_tps
from constraints.errors import InputError
from tps_scripts.adapter import PRIOR_MAX_TO_TOTAL, check_prior_total, total_from_name
from tps_scripts.config import PluginConfig, PriorConfig

# the two courses of the t8_two_courses phantom, on the small synthetic patient (loads in milliseconds)
T8_NAMES = ("Prior EBRT 1 30Gy/10fx", "Prior EBRT 2 20Gy/5fx")


def _load(priors):
    from _mock_synthetic import DOSE_GRID, make_phantom_data
    from mock_tps._phantom_data import PriorCourseSpec
    specs = tuple(PriorCourseSpec(name, dose if isinstance(dose, np.ndarray) else np.full(DOSE_GRID.shape_zyx, dose),
                                  DOSE_GRID, fx, "2023-01-01") for name, dose, fx in priors)
    mock_tps.load_patient_data(dataclasses.replace(make_phantom_data(), prior_courses=specs), initial_plan="sbrt_only")


def _assess(config=None):
    import connect
    from tps_scripts.assess import run_assessment
    return run_assessment(api=connect, config=config or PluginConfig())[1]


@pytest.fixture
def unload():
    yield
    mock_tps.unload()


def test_unnamed_dose_is_refused(out_dir, unload):
    _load([("Prior EBRT 10Gy/5fx", 10.0, 5), ("", 20.0, 5)])
    with pytest.raises(InputError, match=r"1 evaluation dose\(s\) on examination 'CT 1' have no name.*never assume"):
        _assess()
    assert not out_dir.exists()


def test_configuring_one_of_two_courses_names_the_other(out_dir, unload):
    _load([(T8_NAMES[0], 30.0, 10), (T8_NAMES[1], 20.0, 5)])
    config = PluginConfig(priors=(PriorConfig(T8_NAMES[0], 10),))
    with pytest.raises(InputError, match=r"evaluation dose\(s\) \['Prior EBRT 2 20Gy/5fx'\] .* are neither configured "
                                         r"prior courses nor excluded"):
        _assess(config)
    assert not out_dir.exists()


def test_both_courses_configured_or_one_excluded(out_dir, unload):
    _load([(T8_NAMES[0], 30.0, 10), (T8_NAMES[1], 20.0, 5)])
    rec = _assess(PluginConfig(priors=(PriorConfig(T8_NAMES[0], 10), PriorConfig(T8_NAMES[1], 5))))
    assert [p["name"] for p in rec["inputs"]["priors"]] == list(T8_NAMES)
    # excluding the second by name: it is listed as excluded, not silently dropped
    rec = _assess(PluginConfig(priors=(PriorConfig(T8_NAMES[0], 10),), exclude_doses=(T8_NAMES[1],)))
    assert [p["name"] for p in rec["inputs"]["priors"]] == [T8_NAMES[0]]
    assert rec["inputs"]["excluded_doses"] == [T8_NAMES[1]]
    # without a configuration both are found from their names
    rec = _assess()
    assert sorted((p["name"], p["fractions"], p["total_gy"]) for p in rec["inputs"]["priors"]) == \
        [(T8_NAMES[0], 10, 30.0), (T8_NAMES[1], 5, 20.0)]


def test_two_doses_with_one_name_are_refused(out_dir, unload):
    # reirrad tells courses apart by name: a second dose of the same name would be dropped
    _load([("Prior EBRT 10Gy/5fx", 10.0, 5), ("Prior EBRT 10Gy/5fx", 10.0, 5)])
    with pytest.raises(InputError, match=r"share the name\(s\) \['Prior EBRT 10Gy/5fx'\]"):
        _assess()


def test_excluding_an_absent_dose_is_refused(out_dir, unload):
    _load([("Prior EBRT 10Gy/5fx", 10.0, 5)])
    with pytest.raises(InputError, match=r"exclude_doses names \['Sum'\], not among the evaluation doses"):
        _assess(PluginConfig(exclude_doses=("Sum",)))


def test_per_fraction_map_is_refused(out_dir, unload):
    # 10 Gy in 5 fx mapped as one fraction: max 2 Gy = 0.2 x the stated total (allowed from 0.9)
    _load([("Prior EBRT 10Gy/5fx", 2.0, 5)])
    with pytest.raises(InputError, match=r"maximum 2.00 Gy is 0.20 x its stated total 10 Gy, outside \[0.9, 2\] x "
                                         r"\(it looks like one fraction of 5\)"):
        _assess()
    assert not out_dir.exists()


def test_configured_total_without_total_in_name(out_dir, unload):
    _load([("Old course", 10.0, 5)])
    with pytest.raises(InputError, match=r"prior course 'Old course': its total dose is not stated"):
        _assess(PluginConfig(priors=(PriorConfig("Old course", 5),)))
    rec = _assess(PluginConfig(priors=(PriorConfig("Old course", 5, total_gy=10.0),)))
    assert rec["inputs"]["priors"][0]["mapped_max_gy"] == 10.0


@pytest.mark.parametrize("dmax, total, fx, ok", [
    (61.3, 60.0, 30, True),     # t4t5 phantom: 1.02 x
    (24.56, 20.0, 5, True),     # t8 second course: 1.23 x
    (54.0, 60.0, 30, True),     # the lower bound itself: 0.9 x 60
    (53.9, 60.0, 30, False),    # just below
    (120.0, 60.0, 3, True),     # a prior SBRT prescribed to the 50 % isodose: 2.0 x
    (120.1, 60.0, 3, False),
    (12.0, 24.0, 2, False),     # one of 2 fractions, even with a 1.0 hot spot: 0.5 x
])
def test_prior_total_tolerance(dmax, total, fx, ok):
    dose = np.array([[[0.0, dmax, np.nan]]])
    if ok:
        assert check_prior_total("p", dose, total, fx) == dmax
    else:
        with pytest.raises(InputError, match="outside"):
            check_prior_total("p", dose, total, fx)
    assert PRIOR_MAX_TO_TOTAL == (0.9, 2.0)


@pytest.mark.parametrize("name, total", [("Prior EBRT 60Gy/30fx", 60.0), ("50,4 Gy in 28 fractions", 50.4),
                                         ("no total", None)])
def test_total_from_name(name, total):
    assert total_from_name(name) == total


def test_registration_uncertainty_moves_a_step_edge(out_dir, unload):
    """A prior that is 10 Gy for y < 12 mm and 0 beyond, with 4 mm uncertainty on a 4 mm grid.

    Dose voxel centres in y: −38 + 4 j mm; the edge lies between centre 10 (j = 12, 10 Gy) and
    centre 14 (j = 13, 0 Gy).  The maximum over a sphere of 4 mm reaches exactly one voxel in y:
    centre 14 becomes 10 Gy, centre 18 stays 0 (8 mm from the edge's last 10 Gy voxel).
    """
    from _mock_synthetic import DOSE_GRID
    import connect
    from constraints.protocol import load_protocol
    from tps_scripts.adapter import gather
    y = DOSE_GRID.corner_mm[1] + DOSE_GRID.spacing_xyz_mm[1] * (np.arange(DOSE_GRID.shape_zyx[1]) + 0.5)
    step = np.broadcast_to(np.where(y < 12.0, 10.0, 0.0)[None, :, None], DOSE_GRID.shape_zyx).copy()
    _load([("Prior EBRT 10Gy/5fx", step, 5)])
    config = PluginConfig(priors=(PriorConfig("Prior EBRT 10Gy/5fx", 5, uncertainty_mm=4.0),))
    g = gather(connect, config, load_protocol("koide2024"))
    with_u, without = g.case.priors[0].dose_gy, g.nominal_case.priors[0].dose_gy
    assert y[12] == 10.0 and y[13] == 14.0 and y[14] == 18.0
    assert (without[:, 13] == 0.0).all() and (with_u[:, 13] == 10.0).all()
    assert (without[:, 14] == 0.0).all() and (with_u[:, 14] == 0.0).all()
    assert (with_u[:, :13] == 10.0).all()
    # the record and the report show the margins with (verdict) and without the uncertainty
    rec = _assess(config)
    reg = rec["registration_uncertainty"]
    assert reg["radius_mm"] == {"Prior EBRT 10Gy/5fx": 4.0}
    by_id = {r["id"]: r for r in reg["constraints"]}
    verdict = {c["id"]: c for c in rec["evaluation"]["constraints"]}
    for cid, r in by_id.items():
        assert r["margin_with"] == verdict[cid]["margin"]
        if r["margin_with"] is not None and r["margin_without"] is not None:
            assert r["margin_with"] <= r["margin_without"] + 1e-9     # the bound only ever tightens
    # the cord PRV (y 15.5-28.5 mm) touches the voxels of centre 14: its prior Dmax rises from 0 to 10 Gy, so its
    # cumulative Dmax margin drops by the prior's BED there
    cum = [r for cid, r in by_id.items() if cid.startswith("cord_prv_cum")]
    assert cum and all(r["margin_with"] < r["margin_without"] for r in cum)
