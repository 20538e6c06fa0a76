"""Low-level DICOM-RT writers (CT slices, RTSTRUCT, RTDOSE, RTPLAN, REG) with pydicom.

Offline-only module, used by :mod:`mock_tps.dicom_export` and by the tests'
file builders.  Geometry in mm, dose in Gy, arrays (nz, ny, nx) with x fastest,
axial HFS orientation ``[1, 0, 0, 0, 1, 0]`` unless an orientation is given.
"""
from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np

__all__ = ["new_uid", "base_dataset", "write_ct_slices", "write_rtstruct", "write_rtdose", "write_rtplan",
           "write_registration", "SOP_CLASS"]

SOP_CLASS = {
    "CT": "1.2.840.10008.5.1.4.1.1.2",
    "RTDOSE": "1.2.840.10008.5.1.4.1.1.481.2",
    "RTSTRUCT": "1.2.840.10008.5.1.4.1.1.481.3",
    "RTPLAN": "1.2.840.10008.5.1.4.1.1.481.5",
    "REG": "1.2.840.10008.5.1.4.1.1.66.1",
}
ROI_TYPE_TO_DICOM = {
    "External": "EXTERNAL", "Ptv": "PTV", "Ctv": "CTV", "Gtv": "GTV", "Organ": "ORGAN", "Avoidance": "AVOIDANCE",
    "Marker": "MARKER", "Bolus": "BOLUS", "Support": "SUPPORT", "Fixation": "FIXATION", "Control": "CONTROL",
    "Cavity": "CAVITY", "ContrastAgent": "CONTRAST_AGENT", "Registration": "REGISTRATION",
    "Isocenter": "ISOCENTER", "DoseRegion": "DOSE_REGION", "TreatedVolume": "TREATED_VOLUME",
    "IrradiatedVolume": "IRRAD_VOLUME",
}


def new_uid() -> str:
    from pydicom.uid import generate_uid
    return str(generate_uid())


def _ds(value: float) -> str:
    """A DS string (≤ 16 characters) for a float: the shortest string that reads back as the
    same double when it fits (so contours round-trip bit for bit), else 10 significant digits."""
    r = repr(float(value))
    if len(r) <= 16 and "e" not in r and "n" not in r:
        return r[:-2] if r.endswith(".0") else r
    for digits in range(10, 0, -1):
        s = f"{value:.{digits}g}"
        if len(s) <= 16:
            return s
    return f"{value:.1e}"


