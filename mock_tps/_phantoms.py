"""Synthetic re-irradiation spine phantoms for the mock TPS: one builder, four phantoms.

Each builder returns a :class:`mock_tps._phantom_data.PhantomData`:

``t4t5_esophageal``
    T4–T5 after esophageal chemoradiotherapy 60 Gy / 30 fx (AP/PA 40 Gy, then
    laterals with the cord blocked, to a mediastinal PTV around esophagus and
    vertebral body); esophagus abutting the
    vertebral body by default (``esophagus_gap_mm=0``) – the seed study's fatal case.
``c7t1_head_neck``
    C7–T1 after head-and-neck radiotherapy 70 Gy / 35 fx (opposed laterals plus an
    anterior field to 42 Gy, then off-cord laterals, to a prevertebral/pharyngo-esophageal
    PTV).
``c3_cervical``
    C3 after 50 Gy / 25 fx (opposed laterals to the C2–C4 spine).  The tube in front
    of C3 is anatomically the pharynx; it is named ``Esophagus`` so every phantom
    has the same ROI set.
``t8_two_courses``
    T8 after two palliative courses, 30 Gy / 10 fx (AP/PA, T7–T9) and 20 Gy / 5 fx
    (posterior obliques, T8), each its own :class:`PriorCourseSpec`.  No trachea
    (T8 is below the carina).

The phantoms differ only in data: the region's dimensions
(:data:`mock_tps._phantom_regions.REGIONS`), the prior plans
(:data:`mock_tps._phantom_priors.PRIOR_PLANS`) and the defaults in :data:`_SPECS`.
Geometry and masks: :mod:`mock_tps._phantom_regions`, :mod:`mock_tps._phantom_anatomy`.

Beams
-----
Coplanar static 6 MV beams sampling a posterior arc (default 17 beams over 240°,
gantry 60° to 300° every 15°; no beam enters through the anterior sector of the
esophagus and heart), square beamlets of 5 mm at isocentre, a 2 mm dose grid in a
box of the PTV + (20, 20, 15) mm; see :func:`gantry_angles_deg` and
:mod:`mock_tps.dose_engine`.

ROI names: ``Body, Vertebra, SpinalCord, SpinalCord_PRV, Esophagus, Trachea,
Lungs, Aorta, GTV, CTV, PTV, PTVeval`` (``Vertebra`` is the bone of the treated
level(s): body + posterior elements; Trachea, Lungs and Aorta only where the
anatomy has them – see :data:`ROI_NAMES_BY_PHANTOM`).
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable, Dict, Tuple

import numpy as np

from constraints.errors import InputError
from mock_tps._phantom_anatomy import Anatomy, build_anatomy, check_int, check_number
from mock_tps._phantom_data import BeamSpec, GridSpec, PhantomData, RoiSpec
from mock_tps._phantom_masks import fractional_mask, subsample_for
from mock_tps._phantom_priors import PRIOR_PLANS, prior_courses
from mock_tps._phantom_regions import REGIONS, ROI_NAMES_BY_PHANTOM
from mock_tps._phantom_shapes import Shape

__all__ = [
    "PHANTOM_BUILDERS",
    "ROI_NAMES_BY_PHANTOM",
    "build_phantom",
    "build_anatomy",
    "Anatomy",
    "build_t4t5_esophageal",
    "build_c7t1_head_neck",
    "build_c3_cervical",
    "build_t8_two_courses",
    "fractional_mask",
    "subsample_for",
    "gantry_angles_deg",
    "Shape",
]

#: Default dose-grid box margin around the PTV, (x, y, z) mm: covers the cord,
#: the esophagus and the nearby unspecified tissue.
DOSE_BOX_MARGIN_MM = (20.0, 20.0, 15.0)

#: Default SBRT beam model: static beams sampling a posterior arc (see :func:`gantry_angles_deg`).
DEFAULT_N_BEAMS = 17
DEFAULT_ARC_DEG = 240.0
DEFAULT_BIXEL_MM = 5.0
DEFAULT_DOSE_GRID_MM = 2.0

_ROI_COLORS = {
    "Body": "Green", "Vertebra": "White", "SpinalCord": "Yellow", "SpinalCord_PRV": "Orange",
    "Esophagus": "Brown", "Trachea": "SkyBlue", "Lungs": "Blue", "Aorta": "Red", "GTV": "Magenta",
    "CTV": "Purple", "PTV": "Cyan", "PTVeval": "DarkCyan",
}
#: ROI name -> (RayStation ROI type, organ type); any other ROI is ("Organ", "OrganAtRisk")
_ROI_TYPES = {
    "Body": ("External", "Other"), "GTV": ("Gtv", "Target"), "CTV": ("Ctv", "Target"),
    "PTV": ("Ptv", "Target"), "PTVeval": ("Ptv", "Target"), "Vertebra": ("Organ", "Other"),
}


def gantry_angles_deg(n_beams: int, arc_deg: float) -> Tuple[float, ...]:
    """Gantry angles (IEC 61217, deg) of ``n_beams`` static beams sampling an arc.

    ``arc_deg`` = 360: equi-spaced over the full circle from 0° (``360 k / n``).
    Below 360: a posterior arc centred on 180° from ``180 − arc/2`` to
    ``180 + arc/2`` inclusive, ``arc / (n − 1)`` apart (a VMAT arc sampled as
    static beams; the anterior sector, where the esophagus and heart lie, is left out).

    Examples
    --------
    >>> gantry_angles_deg(4, 360.0)
    (0.0, 90.0, 180.0, 270.0)
    >>> gantry_angles_deg(5, 240.0)
    (60.0, 120.0, 180.0, 240.0, 300.0)
    """
    n = int(n_beams)
    if arc_deg >= 360.0:
        return tuple(float(360.0 * k / n) for k in range(n))
    start = 180.0 - arc_deg / 2.0
    return tuple(float(round(start + arc_deg * k / (n - 1), 6)) for k in range(n))


@dataclass(frozen=True)
class _PhantomSpec:
    """What one phantom's builder differs in: defaults, documentation and notes."""

    key: str
    summary: str                 # the builder's first docstring line
    detail: str                  # the builder's docstring paragraph
    esophagus_gap_mm: float
    prior_dose_gy: Any           # a float, or a pair for two courses
    prior_fractions: Any
    notes: Callable[[Dict[str, Any]], str]

    @property
    def n_courses(self) -> int:
        return len(self.prior_dose_gy) if isinstance(self.prior_dose_gy, tuple) else 1

    def defaults(self) -> Dict[str, Any]:
        """The builder's keyword parameters and their defaults, in signature order."""
        return dict(grid_mm=2.0, esophagus_gap_mm=self.esophagus_gap_mm, prior_dose_gy=self.prior_dose_gy,
                    prior_fractions=self.prior_fractions, dose_grid_mm=DEFAULT_DOSE_GRID_MM,
                    dose_margin_mm=DOSE_BOX_MARGIN_MM, n_beams=DEFAULT_N_BEAMS, arc_deg=DEFAULT_ARC_DEG,
                    bixel_mm=DEFAULT_BIXEL_MM, prior_covers_oars=True, seed=0, use_cache=True)


