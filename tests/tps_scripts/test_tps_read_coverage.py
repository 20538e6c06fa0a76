"""``roi_coverage_on``: GetRoiGeometryAsVoxels bytes as coverage k / 255, or as the bytes themselves."""
import numpy as np
import pytest

from constraints.errors import InputError
from constraints.grid import Grid
from tps_scripts.tps_read import roi_coverage_on

GRID = Grid((0.0, 0.0, 0.0), (1.0, 1.0, 1.0), (2, 1, 3))


class _Geometry:
    def __init__(self, values):
        self.values = values

    def GetRoiGeometryAsVoxels(self, *, Corner, VoxelSize, NrVoxels):  # noqa: N802,N803 - RayStation's names
        assert NrVoxels == {"x": 3, "y": 1, "z": 2}
        return self.values


def test_bytes_as_coverage_and_as_bytes():
    vox = np.array([0, 51, 255, 255, 102, 0], dtype=np.uint8)
    cov = roi_coverage_on(_Geometry(vox), GRID, "ROI 'a'")
    assert cov.shape == (2, 1, 3) and cov.dtype == np.float64
    assert cov.ravel().tolist() == [0.0, 0.2, 1.0, 1.0, 0.4, 0.0]            # 51/255, 102/255
    raw = roi_coverage_on(_Geometry(vox), GRID, "ROI 'a'", as_bytes=True)
    assert raw.dtype == np.uint8 and raw.shape == (2, 1, 3) and raw.ravel().tolist() == vox.tolist()


def test_not_bytes_stays_floats_and_a_wrong_count_is_refused():
    ints = [0, 51, 255, 255, 102, 0]                                        # e.g. a list from .NET
    cov = roi_coverage_on(_Geometry(ints), GRID, "ROI 'a'", as_bytes=True)
    assert cov.dtype == np.float64 and cov.ravel().tolist() == [0.0, 0.2, 1.0, 1.0, 0.4, 0.0]
    for as_bytes in (False, True):
        with pytest.raises(InputError, match="ROI 'a': GetRoiGeometryAsVoxels gave 5 values for 6 voxels"):
            roi_coverage_on(_Geometry(np.zeros(5, np.uint8)), GRID, "ROI 'a'", as_bytes=as_bytes)
