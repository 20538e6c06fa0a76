"""The CT's stored values are made on first use, with the rule of the eager conversion."""
from __future__ import annotations

import copy

import numpy as np

from mock_tps._patient import ImageStack
from mock_tps._phantom_data import GridSpec


def test_stored_values_made_on_first_read_by_the_rule():
    grid = GridSpec(corner_mm=(0.0, 0.0, 0.0), spacing_xyz_mm=(1.0, 1.0, 1.0), shape_zyx=(1, 1, 7))
    hu = np.array([[[-2000.0, -1024.0, -0.6, 0.4, 0.5, 1.5, 70000.0]]], dtype=np.float32)
    stack = ImageStack(grid, hu)
    assert stack._stored_values._shared is None                 # nothing converted at construction
    twin = copy.deepcopy(stack)
    # stored = clip(rint(HU + 1024), 0, 65535): -976 -> 0, 0, rint(1023.4) = 1023, rint(1024.4) = 1024,
    # rint(1024.5) = 1024 (half to even), rint(1025.5) = 1026, 71024 -> 65535
    want = np.array([0, 0, 1023, 1024, 1024, 1026, 65535], dtype="<u2")
    assert np.frombuffer(stack.PixelData.tobytes(), dtype="<u2").tolist() == want.tolist()
    assert twin._stored is stack._stored                          # snapshots share the one conversion
    assert stack._stored.value.shape == (1, 1, 7) and not stack._stored.value.flags.writeable