def _one_course(template: str) -> Callable[[Dict[str, Any]], str]:
    return lambda p: template.format(d=p["prior_dose_gy"], n=p["prior_fractions"], gap=p["esophagus_gap_mm"])


_SPECS: Dict[str, _PhantomSpec] = {s.key: s for s in (
    _PhantomSpec(
        "t4t5_esophageal", "T4–T5 metastasis after esophageal chemoradiotherapy (the seed's fatal case).",
        "The prior course is AP/PA to 40 Gy, then opposed laterals with the cord PRV + 3 mm blocked to the\n"
        "prescription, to a mediastinal PTV around the esophagus and the anterior vertebral body.",
        0.0, 60.0, 30,
        _one_course("T4-T5 after esophageal CRT {d:g} Gy/{n} fx (AP/PA 40 Gy + off-cord laterals); "
                    "esophagus gap {gap:g} mm")),
    _PhantomSpec(
        "c7t1_head_neck", "C7–T1 metastasis after head-and-neck radiotherapy (default 70 Gy / 35 fx).",
        "The prior course is opposed laterals plus an anterior field to 42 Gy, then off-cord laterals\n"
        "(cord PRV + 3 mm blocked) to the prescription, to a prevertebral PTV joining the esophagus and\n"
        "the anterior vertebral body.",
        0.0, 70.0, 35,
        _one_course("C7-T1 after head-and-neck RT {d:g} Gy/{n} fx (laterals + AP 42 Gy, off-cord laterals)")),
    _PhantomSpec(
        "c3_cervical", "C3 metastasis after 50 Gy / 25 fx opposed laterals to the C2–C4 spine.",
        "The default esophagus gap, 2 mm, is the prevertebral soft tissue; ``Esophagus`` is the pharynx\n"
        "at this level.",
        2.0, 50.0, 25,
        _one_course("C3 after {d:g} Gy/{n} fx opposed laterals to C2-C4")),
    _PhantomSpec(
        "t8_two_courses", "T8 metastasis after two palliative courses of different fractionation.",
        "``prior_dose_gy`` and ``prior_fractions`` are pairs: course 1 (AP/PA to T7–T9) and course 2\n"
        "(posterior obliques 160°/200° to T8).  The default history, 5 × 4 Gy then a 10 × 2 Gy\n"
        "re-irradiation (both common palliative regimens), leaves the cord PRV near 111 Gy2 BED: under\n"
        "the 140 Gy2 cumulative cord limit (Sahgal 2012), so some cord tolerance remains (about 8.9 Gy\n"
        "in 2 fx).  (30, 20) Gy in (10, 5) fx puts it near 152 Gy2: exhausted.",
        3.0, (20.0, 20.0), (5, 10),
        lambda p: (f"T8 after {p['prior_dose_gy'][0]:g} Gy/{p['prior_fractions'][0]} fx (AP/PA T7-T9) and "
                   f"{p['prior_dose_gy'][1]:g} Gy/{p['prior_fractions'][1]} fx (posterior obliques T8)")),
)}

