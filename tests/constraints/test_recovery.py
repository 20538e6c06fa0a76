"""Recovery per course and per organ, refused where the protocol's limits forbid it."""
import numpy as np
import pytest

from constraints import DoseCourse, Grid, InputError, Structure, load_protocol
from constraints.accumulate import cumulative_bed
from constraints.evaluation import PlanCase, evaluate_protocol
from constraints.recovery import check_recovery, limits_forbidding_recovery, recovery_assumptions

P = load_protocol("koide2024")
G = Grid((0, 0, 0), (10, 10, 10), (1, 3, 4))


def mask(*cells):
    m = np.zeros(G.shape_zyx)
    for iy, ix in cells:
        m[0, iy, ix] = 1.0
    return m


def fatal_case(recovery):
    """The seed's TRD patient: 60 Gy/30 fx then 24.77 Gy/2 fx in the hottest esophageal voxel
    (BED3 100 + 127 = 227 > 203); with r = 0.25: 75 + 127 = 202 < 203 would pass."""
    sbrt = np.zeros(G.shape_zyx)
    prior = np.zeros(G.shape_zyx)
    sbrt[0, 0, :] = [24.77, 18.0, 15.0, 10.0]
    prior[0, 0, :] = 60.0
    sbrt[0, 1, :2] = 8.0
    prior[0, 1, :2] = 40.0
    sbrt[0, 2, :] = 24.0
    structures = {
        "esophagus": Structure("Esophagus", "oar", mask((0, 0), (0, 1), (0, 2), (0, 3)), G),
        "spinal_cord_prv": Structure("SpinalCord_PRV", "oar", mask((1, 0), (1, 1)), G),
        "ptv_eval": Structure("PTVeval", "target", mask((2, 0), (2, 1), (2, 2), (2, 3)), G),
        "aorta": Structure("Aorta", "oar", mask((1, 2)), G),
    }
    return PlanCase(G, structures, DoseCourse(sbrt, G, 2, "SBRT"),
                    (DoseCourse(prior, G, 30, "Prior 60Gy/30fx", recovery=recovery),))


def test_koide2024_forbids_recovery_in_the_esophageal_limits_and_the_cord_table():
    f = limits_forbidding_recovery(P)
    assert {"esophagus_cum_dmax", "esophagus_cum_d0035cc", "esophagus_cum_d1cc"} <= set(f["esophagus"])
    assert "cord_prv_sbrt_d0035cc (table input)" in f["spinal_cord_prv"]
    assert "aorta" not in f


def test_seed_fatal_case_with_recovery_is_refused_never_passed():
    # without the refusal: (1 - 0.25) * 100 + 127 = 202 < 203 Gy3 would pass the limit the TRD patient broke
    assert float(cumulative_bed(fatal_case(0.25).priors, 3.0, "esophagus")[0, 0, 0]) + 24.77 * (1 + 24.77 / 6) \
        == pytest.approx(202.0, abs=0.1)
    with pytest.raises(InputError, match=r"prior course 'Prior 60Gy/30fx' claims recovery 0.25 for organ "
                                         r"'spinal_cord_prv'.*0.25 for organ 'esophagus', whose limit\(s\) "
                                         r"esophagus_cum_dmax, esophagus_cum_d0035cc, esophagus_cum_d1cc forbid it"):
        evaluate_protocol(fatal_case(0.25), P)
    # the per-organ form is refused too where it names a forbidding organ
    with pytest.raises(InputError, match="'esophagus', whose limit"):
        evaluate_protocol(fatal_case({"esophagus": 0.25}), P)
    ev = evaluate_protocol(fatal_case(0.0), P)
    r = {x.constraint_id: x for x in ev.results}
    assert not r["esophagus_cum_dmax"].passed and r["esophagus_cum_dmax"].value == pytest.approx(227.0, abs=0.1)


def test_per_organ_recovery_applies_only_where_named_and_allowed():
    case = fatal_case({"aorta": 0.25})
    ev = evaluate_protocol(case, P)            # allowed: no aorta limit forbids it
    r = {x.constraint_id: x for x in ev.results}
    assert r["esophagus_cum_dmax"].value == pytest.approx(227.0, abs=0.1)   # esophagus counted in full
    p = case.priors[0]
    assert p.recovery_for("aorta") == 0.25 and p.recovery_for("esophagus") == 0.0 and p.recovery_for(None) == 0.0
    # aorta voxel: prior 0 there; the course BED of a 40 Gy voxel at a/b 3 is scaled by 0.75 for the aorta only
    b = cumulative_bed(case.priors, 3.0, "aorta")[0, 1, 0]
    assert b == pytest.approx(0.75 * 40 * (1 + 40 / 90))
    assert recovery_assumptions(case.priors) == [
        "prior course 'Prior 60Gy/30fx': recovery assumed aorta r = 0.25 (BED counted at 75 %); other organs none"]
    assert recovery_assumptions(fatal_case(0.0).priors)[0].startswith("no recovery assumed")


def test_unknown_organ_in_recovery_table_is_refused():
    with pytest.raises(InputError, match=r"recovery names unknown organ\(s\) \['aortta'\]"):
        check_recovery(fatal_case({"aortta": 0.1}).priors, P)
    with pytest.raises(InputError, match=r"recovery\['aorta'\] must be in \[0, 1\)"):
        fatal_case({"aorta": 1.5})