def base_dataset(modality: str, *, patient: Dict[str, str], study_uid: str, frame_uid: Optional[str],
                 series_uid: Optional[str] = None, description: str = "") -> Any:
    """A FileDataset with file meta, patient/study/series/frame modules filled."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SOP_CLASS[modality]
    meta.MediaStorageSOPInstanceUID = new_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    now = _dt.datetime.now()
    ds.StudyDate = ds.SeriesDate = now.strftime("%Y%m%d")
    ds.StudyTime = ds.SeriesTime = now.strftime("%H%M%S")
    ds.Modality = modality
    ds.Manufacturer = "reirrad mock_tps"
    ds.PatientName = patient.get("name", "Anonymous")
    ds.PatientID = patient.get("id", "ANON")
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid or new_uid()
    ds.StudyID = "1"
    ds.SeriesNumber = 1
    ds.SeriesDescription = description
    if frame_uid is not None:
        ds.FrameOfReferenceUID = frame_uid
        ds.PositionReferenceIndicator = ""
    return ds


def _save(ds: Any, path: Any) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(str(p), enforce_file_format=True)
    return p


def write_ct_slices(directory: Any, hu: np.ndarray, first_centre_mm: Sequence[float], spacing_mm: Sequence[float],
                    *, frame_uid: str, study_uid: str, patient: Dict[str, str], patient_position: str = "HFS",
                    orientation: Sequence[float] = (1, 0, 0, 0, 1, 0)) -> list:
    """One CT file per slice; ``hu`` (nz, ny, nx) in patient order (x, y increasing).

    With a flipped ``orientation`` (row along −x and/or column along −y) the stored
    pixels are flipped accordingly and ImagePositionPatient is the first stored pixel.
    """
    hu = np.asarray(hu, dtype=np.float64)
    nz, ny, nx = hu.shape
    dx, dy, dz = (float(s) for s in spacing_mm)
    x0, y0, z0 = (float(c) for c in first_centre_mm)
    flip_x, flip_y = orientation[0] < 0, orientation[4] < 0
    series = new_uid()
    paths = []
    for k in range(nz):
        ds = base_dataset("CT", patient=patient, study_uid=study_uid, frame_uid=frame_uid, series_uid=series,
                          description="CT")
        img = hu[k]
        if flip_x:
            img = img[:, ::-1]
        if flip_y:
            img = img[::-1, :]
        ds.ImagePositionPatient = [_ds(x0 + (nx - 1) * dx if flip_x else x0),
                                   _ds(y0 + (ny - 1) * dy if flip_y else y0), _ds(z0 + k * dz)]
        ds.ImageOrientationPatient = [_ds(float(v)) for v in orientation]
        ds.PatientPosition = patient_position
        ds.PixelSpacing = [_ds(dy), _ds(dx)]
        ds.SliceThickness = _ds(dz)
        ds.InstanceNumber = k + 1
        ds.Rows, ds.Columns = ny, nx
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated = ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1
        ds.RescaleIntercept = "0"
        ds.RescaleSlope = "1"
        ds.PixelData = np.clip(np.rint(img), -32768, 32767).astype("<i2").tobytes()
        paths.append(_save(ds, Path(directory) / f"CT.{k + 1:04d}.dcm"))
    return paths


def write_rtstruct(path: Any, rois: Sequence[Tuple[str, str, Sequence[Tuple[float, Sequence[np.ndarray]]]]], *,
                   frame_uid: str, study_uid: str, patient: Dict[str, str],
                   geometric_type: str = "CLOSED_PLANAR", colors: Optional[Sequence[Sequence[int]]] = None) -> Path:
    """RTSTRUCT with ROIs given as ``(name, RayStation Type, [(z_mm, [contour (n, 2) mm, ...]), ...])``."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence as Seq

    ds = base_dataset("RTSTRUCT", patient=patient, study_uid=study_uid, frame_uid=None, description="RTSTRUCT")
    ds.StructureSetLabel = "reirrad"
    ds.StructureSetDate = ds.StudyDate
    ds.StructureSetTime = ds.StudyTime
    ref = Dataset()
    ref.FrameOfReferenceUID = frame_uid
    ds.ReferencedFrameOfReferenceSequence = Seq([ref])
    ssroi, contours, obs = [], [], []
    for i, (name, roi_type, planes) in enumerate(rois, start=1):
        r = Dataset()
        r.ROINumber = i
        r.ReferencedFrameOfReferenceUID = frame_uid
        r.ROIName = name
        r.ROIGenerationAlgorithm = "MANUAL"
        ssroi.append(r)
        rc = Dataset()
        rc.ReferencedROINumber = i
        rc.ROIDisplayColor = list(colors[i - 1]) if colors else [255, 0, 0]
        items = []
        for z, cs in planes:
            for c in cs:
                c = np.asarray(c, dtype=np.float64)
                item = Dataset()
                item.ContourGeometricType = geometric_type
                item.NumberOfContourPoints = int(c.shape[0])
                pts = np.column_stack([c[:, 0], c[:, 1], np.full(c.shape[0], float(z))])
                item.ContourData = [_ds(float(v)) for v in pts.ravel()]
                items.append(item)
        if items:
            rc.ContourSequence = Seq(items)
        contours.append(rc)
        o = Dataset()
        o.ObservationNumber = i
        o.ReferencedROINumber = i
        o.RTROIInterpretedType = ROI_TYPE_TO_DICOM.get(roi_type, "")
        o.ROIInterpreter = ""
        obs.append(o)
    ds.StructureSetROISequence = Seq(ssroi)
    ds.ROIContourSequence = Seq(contours)
    ds.RTROIObservationsSequence = Seq(obs)
    return _save(ds, path)