_PARAMETERS_DOC = """
    Parameters
    ----------
    grid_mm : float, default 2.0
        Isotropic CT voxel size, mm (1–2.5 realistic; up to 4 for coarse tests).
    esophagus_gap_mm : float, default {esophagus_gap_mm!r}
        Gap between esophagus and vertebral body surfaces, mm (0 = abutting).
    prior_dose_gy : {dose_kind}, default {prior_dose_gy!r}
        Prior course total dose, Gy, delivered as the mean dose of the prior PTV.
    prior_fractions : {fx_kind}, default {prior_fractions!r}
    dose_grid_mm : float, default 2.0
        Isotropic SBRT dose-grid voxel size, mm (1–6; spine SBRT practice: <= 2).
    dose_margin_mm : three floats, default (20, 20, 15)
        Margin (x, y, z), mm, of the dose-grid box around the PTV; also the
        prior-dose grid.
    n_beams : int, default 17
        Coplanar static SBRT beams sampling the arc (a VMAT arc; 17 over 240° =
        every 15°), 9–72.
    arc_deg : float, default 240
        Span of the posterior arc centred on gantry 180°, deg (90–360; 360 = the
        full circle, equi-spaced from 0°); see :func:`gantry_angles_deg`.
    bixel_mm : float, default 5.0
        Beamlet width at isocentre, mm (square beamlets: pyRadPlan has one
        width for both directions); the prior courses' open fields too.
    prior_covers_oars : bool, default True
        False crops the superior third of the dose grid out of the prior-dose grid,
        so part of the esophagus and cord has no prior dose.
    seed : int, default 0
        Seed of the ±5 HU CT noise.
    use_cache : bool, default True
        Use the dose engine's on-disk matrix cache.

    Returns
    -------
    PhantomData
"""


