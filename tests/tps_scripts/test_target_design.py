"""When the closed loop changes its PTVeval MinDvh volume (tps_scripts.target_design)."""
import pytest

from tps_scripts.target_design import adapt_min_dvh_wanted, adapted_min_dvh_percent
from tps_scripts.tuning_settings import TuningSettings


def _entry(v_rx, v_below):
    return {"ptv_eval": {"v_rx_percent": v_rx}, "v_below_rx_percent": v_below}


def test_min_dvh_volume_lowered_raised_or_kept():
    s = TuningSettings()          # asks 80 %, adapt_ratio 0.6, raise within 1 point, min gain 0.5 point
    # lowered: V24Gy 18 % < 0.6 x V22Gy 35.1 % = 21.06 %, and 35.1 % < 80 %: ask 35.1 %
    assert adapt_min_dvh_wanted(_entry(18.0, 35.1), s)
    assert adapted_min_dvh_percent(_entry(18.0, 35.1), s) == pytest.approx(35.1)
    # raised: V24Gy 80.1 % >= 80 - 1 and V22Gy 87.4 % > 80 + 0.5: ask 87.4 %
    assert adapt_min_dvh_wanted(_entry(80.1, 87.4), s)
    assert adapted_min_dvh_percent(_entry(80.1, 87.4), s) == pytest.approx(87.4)
    # ... never 100 %: a MinDvh on all of PTVeval is a MinDose
    assert adapted_min_dvh_percent(_entry(80.1, 100.0), s) == pytest.approx(99.0)
    # kept: 69.5 % >= 0.6 x 76 % = 45.6 % (not lowered) and 69.5 % < 80 - 1 % (not raised)
    assert not adapt_min_dvh_wanted(_entry(69.5, 76.0), s)
    # kept: the asked volume met, but V22Gy 80.4 % is not above it by the minimum gain
    assert not adapt_min_dvh_wanted(_entry(79.5, 80.4), s)
    # no raising when switched off, no change at all for another target design
    assert not adapt_min_dvh_wanted(_entry(80.1, 87.4), TuningSettings(adapt_raise_within_percent=0.0))
    assert not adapt_min_dvh_wanted(_entry(18.0, 35.1), TuningSettings(target_design="single"))