def write_rtdose(path: Any, dose_gy: np.ndarray, first_centre_mm: Sequence[float], spacing_mm: Sequence[float], *,
                 frame_uid: str, study_uid: str, patient: Dict[str, str], bits: int = 32,
                 dose_type: str = "PHYSICAL", summation: str = "PLAN", units: str = "GY",
                 description: str = "", offsets: str = "relative",
                 orientation: Sequence[float] = (1, 0, 0, 0, 1, 0),
                 referenced_plan_uid: Optional[str] = None) -> Tuple[Path, float]:
    """RTDOSE of ``dose_gy`` (nz, ny, nx, patient order).  DoseGridScaling = max / (2^bits − 1).

    Returns the path and the DoseGridScaling (Gy per stored unit).
    """
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence as Seq
    from pydicom.tag import Tag

    dose = np.asarray(dose_gy, dtype=np.float64)
    nz, ny, nx = dose.shape
    dx, dy, dz = (float(s) for s in spacing_mm)
    x0, y0, z0 = (float(c) for c in first_centre_mm)
    flip_x, flip_y = orientation[0] < 0, orientation[4] < 0
    top = float(dose.max()) if dose.size else 0.0
    levels = float(2 ** bits - 1)
    scaling = top / levels if top > 0 else 1.0
    ds = base_dataset("RTDOSE", patient=patient, study_uid=study_uid, frame_uid=frame_uid, description=description)
    stored = dose
    if flip_x:
        stored = stored[:, :, ::-1]
    if flip_y:
        stored = stored[:, ::-1, :]
    ds.ImagePositionPatient = [_ds(x0 + (nx - 1) * dx if flip_x else x0),
                               _ds(y0 + (ny - 1) * dy if flip_y else y0), _ds(z0)]
    ds.ImageOrientationPatient = [_ds(float(v)) for v in orientation]
    ds.PixelSpacing = [_ds(dy), _ds(dx)]
    ds.SliceThickness = _ds(dz)
    z = z0 + dz * np.arange(nz)
    # relative offsets run along the image normal row × column (−z for FFS/HFP orientations)
    normal_z = float(np.sign(orientation[0] * orientation[4] - orientation[1] * orientation[3])) or 1.0
    ds.GridFrameOffsetVector = [_ds(float(v)) for v in ((z - z0) * normal_z if offsets == "relative" else z)]
    ds.FrameIncrementPointer = Tag(0x3004, 0x000C)
    ds.NumberOfFrames = nz
    ds.Rows, ds.Columns = ny, nx
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    ds.DoseUnits = units
    ds.DoseType = dose_type
    ds.DoseSummationType = summation
    ds.DoseGridScaling = _ds(scaling)
    scaling = float(ds.DoseGridScaling)
    if referenced_plan_uid:
        ref = Dataset()
        ref.ReferencedSOPClassUID = SOP_CLASS["RTPLAN"]
        ref.ReferencedSOPInstanceUID = referenced_plan_uid
        ds.ReferencedRTPlanSequence = Seq([ref])
    dtype = "<u4" if bits == 32 else "<u2"
    q = np.clip(np.rint(stored / scaling), 0, levels).astype(dtype)
    ds.PixelData = q.tobytes()
    return _save(ds, path), scaling


def write_rtplan(path: Any, *, fractions: int, prescription_gy: Optional[float], frame_uid: str, study_uid: str,
                 patient: Dict[str, str], label: str = "SBRT") -> Tuple[Path, str]:
    """Minimal RTPLAN: one fraction group (fractions, no beams) and a target dose reference."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence as Seq

    ds = base_dataset("RTPLAN", patient=patient, study_uid=study_uid, frame_uid=frame_uid, description="RTPLAN")
    ds.RTPlanLabel = label
    ds.RTPlanDate = ds.StudyDate
    ds.RTPlanTime = ds.StudyTime
    ds.RTPlanGeometry = "PATIENT"
    fg = Dataset()
    fg.FractionGroupNumber = 1
    fg.NumberOfFractionsPlanned = int(fractions)
    fg.NumberOfBeams = 0
    fg.NumberOfBrachyApplicationSetups = 0
    ds.FractionGroupSequence = Seq([fg])
    if prescription_gy is not None:
        dr = Dataset()
        dr.DoseReferenceNumber = 1
        dr.DoseReferenceStructureType = "VOLUME"
        dr.DoseReferenceDescription = "Target"
        dr.DoseReferenceType = "TARGET"
        dr.TargetPrescriptionDose = _ds(float(prescription_gy))
        ds.DoseReferenceSequence = Seq([dr])
    ds.ApprovalStatus = "UNAPPROVED"
    return _save(ds, path), str(ds.SOPInstanceUID)


def write_registration(path: Any, *, fixed_frame_uid: str, moving_frame_uid: str, moving_to_fixed: np.ndarray,
                       study_uid: str, patient: Dict[str, str]) -> Path:
    """Spatial Registration (REG) on the fixed frame: identity for it, ``moving_to_fixed`` for the moving frame."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence as Seq

    ds = base_dataset("REG", patient=patient, study_uid=study_uid, frame_uid=fixed_frame_uid, description="REG")
    ds.ContentDate = ds.StudyDate
    ds.ContentTime = ds.StudyTime
    ds.InstanceNumber = 1
    ds.ContentLabel = "REG"
    items = []
    for uid, m in ((fixed_frame_uid, np.eye(4)), (moving_frame_uid, np.asarray(moving_to_fixed, dtype=float))):
        ms = Dataset()
        ms.FrameOfReferenceTransformationMatrixType = "RIGID"
        ms.FrameOfReferenceTransformationMatrix = [_ds(float(v)) for v in m.ravel()]
        mr = Dataset()
        mr.MatrixSequence = Seq([ms])
        item = Dataset()
        item.FrameOfReferenceUID = uid
        item.MatrixRegistrationSequence = Seq([mr])
        items.append(item)
    ds.RegistrationSequence = Seq(items)
    return _save(ds, path)
