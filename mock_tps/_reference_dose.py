"""Reference doses: ``case.AddCustomEvaluationDose`` and the reference-dose functions.

RayStation 2025 (public type stubs, see ``mock_tps/API_VERSIONS.md``) lets a script
write a dose of its own (``case.AddCustomEvaluationDose(Name=, ExaminationName=,
ReferencedBeamSet=, DoseGridNumberOfVoxels=, DoseGridVoxelSize=, DoseGridCorner=,
FractionDoseValues=, IsRbeDose=)``, "a fraction dose in cGy") and refer an
optimization function to a dose (``po.AddReferenceOptimizationFunction(FunctionType=
'MaxRefDose', ReferenceDoseDistribution=<dose>, RoiName=, IsConstraint=, ...)``).  The
function's ``DoseFunctionParameters`` are a ``ReferenceDoseFunction``: ``FunctionType``
('Max', 'Min', 'Uniform'), ``Weight`` and ``OfReferenceDose``; there is no dose level.

Conventions chosen where the public evidence is silent
------------------------------------------------------
- A custom evaluation dose lands in ``TreatmentDelivery.FractionEvaluations[0].
  DoseOnExaminations[ExaminationName].DoseEvaluations``; its ``ForBeamSet`` is the
  referenced beam set, ``CustomDoseProperties.IsRbeDose`` the flag.  Its grid must be
  the referenced beam set's dose grid (the mock does not resample); names are unique
  among the examination's evaluation doses.
- A reference dose is a fraction dose: the optimizer compares per-fraction doses, i.e.
  the reference total is the reference fraction dose × the optimized beam set's number
  of fractions.  Only fraction doses (custom evaluation doses, beam set fraction doses)
  on the optimized beam set's dose grid are accepted as references.
- MaxRefDose penalizes :math:`f = \\sum_v \\hat w_v (d_v - r_v)_+^2` (Gy², :math:`\\hat w`
  the ROI's normalized voxel volumes, :math:`r_v` the reference total dose of voxel v),
  the voxel-wise analogue of MaxDose; as a constraint it asks :math:`d_v \\le r_v`
  (RaySearch's "Reduce OAR dose" white paper: per OAR "a constraint disallowing doses
  above the reference dose").  MinRefDose and UniformRefDose can be added and are
  refused by ``RunOptimization`` (the mock's numerical core has no per-voxel lower level).
"""
from __future__ import annotations

from typing import Any, Mapping, Optional

import numpy as np

from ._api import (ApiObject, ArgumentException, InvalidOperationException, _check_finite_number, api_method)
from ._dose import FractionDose, _DoseDistribution, cgy_to_gy
from ._geometry import MM_PER_CM

__all__ = ["REFERENCE_FUNCTION_TYPES", "RUNNABLE_REFERENCE_TYPES", "CustomEvaluationDose",
           "ReferenceDoseFunctionParameters", "add_custom_evaluation_dose", "check_reference_dose",
           "reference_total_gy", "max_ref_dose_spec"]

#: FunctionType values of ``AddReferenceOptimizationFunction`` the mock models, with the
#: ``DoseFunctionParameters.FunctionType`` they read back as.
REFERENCE_FUNCTION_TYPES = {"MaxRefDose": "Max", "MinRefDose": "Min", "UniformRefDose": "Uniform"}
#: Reference FunctionTypes RayStation has that the mock refuses (no model of their penalty).
_UNMODELLED_REFERENCE_TYPES = ("RefDoseFallOff", "MaxRefDvh", "MinRefDvh", "UniformRefDvh",
                               "OnesidedUniformRefDvh", "OnesidedUniformRefDose", "RefIsoDoseVolume")
#: Reference types the mock's optimizer runs.
RUNNABLE_REFERENCE_TYPES = ("MaxRefDose",)


class CustomDoseProperties(ApiObject):
    """``dose.CustomDoseProperties``: ``Description`` and ``IsRbeDose``."""

    def __init__(self, is_rbe: bool) -> None:
        self._init(Description="", IsRbeDose=bool(is_rbe))


