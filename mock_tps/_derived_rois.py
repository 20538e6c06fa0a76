"""Derived ROIs: expressions (algebra, margin, wall), ``UpdateDerivedGeometry`` and dirtiness.

A derived ROI carries ``DerivedRoiExpression`` (None for an underived ROI).  Setting
an expression makes no geometry; ``UpdateDerivedGeometry(Examination=)`` computes it
from the sources' current geometries and records which source geometries it was
made from.  ``RoiGeometry.PrimaryShape.DerivedRoiStatus``:

- None for an underived ROI, and for a derived ROI whose geometry was overridden by
  any edit other than the update (public QA scripts: "overridden volumes have
  DerivedRoiStatus = Null");
- else ``IsShapeDirty``: True once a source geometry changed since the update.

``DeleteExpression()`` makes the ROI underived and keeps its geometry.  A wall is the
source expanded by ``OutwardDistance`` minus the source contracted by
``InwardDistance`` (cm), with the margin rule of :func:`mock_tps._geometry.margin_coverage`.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

import numpy as np

from ._api import ApiObject, ArgumentException, InvalidOperationException, api_method
from ._geometry import algebra_coverage, margin_coverage

__all__ = ["DerivedRoiMixin", "DerivedRoiStatus", "DerivedRoiExpression"]


class DerivedRoiStatus(ApiObject):
    def __init__(self, dirty: bool) -> None:
        self._init(IsShapeDirty=bool(dirty))


class DerivedRoiExpression(ApiObject):
    """``roi.DerivedRoiExpression`` of a derived ROI: ``Type`` ('Algebra', 'Margin' or 'Wall')
    and the source ROI names (``SourceRoiNames``, a list)."""

    def __init__(self, kind: str, sources: Sequence[str], compute: Any) -> None:
        self._compute = compute   # (structure set) -> CT-grid coverage
        self._init(Type=kind, SourceRoiNames=list(sources))


def _wall(source: str, outward_cm: Any, inward_cm: Any) -> Any:
    """(structure set) -> wall coverage: source expanded by ``outward_cm`` minus contracted by ``inward_cm``."""
    from ._api import _check_finite_number

    out = _check_finite_number("Wall", "OutwardDistance", outward_cm)
    inw = _check_finite_number("Wall", "InwardDistance", inward_cm)
    if out < 0 or inw < 0 or out + inw == 0:
        raise ArgumentException(f"Wall distances must be >= 0 cm and not both 0, got OutwardDistance={outward_cm!r}, "
                                f"InwardDistance={inward_cm!r}")

    def compute(ss: Any) -> np.ndarray:
        src = ss._geometry(source)._ct_coverage()
        grid = ss.OnExamination._grid
        sides = ("Superior", "Inferior", "Anterior", "Posterior", "Right", "Left")
        outer = margin_coverage(src, grid, {"Type": "Expand", **{k: out for k in sides}})
        inner = margin_coverage(src, grid, {"Type": "Contract", **{k: inw for k in sides}})
        return np.clip(outer - inner, 0.0, 1.0)

    return compute


class DerivedRoiMixin:
    """The derived-ROI methods of ``RegionOfInterest``."""

    @api_method
    def CreateWallGeometry(self, Examination: Any, SourceRoiName: str, OutwardDistance: float,  # noqa: N802,N803
                           InwardDistance: float) -> None:
        """Set this ROI's geometry to a wall (cm) around another ROI: the source expanded by
        ``OutwardDistance`` minus the source contracted by ``InwardDistance``."""
        target = self._geometry_on(Examination)
        target._set_coverage(_wall(SourceRoiName, OutwardDistance, InwardDistance)(target._structure_set))

    @api_method
    def SetAlgebraExpression(self, ExpressionA: Mapping[str, Any], ExpressionB: Optional[Mapping[str, Any]] = None,  # noqa: N802,N803
                             ResultOperation: str = "None",
                             ResultMarginSettings: Optional[Mapping[str, Any]] = None) -> None:
        """Make this ROI derived from ROI algebra (geometry made by ``UpdateDerivedGeometry``)."""
        for e in (ExpressionA, ExpressionB):
            if e is not None and isinstance(e.get("SourceRoiNames", []), str):
                raise ArgumentException("SourceRoiNames must be a list of ROI names, got a str.")
        names = list(ExpressionA.get("SourceRoiNames", [])) + \
            (list(ExpressionB.get("SourceRoiNames", [])) if ExpressionB else [])
        self._check_sources(names)

        def compute(ss: Any) -> np.ndarray:
            def expr(e: Optional[Mapping[str, Any]]) -> Any:
                if e is None:
                    return None
                return ([self._source(ss, n) for n in e.get("SourceRoiNames", [])], e.get("Operation", "Union"),
                        e.get("MarginSettings"))
            return algebra_coverage(expr(ExpressionA), expr(ExpressionB), ResultOperation, ResultMarginSettings,
                                    ss.OnExamination._grid)

        self._set_expression(DerivedRoiExpression("Algebra", names, compute))

    @api_method
    def SetMarginExpression(self, SourceRoiName: str, MarginSettings: Mapping[str, Any]) -> None:  # noqa: N802,N803
        """Make this ROI derived: a margin (cm) around ``SourceRoiName``."""
        self._check_sources([SourceRoiName])
        self._set_expression(DerivedRoiExpression(
            "Margin", [SourceRoiName],
            lambda ss: margin_coverage(self._source(ss, SourceRoiName), ss.OnExamination._grid, MarginSettings)))

    @api_method
    def SetWallExpression(self, SourceRoiName: str, OutwardDistance: float, InwardDistance: float) -> None:  # noqa: N802,N803
        """Make this ROI derived: a wall (cm) around ``SourceRoiName`` (see ``CreateWallGeometry``)."""
        self._check_sources([SourceRoiName])
        self._set_expression(DerivedRoiExpression("Wall", [SourceRoiName],
                                                  _wall(SourceRoiName, OutwardDistance, InwardDistance)))

    @api_method
    def DeleteExpression(self) -> None:  # noqa: N802
        """Make this ROI underived; its geometries stay as they are."""
        for ss in self._model.StructureSets:
            ss._check_editable("delete its expression", self.Name)
            ss._geometry(self.Name).__dict__.pop("_derived_from", None)
        object.__setattr__(self, "DerivedRoiExpression", None)

    @api_method
    def UpdateDerivedGeometry(self, Examination: Any, Algorithm: str = "Auto") -> None:  # noqa: N802,N803
        """Compute this derived ROI's geometry on ``Examination`` from its sources' current
        geometries (afterwards ``IsShapeDirty`` is False).

        Raises
        ------
        InvalidOperationException
            The ROI is not derived, or a source ROI has no geometry on the examination.
        """
        expression = self.DerivedRoiExpression
        if expression is None:
            raise InvalidOperationException(f"ROI '{self.Name}' is not a derived ROI: set an expression first.")
        if Algorithm not in ("Auto", "Contours", "Voxels"):
            raise ArgumentException(f"Algorithm must be 'Auto', 'Contours' or 'Voxels', got {Algorithm!r}")
        target = self._geometry_on(Examination)
        ss = target._structure_set
        for n in expression.SourceRoiNames:
            if not ss._geometry(n).HasContours():
                raise InvalidOperationException(f"Source ROI '{n}' of derived ROI '{self.Name}' has no geometry "
                                                f"on examination '{ss.OnExamination.Name}'.")
        target._set_coverage(expression._compute(ss))
        target._derived_from = tuple((n, ss._geometry(n)._coverage) for n in expression.SourceRoiNames)

    def _check_sources(self, names: Sequence[str]) -> None:
        known = self._model.RegionsOfInterest.Keys
        for n in names:
            if n not in known:
                raise ArgumentException(f"Source ROI '{n}' does not exist. Known ROIs: {', '.join(known)}.")
            if n == self.Name:
                raise ArgumentException(f"ROI '{n}' cannot be derived from itself.")

    def _set_expression(self, expression: DerivedRoiExpression) -> None:
        for ss in self._model.StructureSets:
            ss._check_editable("change its expression", self.Name)
        object.__setattr__(self, "DerivedRoiExpression", expression)
