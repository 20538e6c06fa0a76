"""Beam set and plan optimization of a plan imported from DICOM: a dose, no beam model.

An imported plan carries its dose (RTDOSE) but no machine, beams or influence
matrix, as a plan imported into RayStation without a commissioned machine.  Its
``ComputeDose`` and ``RunOptimization`` raise
:class:`~mock_tps._api.InvalidOperationException` saying so; everything that only
reads the dose works as for any plan.  The classes keep RayStation's names
(``BeamSet``, ``PlanOptimization``): they are the same API objects.
"""
from __future__ import annotations

from typing import Any

from ._api import InvalidOperationException, api_method
from ._optimization import PlanOptimization as _PlanOptimization
from ._plan import BeamSet as _BeamSet

__all__ = ["BeamSet", "PlanOptimization", "no_beam_model_message"]


def no_beam_model_message(label: str, what: str) -> str:
    return (f"Beam set '{label}' has no beam model (imported from DICOM): cannot {what}. "
            "Its dose is the imported RTDOSE; plan in the planning system to change it.")


class BeamSet(_BeamSet):
    """``plan.BeamSets[label]`` of an imported plan (dose only)."""

    @api_method
    def ComputeDose(self, ComputeBeamDoses: bool = True, DoseAlgorithm: str = "CCDose",  # noqa: N802,N803
                    ForceRecompute: bool = False, RunEntryValidation: bool = True) -> None:
        """Refused: an imported plan has no beam model."""
        self._plan._check_editable("compute dose")
        raise InvalidOperationException(no_beam_model_message(self.DicomPlanLabel, "compute dose"))

    def _compute_dose(self) -> None:
        raise InvalidOperationException(no_beam_model_message(self.DicomPlanLabel, "compute dose"))


class PlanOptimization(_PlanOptimization):
    """``plan.PlanOptimizations[i]`` of an imported plan: functions can be added, not run."""

    @api_method
    def RunOptimization(self, ScalingOfSoftMachineConstraints: Any = None) -> None:  # noqa: N802,N803
        """Refused: an imported plan has no beam model."""
        self._plan._check_editable("run the optimization")
        raise InvalidOperationException(no_beam_model_message(self._beam_set.DicomPlanLabel,
                                                              "run the optimization"))
