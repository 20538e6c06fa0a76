"""Exempting part of a banded organ's largest-volume limit (tps_scripts.volume_exemption)."""
from types import SimpleNamespace

import numpy as np
import pytest

from constraints.protocol import load_protocol
from optimizer.organ_limits import OrganLimits
from tps_scripts.limit_zones import Zone
from tps_scripts.tuning_settings import TuningSettings
from tps_scripts.volume_exemption import add_exemptions, exemption_failures
from tps_scripts.zone_tuning import tighten_failing_zones

VOXEL_CC = 0.125          # 5 mm dose grid


def _band(name, first, n_voxels=16, strict_gy=12.0):
    cov = np.zeros(64)
    cov[first:first + n_voxels] = 1.0
    return Zone("esophagus", name, "band", cov, np.full(64, strict_gy), 0.3, True)


def _limits(strict_gy=12.0, relaxed_gy=15.0, budget_cc=1.0):
    return {"esophagus": OrganLimits("esophagus", "Esophagus", np.full(64, strict_gy),
                                     None if relaxed_gy is None else np.full(64, relaxed_gy), budget_cc, 20.0, (), 0)}


def _case(dose_gy):
    return SimpleNamespace(sbrt=SimpleNamespace(dose_gy=np.asarray(dose_gy, dtype=float)),
                           grid=SimpleNamespace(voxel_volume_cc=VOXEL_CC))


def test_budget_shared_by_the_plan_as_loaded_volume_near_each_band_level():
    a, b, c = _band("rr_E_z1", 0, n_voxels=4), _band("rr_E_z2", 16), _band("rr_E_z3", 32)
    dose = np.full(64, 5.0)
    dose[0:3] = 11.0      # band 1: 3 voxels above 12 - 2 = 10 Gy -> 0.375 cc
    dose[16] = 13.0       # band 2: 1 voxel -> 0.125 cc
    caps = add_exemptions([a, b, c], _case(dose), _limits(), fraction=0.9, near_gy=2.0)
    # 0.9 x 1 cc shared 3 : 1 -> 0.675 and 0.225 cc; band 1 (4 voxels, 0.5 cc) keeps at most half
    # of its own volume, 0.25 cc; band 3 has no voxel near its level and exempts nothing
    assert a.exempt_cc == pytest.approx(0.25)
    assert b.exempt_cc == pytest.approx(0.225)
    assert c.exempt_cc is None
    assert [(z.roi_name, z.kind, z.created, z.key) for z in caps] == [
        ("rr_E_z1", "cap", False, "rr_E_z1 (cap)"), ("rr_E_z2", "cap", False, "rr_E_z2 (cap)")]
    # the cap holds the relaxed limit (15 Gy) at the band's margin: 15 - 0.3 = 14.7 Gy
    assert caps[0].level_gy() == pytest.approx(14.7)
    assert np.array_equal(caps[1].coverage, b.coverage)


def test_nothing_exempted_without_budget_relaxed_limit_or_nearby_dose_or_with_a_hot_region():
    dose = np.full(64, 11.5)
    for limits in (_limits(relaxed_gy=None), _limits(budget_cc=None)):
        band = _band("rr_E_z1", 0)
        assert add_exemptions([band], _case(dose), limits, fraction=0.9, near_gy=2.0) == []
        assert band.exempt_cc is None
    cold = _band("rr_E_z1", 0)
    assert add_exemptions([cold], _case(np.zeros(64)), _limits(), fraction=0.9, near_gy=2.0) == []
    band = _band("rr_E_z1", 0)
    hot = Zone("esophagus", "rr_E_hot", "hot", np.ones(64), np.full(64, 15.0), 0.3, True)
    assert add_exemptions([hot, band], _case(dose), _limits(), fraction=0.9, near_gy=2.0) == []