class CustomEvaluationDose(_DoseDistribution):
    """A script-made fraction dose (cGy per fraction) among the evaluation doses."""

    def __init__(self, name: str, grid: Any, structure_set: Any, beam_set: Any, is_rbe: bool) -> None:
        super().__init__(grid, structure_set)
        self._doe: Any = None
        from ._dose import DensityReference
        self._init(Name=name, ForBeamSet=beam_set, CustomDoseProperties=CustomDoseProperties(is_rbe),
                   OnDensity=DensityReference(structure_set.OnExamination))

    @api_method
    def SetDoseValues(self, Dose: Any, CalculationInfo: Optional[str] = None,  # noqa: N802,N803
                      DoseAlgorithm: Optional[str] = None, DoseUncertainties: Any = None,
                      ParticleEnergySpectraDose: Any = None, DoseAveragedLet: Any = None,
                      DoseAveragedAlpha: Any = None, DoseAveragedSqrtBeta: Any = None) -> None:
        """Replace the dose (cGy per fraction, x fastest, one value per dose-grid voxel).

        The LET/RBE/uncertainty arrays are not modelled: anything but None is refused.
        """
        for name, v in (("DoseUncertainties", DoseUncertainties), ("ParticleEnergySpectraDose",
                        ParticleEnergySpectraDose), ("DoseAveragedLet", DoseAveragedLet),
                        ("DoseAveragedAlpha", DoseAveragedAlpha), ("DoseAveragedSqrtBeta", DoseAveragedSqrtBeta)):
            if v is not None:
                raise ArgumentException(f"SetDoseValues: {name} is not modelled by the mock; pass None.")
        self._set_dose_cgy(_dose_values(Dose, self._grid, "Dose"))

    @api_method
    def DeleteEvaluationDose(self) -> None:  # noqa: N802
        """Delete this evaluation dose; refused while an optimization function refers to it."""
        case = self.ForBeamSet._plan._case
        for plan in case.TreatmentPlans:
            for po in plan.PlanOptimizations:
                for f in po._functions():
                    if getattr(f.DoseFunctionParameters, "OfReferenceDose", None) is self:
                        raise InvalidOperationException(
                            f"Evaluation dose '{self.Name}' is the reference dose of a {f._type} function on "
                            f"'{f.ForRegionOfInterest.Name}' in plan '{plan.Name}': delete the function first.")
        self._doe.DoseEvaluations._remove(self)


def _dose_values(values: Any, grid: Any, what: str) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise ArgumentException(f"{what} must be an array of numbers (cGy), got {type(values).__name__}") from None
    if arr.size != grid.n_voxels:
        raise ArgumentException(f"{what} has {arr.size} values; the dose grid has {grid.n_voxels} voxels "
                                "(x fastest, then y, then z).")
    if not np.all(np.isfinite(arr)) or arr.min() < 0:
        raise ArgumentException(f"{what} must be finite and ≥ 0 cGy.")
    return arr


def _xyz(value: Any, what: str) -> tuple:
    try:
        return tuple(float(value[k]) for k in ("x", "y", "z"))
    except (KeyError, TypeError, ValueError):
        raise ArgumentException(f"{what} must be a dict {{'x','y','z'}} of numbers, got {value!r}") from None


def add_custom_evaluation_dose(case: Any, Name: Any, ExaminationName: Any, ReferencedBeamSet: Any,  # noqa: N803
                               DoseGridNumberOfVoxels: Any, DoseGridVoxelSize: Any, DoseGridCorner: Any,
                               FractionDoseValues: Any, IsRbeDose: bool) -> None:
    """Body of ``Case.AddCustomEvaluationDose`` (see the module docstring)."""
    if not isinstance(Name, str) or not Name.strip():
        raise ArgumentException("AddCustomEvaluationDose: Name must be a non-empty string.")
    exams = case.Examinations
    if ExaminationName not in exams.Keys:
        raise ArgumentException(f"AddCustomEvaluationDose: examination '{ExaminationName}' does not exist. "
                                f"Known: {', '.join(exams.Keys)}.")
    bs = ReferencedBeamSet
    if not isinstance(getattr(bs, "FractionDose", None), FractionDose):
        raise ArgumentException("AddCustomEvaluationDose: ReferencedBeamSet must be a beam set.")
    grid = bs.FractionDose._grid
    nz, ny, nx = grid.shape_zyx
    n = _xyz(DoseGridNumberOfVoxels, "DoseGridNumberOfVoxels")
    size_mm = tuple(v * MM_PER_CM for v in _xyz(DoseGridVoxelSize, "DoseGridVoxelSize"))
    corner_mm = tuple(v * MM_PER_CM for v in _xyz(DoseGridCorner, "DoseGridCorner"))
    same = (n == (nx, ny, nz) and np.allclose(size_mm, grid.spacing_xyz_mm, atol=1e-6)
            and np.allclose(corner_mm, grid.corner_mm, atol=1e-6))
    if not same:
        raise ArgumentException(
            "AddCustomEvaluationDose: the mock needs the dose grid of the referenced beam set "
            f"(NrVoxels {nx}x{ny}x{nz}, VoxelSize and Corner of its InDoseGrid); got {n}, {size_mm} mm, "
            f"{corner_mm} mm.")
    values = _dose_values(FractionDoseValues, grid, "FractionDoseValues")
    ss = bs._structure_set
    if ss.OnExamination.Name != ExaminationName:
        raise ArgumentException(f"AddCustomEvaluationDose: the referenced beam set is planned on "
                                f"'{ss.OnExamination.Name}', not '{ExaminationName}'.")
    doses = case.TreatmentDelivery.FractionEvaluations[0].DoseOnExaminations
    if ExaminationName not in doses.Keys:
        from ._patient import DoseOnExamination
        doses._append(DoseOnExamination(exams[ExaminationName]))
    doe = doses[ExaminationName]
    if Name in {d.Name for d in doe.DoseEvaluations}:
        raise ArgumentException(f"AddCustomEvaluationDose: an evaluation dose named '{Name}' exists already on "
                                f"'{ExaminationName}'.")
    dose = CustomEvaluationDose(Name, grid, ss, bs, bool(IsRbeDose))
    dose._set_dose_cgy(values)
    dose._doe = doe
    doe.DoseEvaluations._append(dose)