def _params(spec: _PhantomSpec, kwargs: Dict[str, Any]) -> Dict[str, Any]:
    """The validated builder parameters (:class:`InputError` naming a bad one), in ``params`` order."""
    k = dict(spec.defaults())
    unknown = sorted(set(kwargs) - set(k))
    if unknown:
        raise TypeError(f"build_{spec.key}() got an unexpected keyword argument {unknown[0]!r}")
    k.update(kwargs)
    try:
        margin = tuple(k["dose_margin_mm"])
    except TypeError:
        raise InputError(f"dose_margin_mm must be three numbers (x, y, z) in mm, got {k['dose_margin_mm']!r}") from None
    if len(margin) != 3:
        raise InputError(f"dose_margin_mm must be three numbers (x, y, z) in mm, got {k['dose_margin_mm']!r}")
    p = dict(
        dose_margin_mm=tuple(check_number(f"dose_margin_mm[{i}]", v, 5.0, 100.0) for i, v in enumerate(margin)),
        grid_mm=check_number("grid_mm", k["grid_mm"], 1.0, 4.0),
        esophagus_gap_mm=check_number("esophagus_gap_mm", k["esophagus_gap_mm"], 0.0, 20.0),
        dose_grid_mm=check_number("dose_grid_mm", k["dose_grid_mm"], 1.0, 6.0),
        n_beams=check_int("n_beams", k["n_beams"], 9, 72),
        arc_deg=check_number("arc_deg", k["arc_deg"], 90.0, 360.0),
        bixel_mm=check_number("bixel_mm", k["bixel_mm"], 2.0, 10.0),
        seed=check_int("seed", k["seed"], 0, 2**32 - 1),
    )
    if not isinstance(k["prior_covers_oars"], (bool, np.bool_)):
        raise InputError(f"prior_covers_oars must be True or False, got {k['prior_covers_oars']!r}")
    p["prior_covers_oars"] = bool(k["prior_covers_oars"])
    doses, fxs = k["prior_dose_gy"], k["prior_fractions"]
    if spec.n_courses == 1:
        p.update(prior_dose_gy=check_number("prior_dose_gy", doses, 1.0, 100.0),
                 prior_fractions=check_int("prior_fractions", fxs, 1, 60))
        return p
    try:
        doses, fxs = tuple(doses), tuple(fxs)
    except TypeError:
        raise InputError(f"prior_dose_gy and prior_fractions must be pairs for {spec.key}, got {doses!r}, "
                         f"{fxs!r}") from None
    if len(doses) != spec.n_courses or len(fxs) != spec.n_courses:
        raise InputError(f"prior_dose_gy and prior_fractions must have {spec.n_courses} entries, got {doses!r}, "
                         f"{fxs!r}")
    p.update(prior_dose_gy=tuple(check_number(f"prior_dose_gy[{i}]", v, 1.0, 100.0) for i, v in enumerate(doses)),
             prior_fractions=tuple(check_int(f"prior_fractions[{i}]", v, 1, 60) for i, v in enumerate(fxs)))
    return p


def _mask_centroid_mm(grid: GridSpec, mask: np.ndarray) -> Tuple[float, float, float]:
    x, y, z = grid.centres_mm()
    w = mask.astype(np.float64)
    s = w.sum()
    return (
        float((w.sum(axis=(0, 1)) * x).sum() / s),
        float((w.sum(axis=(0, 2)) * y).sum() / s),
        float((w.sum(axis=(1, 2)) * z).sum() / s),
    )


