"""DoseDomain: scope and quantity as properties, text-identical in dicts, f-strings and JSON."""
import json

import numpy as np
import pytest

from constraints import DoseCourse, Grid, InputError, load_protocol
from constraints.domain import PROTOCOL_DOMAINS, DoseDomain
from constraints.evaluation import PlanCase, domain_dose
from constraints.protocol import DOMAINS


@pytest.mark.parametrize("text, scope, quantity, unit", [
    ("sbrt_physical", "sbrt", "physical", "Gy"),
    ("sbrt_bed", "sbrt", "bed", "Gy BED"),
    ("sbrt_eqd2", "sbrt", "eqd2", "Gy EQD2"),
    ("cumulative_physical", "cumulative", "physical", "Gy"),
    ("cumulative_bed", "cumulative", "bed", "Gy BED"),
    ("cumulative_eqd2", "cumulative", "eqd2", "Gy EQD2"),
])
def test_properties(text, scope, quantity, unit):
    d = DoseDomain(text)
    assert (d.scope, d.quantity, d.unit) == (scope, quantity, unit)
    assert d.is_sbrt == (scope == "sbrt") and d.is_cumulative == (scope == "cumulative")
    assert DoseDomain.of(scope, quantity) is d


def test_behaves_as_its_text():
    d = DoseDomain.CUMULATIVE_BED
    assert d == "cumulative_bed" and str(d) == "cumulative_bed" and f"{d}" == "cumulative_bed"
    assert f"{d:>16}" == "  cumulative_bed"
    assert json.dumps({"domain": d}) == '{"domain": "cumulative_bed"}'
    assert {"cumulative_bed": 1}[d] == 1 and {d: 1}["cumulative_bed"] == 1


def test_unknown_domain_is_an_input_error_naming_it():
    with pytest.raises(InputError, match=r"domain 'cumulative_dose' is not a dose domain; expected one of sbrt_physical"):
        DoseDomain.parse("cumulative_dose")
    with pytest.raises(InputError, match="'total_bed' is not a dose domain"):
        DoseDomain.of("total", "bed")


def test_protocol_limits_exclude_cumulative_physical():
    # physical doses of different fractionations do not add biologically: no limit may be stated in their sum
    assert DOMAINS is PROTOCOL_DOMAINS and DoseDomain.CUMULATIVE_PHYSICAL not in DOMAINS
    assert set(DOMAINS) == set(DoseDomain) - {DoseDomain.CUMULATIVE_PHYSICAL}
    p = load_protocol("koide2024")
    assert all(type(c.domain) is DoseDomain and c.unit == c.domain.unit for c in p.constraints)


def test_domain_dose_by_hand():
    g = Grid((0, 0, 0), (10, 10, 10), (1, 1, 2))
    sbrt = DoseCourse(np.array([[[12.0, 0.0]]]), g, 2, "SBRT")
    prior = DoseCourse(np.array([[[30.0, 40.0]]]), g, 10, "Prior")
    case = PlanCase(g, {}, sbrt, (prior,))
    # α/β 3: SBRT 12 Gy/2 fx: BED = 12 (1 + 6/3) = 36; prior 30 Gy/10 fx: 30 (1 + 3/3) = 60; 40 Gy/10 fx: 40 (1 + 4/3) = 93.33
    assert domain_dose(case, DoseDomain.SBRT_PHYSICAL, 3.0) == pytest.approx(np.array([[[12.0, 0.0]]]))
    assert domain_dose(case, DoseDomain.CUMULATIVE_PHYSICAL, 3.0) == pytest.approx(np.array([[[42.0, 40.0]]]))
    assert domain_dose(case, DoseDomain.SBRT_BED, 3.0) == pytest.approx(np.array([[[36.0, 0.0]]]))
    assert domain_dose(case, "cumulative_bed", 3.0) == pytest.approx(np.array([[[96.0, 280.0 / 3.0]]]))
    # EQD2 = BED / (1 + 2/3): 96 -> 57.6, 93.33 -> 56
    assert domain_dose(case, DoseDomain.CUMULATIVE_EQD2, 3.0) == pytest.approx(np.array([[[57.6, 56.0]]]))
    with pytest.raises(InputError, match="not a dose domain"):
        domain_dose(case, "sbrt_dose", 3.0)