class ReferenceDoseFunctionParameters(ApiObject):
    """``DoseFunctionParameters`` of a reference-dose function: ``FunctionType`` ('Max',
    'Min', 'Uniform'), ``Weight`` (settable) and ``OfReferenceDose`` (the dose)."""

    _settable = ("Weight",)

    def __init__(self, function: Any, function_type: str, reference: Any) -> None:
        self._function = function
        self._init(FunctionType=REFERENCE_FUNCTION_TYPES[function_type], Weight=1.0, OfReferenceDose=reference)

    def _on_set(self, name: str, value: Any) -> Any:
        self._function._po._plan._check_editable(f"change {name}")
        v = _check_finite_number("DoseFunctionParameters", name, value)
        if v < 0:
            raise ArgumentException(f"{name} must be ≥ 0, got {value!r}")
        return v


def check_reference_dose(function_type: str, reference: Any, beam_set: Any) -> None:
    """Refuse a FunctionType or reference dose ``AddReferenceOptimizationFunction`` cannot take."""
    if function_type in _UNMODELLED_REFERENCE_TYPES:
        raise ArgumentException(f"FunctionType '{function_type}' is not supported by the mock; it models "
                                f"{', '.join(REFERENCE_FUNCTION_TYPES)}.")
    if function_type not in REFERENCE_FUNCTION_TYPES:
        raise ArgumentException(f"'{function_type}' is not a reference-dose FunctionType "
                                f"({', '.join(REFERENCE_FUNCTION_TYPES)}): use AddOptimizationFunction.")
    if not isinstance(reference, (CustomEvaluationDose, FractionDose)):
        raise ArgumentException("ReferenceDoseDistribution must be a fraction dose (a custom evaluation dose or a "
                                f"beam set's FractionDose), got {type(reference).__name__}.")
    if reference._grid != beam_set.FractionDose._grid:
        raise ArgumentException("ReferenceDoseDistribution must lie on the optimized beam set's dose grid "
                                "(the mock does not resample).")
    if reference.DoseValues is None:
        raise ArgumentException("ReferenceDoseDistribution has no dose values.")


def reference_total_gy(reference: Any, fractions: int) -> np.ndarray:
    """The reference as a total dose (Gy, flat, x fastest): fraction dose (cGy) × ``fractions``."""
    return cgy_to_gy(np.asarray(reference._dose_cgy(), dtype=np.float64).ravel()) * float(fractions)


def max_ref_dose_spec(spec_cls: Any, reference_gy: np.ndarray, common: Mapping[str, Any]) -> Any:
    """A MaxRefDose as the numerical core's per-voxel upper penalty.

    The core's only per-voxel upper level is the DoseFallOff reference
    :math:`r_v = \\max(L, H - (H - L) s_v / s_L)`; with :math:`L = 0`, :math:`H = \\max_v
    r_v`, :math:`s_L = 1` mm and :math:`s_v = (H - r_v)/H` mm it is :math:`r_v` exactly
    (:math:`r_v \\ge 0`), so the core's ``_upper`` kernel evaluates
    :math:`\\sum_v \\hat w_v (d_v - r_v)_+^2` and, as a constraint, :math:`d_v \\le r_v`.
    """
    r = np.asarray(reference_gy, dtype=np.float64)[common["voxel_index"]]
    high = float(r.max())
    distance = (high - r) / high if high > 0 else np.zeros_like(r)
    return spec_cls(function_type="DoseFallOff", high_dose_level_gy=high, low_dose_level_gy=0.0,
                    low_dose_distance_mm=1.0, distance_mm=np.clip(distance, 0.0, 1.0), **common)