def test_exemption_failures_name_the_organ_of_the_spent_volume_limit():
    protocol = load_protocol("koide2024")
    limits = _limits()
    assert exemption_failures(["esophagus_cum_d1cc"], protocol, limits) == ["esophagus"]
    # the D0.035cc limit is the cap's (relaxed map), not the exempted volume's
    assert exemption_failures(["esophagus_cum_d0035cc", "cord_prv_sbrt_d0035cc"], protocol, limits) == []
    assert exemption_failures(["esophagus_cum_d1cc"], protocol, {}) == []


def test_a_spent_exemption_shrinks_and_its_level_drops_by_the_extra():
    band = _band("rr_E_z1", 0)
    band.exempt_cc, band.dvh_percent = 0.4, 20.0
    other = _band("rr_E_z2", 16)
    other.exempt_cc, other.dvh_percent = 0.2, 10.0
    entry = {"zone_excess_gy": {"rr_E_z1": 3.0, "rr_E_z2": 2.0}, "subvoxel_excess_gy": {}, "metric_excess_gy": {},
             "exemption_failures": [], "changes": []}
    floors = {}
    # the organ passes its D1cc: voxels above the strict level are what was asked for
    tighten_failing_zones([band, other], entry, TuningSettings(), floors)
    assert (band.exempt_cc, band.margin_gy, entry["changes"]) == (0.4, 0.3, [])
    entry["exemption_failures"] = ["esophagus"]
    tighten_failing_zones([band, other], entry, TuningSettings(), floors)
    # halved (exempt_shrink_factor 0.5): 0.4 -> 0.2 cc, 20 -> 10 %; margin 0.3 + 0.1 = 0.4 Gy, a floor
    assert (band.exempt_cc, band.dvh_percent, band.margin_gy) == pytest.approx((0.2, 10.0, 0.4))
    assert (other.exempt_cc, other.dvh_percent) == pytest.approx((0.1, 5.0))
    assert floors == pytest.approx({"rr_E_z1": 0.4, "rr_E_z2": 0.4})
    assert entry["changes"][0] == "tighten rr_E_z1 to 11.60 Gy (exempt 0.2 cc)"


def test_cumulative_excess_as_new_physical_dose():
    from constraints.domain import DoseDomain
    from tps_scripts.zone_tuning import cumulative_excess
    protocol = load_protocol("koide2024")          # esophagus alpha/beta 3 Gy
    bed, eqd2 = DoseDomain.parse("cumulative_bed"), DoseDomain.parse("cumulative_eqd2")
    results = [
        SimpleNamespace(organ="esophagus", domain=bed, limit=203.0, value=201.0, value_subvoxel=208.0, passed=False),
        SimpleNamespace(organ="esophagus", domain=bed, limit=187.0, value=188.0, value_subvoxel=187.5, passed=False),
        SimpleNamespace(organ="trachea", domain=eqd2, limit=100.0, value=101.0, value_subvoxel=None, passed=False),
        SimpleNamespace(organ="lungs", domain=DoseDomain.parse("sbrt_physical"), limit=20.0, value=21.0,
                        value_subvoxel=None, passed=False),
    ]
    ev = SimpleNamespace(failures=lambda: results)
    dose = np.array([19.0, 12.0, 0.0])                       # the esophagus' highest dose 19 Gy
    structures = {"esophagus": SimpleNamespace(mask=np.array([1.0, 0.5, 0.0])),
                  "trachea": SimpleNamespace(mask=np.array([0.0, 0.0, 1.0]))}
    out = cumulative_excess(ev, protocol, 2, dose, structures)
    # esophagus: the sub-voxel Dmax 208 - 203 = 5 Gy BED at d = 19 Gy, 2 fx, a/b 3: 5 / (1 + 38/6) = 0.682 Gy
    # (the D0.035cc's 1 Gy BED gives less); trachea (a/b 3): 1 Gy EQD2 = 1 x (1 + 2/3) Gy BED at d = 0: 1.667 Gy
    assert out == pytest.approx({"esophagus": 5.0 / (1.0 + 38.0 / 6.0), "trachea": 5.0 / 3.0})