def _build(spec: _PhantomSpec, kwargs: Dict[str, Any]) -> PhantomData:
    """Phantom ``spec`` with builder keyword arguments ``kwargs``."""
    from mock_tps import dose_engine

    p = _params(spec, kwargs)
    use_cache = kwargs.get("use_cache", True)
    key = spec.key
    a = REGIONS[key]
    anat = build_anatomy(key, grid_mm=p["grid_mm"], esophagus_gap_mm=p["esophagus_gap_mm"], seed=p["seed"])
    ct_grid, hu, masks, shp = anat.ct_grid, anat.ct_hu, anat.masks, anat.shapes

    # --- SBRT beams and influence matrix
    ptv = masks["PTV"]
    iso = tuple(round(c, 1) for c in _mask_centroid_mm(ct_grid, ptv))
    beams = tuple(
        BeamSpec(name=f"B{k + 1}_G{g:05.1f}", gantry_deg=g, couch_deg=0.0, collimator_deg=0.0, isocenter_mm=iso)
        for k, g in enumerate(gantry_angles_deg(p["n_beams"], p["arc_deg"]))
    )
    dose_grid = dose_engine.dose_box_grid(ct_grid, ptv >= 0.5, p["dose_grid_mm"], p["dose_margin_mm"])
    res = dose_engine.influence_matrix(
        hu, ct_grid, ptv, dose_grid, beams, p["bixel_mm"],
        dose_region_mask=masks["Body"], use_cache=use_cache,
    )

    # --- prior courses: open 3D-conformal fields, normalised to the prior PTV mean
    nz_d = dose_grid.shape_zyx[0]
    if p["prior_covers_oars"]:
        prior_grid = dose_grid
    else:  # the superior third of the SBRT dose grid lies outside the prior dose grid
        prior_grid = GridSpec(dose_grid.corner_mm, dose_grid.spacing_xyz_mm,
                              (nz_d - max(1, nz_d // 3),) + tuple(dose_grid.shape_zyx[1:]))
    doses = p["prior_dose_gy"] if spec.n_courses > 1 else (p["prior_dose_gy"],)
    fxs = p["prior_fractions"] if spec.n_courses > 1 else (p["prior_fractions"],)
    priors = prior_courses(PRIOR_PLANS[key](shp, a, doses, fxs), hu, ct_grid, masks["Body"], dose_grid, prior_grid,
                           iso, p["bixel_mm"], use_cache)

    # the TPS's ROIs are contours (one stack per CT slice) and their coverage is voxelized
    # from them, as for an imported RTSTRUCT; the analytic masks above only build the
    # CT numbers, the dose grid and the beamlets.
    rois = tuple(RoiSpec(n, *_ROI_TYPES.get(n, ("Organ", "OrganAtRisk")), mask=anat.roi_coverage(n),
                         color=_ROI_COLORS[n], planes=anat.planes[n], plane_spacing_mm=ct_grid.spacing_xyz_mm[2])
                 for n in ROI_NAMES_BY_PHANTOM[key])
    notes = spec.notes(p)
    params = dict(p)
    params.update(
        level=a.level, esophagus_centre_mm=shp.esophagus_centre, vertebral_body_centre_mm=(0.0, a.vb_y),
        vertebral_body_radius_mm=a.vb_r, cord_centre_mm=(0.0, a.canal_y), cord_size_mm=(2 * a.cord_ax, 2 * a.cord_ay),
        bilsky=a.epidural[0] if a.epidural else "0",
        isocenter_mm=iso, engine=f"pyRadPlan {dose_engine.pyradplan_version()} SVDPB photons Generic",
    )
    return PhantomData(
        name=key, params=params, ct_grid=ct_grid, ct_hu=hu, rois=rois, dose_grid=dose_grid, beams=beams,
        influence_gy=res.matrix_gy, beamlet_beam_index=res.beamlet_beam_index, prior_courses=tuple(priors),
        prescription_gy=24.0, fractions=2, target_roi="PTVeval", patient_name=f"Phantom^{key}",
        patient_id=f"PHANTOM-{key.upper()}", notes=notes,
    )


def _builder(spec: _PhantomSpec) -> Callable[..., PhantomData]:
    """The public builder of ``spec``: keyword-only parameters, documented with their defaults."""

    def build(**kwargs: Any) -> PhantomData:
        return _build(spec, kwargs)

    d = spec.defaults()
    two = spec.n_courses > 1
    build.__name__ = build.__qualname__ = f"build_{spec.key}"
    build.__doc__ = (f"{spec.summary}\n\n    " + spec.detail.replace("\n", "\n    ") + "\n"
                     + _PARAMETERS_DOC.format(esophagus_gap_mm=d["esophagus_gap_mm"],
                                              prior_dose_gy=d["prior_dose_gy"], prior_fractions=d["prior_fractions"],
                                              dose_kind="pair of float" if two else "float",
                                              fx_kind="pair of int" if two else "int"))
    build.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY, default=v) for k, v in d.items()],
        return_annotation="PhantomData")
    build.__module__ = __name__
    return build


build_t4t5_esophageal = _builder(_SPECS["t4t5_esophageal"])
build_c7t1_head_neck = _builder(_SPECS["c7t1_head_neck"])
build_c3_cervical = _builder(_SPECS["c3_cervical"])
build_t8_two_courses = _builder(_SPECS["t8_two_courses"])

#: name → builder (keyword-only parameters, see each builder).
PHANTOM_BUILDERS: Dict[str, Callable[..., PhantomData]] = {
    "t4t5_esophageal": build_t4t5_esophageal,
    "c7t1_head_neck": build_c7t1_head_neck,
    "c3_cervical": build_c3_cervical,
    "t8_two_courses": build_t8_two_courses,
}


def build_phantom(name: str, **kwargs: Any) -> PhantomData:
    """Build phantom ``name`` (a key of :data:`PHANTOM_BUILDERS`) with ``kwargs``."""
    try:
        builder = PHANTOM_BUILDERS[name]
    except KeyError:
        raise InputError(f"unknown phantom name {name!r}; expected one of {sorted(PHANTOM_BUILDERS)}") from None
    try:
        return builder(**kwargs)
    except TypeError as exc:
        raise InputError(f"bad parameters for phantom {name!r}: {exc}") from None
