"""Tests of mock_tps.dose_engine (pyRadPlan SVD pencil beam, 6 MV generic machine).

Geometry of the water phantom used here (DICOM patient coordinates, HFS):
a water box |x| < 45 mm, |y| < 55 mm (anterior surface y = -55 mm) in air, 3 mm
voxels; a 20 x 20 x 20 mm target centred at (x, y, z) = (15, -10, 0) mm.
"""
from __future__ import annotations

import time

import numpy as np
import pytest

pytest.importorskip("pyRadPlan")
sp = pytest.importorskip("scipy.sparse")

from constraints.errors import InputError  # noqa: E402
from mock_tps._phantom_data import BeamSpec, GridSpec  # noqa: E402
from mock_tps import dose_engine as de  # noqa: E402

SP_MM = 3.0
NZ, NY, NX = 16, 40, 34
GRID = GridSpec(
    corner_mm=(-NX / 2 * SP_MM, -NY / 2 * SP_MM, -NZ / 2 * SP_MM), spacing_xyz_mm=(SP_MM,) * 3, shape_zyx=(NZ, NY, NX)
)
ISO = (15.0, -10.0, 0.0)


@pytest.fixture(scope="module", autouse=True)
def _cache_dir(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("REIRRAD_CACHE_DIR", str(tmp_path_factory.mktemp("rr_dose_cache")))
    yield
    mp.undo()


@pytest.fixture(scope="module")
def water():
    x, y, z = GRID.centres_mm()
    Z, Y, X = np.meshgrid(z, y, x, indexing="ij")
    body = (np.abs(X) < 45) & (np.abs(Y) < 55)
    hu = np.where(body, 0.0, -1000.0).astype(np.float32)
    target = (np.abs(X - ISO[0]) < 10) & (np.abs(Y - ISO[1]) < 10) & (np.abs(Z - ISO[2]) < 10)
    return dict(X=X, Y=Y, Z=Z, x=x, y=y, z=z, body=body, hu=hu, target=target)


@pytest.fixture(scope="module")
def three_beams(water):
    """Gantry 0 (AP), 90 (from patient left) and 180 (PA); open-field doses (n_beams, nz, ny, nx)."""
    beams = [BeamSpec(f"G{g}", float(g), 0.0, 0.0, ISO) for g in (0, 90, 180)]
    res = de.influence_matrix(water["hu"], GRID, water["target"], GRID, beams, 5.0, dose_region_mask=water["body"])
    doses = de.beam_doses_gy(res, 3).reshape(3, NZ, NY, NX)
    return res, doses


def _iz(water, z_mm):
    return int(np.argmin(np.abs(water["z"] - z_mm)))


def _ix(water, x_mm):
    return int(np.argmin(np.abs(water["x"] - x_mm)))


def _iy(water, y_mm):
    return int(np.argmin(np.abs(water["y"] - y_mm)))


def test_matrix_type_shape_units(three_beams):
    res, _ = three_beams
    A = res.matrix_gy
    assert isinstance(A, sp.csc_matrix)
    assert A.dtype == np.float32
    assert A.shape[0] == GRID.n_voxels
    assert A.shape[1] == res.beamlet_beam_index.size
    assert A.data.min() >= 0.0
    idx = res.beamlet_beam_index
    assert set(np.unique(idx)) == {0, 1, 2}
    assert np.all(np.diff(idx) >= 0)  # columns grouped beam by beam
    # 20 mm target, 5 mm bixels: at least 4 x 4 beamlets per beam
    assert np.bincount(idx).min() >= 16


def test_gantry0_ap_depth_dose(water, three_beams):
    """Gantry 0 enters from anterior (-y): build-up to dmax ~15 mm, then fall-off."""
    _, doses = three_beams
    d = doses[0][_iz(water, 0.0), :, _ix(water, ISO[0])]  # central axis through the target
    y = water["y"]
    inside = np.abs(y) < 55
    assert np.all(d[~inside] == 0.0)  # no dose in air (outside the dose region)
    i_max = int(np.argmax(d))
    depth_max_mm = y[i_max] + 55.0
    assert 5.0 <= depth_max_mm <= 25.0, depth_max_mm  # 6 MV dmax ~ 15 mm
    beyond = d[i_max: np.nonzero(inside)[0][-1] + 1]
    assert np.all(np.diff(beyond) <= 1e-6 * d.max())  # monotone fall-off beyond dmax
    assert beyond[-1] < 0.75 * d.max()  # ~95 mm deeper: clearly attenuated
    assert d[_iy(water, -40.0)] > d[_iy(water, 40.0)]


def test_gantry180_pa_enters_from_posterior(water, three_beams):
    _, doses = three_beams
    d = doses[2][_iz(water, 0.0), :, _ix(water, ISO[0])]
    y = water["y"]
    i_max = int(np.argmax(d))
    assert 5.0 <= 55.0 - y[i_max] <= 25.0
    assert d[_iy(water, 40.0)] > d[_iy(water, -40.0)]


def test_gantry90_enters_from_patient_left(water, three_beams):
    """IEC 61217 / HFS: gantry 90 puts the source at the patient's left (+x)."""
    _, doses = three_beams
    d = doses[1][_iz(water, 0.0), _iy(water, ISO[1]), :]
    assert d[_ix(water, 35.0)] > d[_ix(water, -35.0)]
    assert water["x"][int(np.argmax(d))] > 20.0


def test_open_field_centroid_inside_target_projection(water, three_beams):
    _, doses = three_beams
    X, Y, Z = water["X"], water["Y"], water["Z"]
    d0 = doses[0]
    w = d0 / d0.sum()
    cx, cz = float((w * X).sum()), float((w * Z).sum())
    # AP beam: the projection of the target onto the (x, z) plane is [5, 25] x [-10, 10]
    assert 5.0 < cx < 25.0 and -10.0 < cz < 10.0, (cx, cz)
    d1 = doses[1]
    w1 = d1 / d1.sum()
    cy, cz1 = float((w1 * Y).sum()), float((w1 * Z).sum())
    # lateral beam: projection onto (y, z) is [-20, 0] x [-10, 10]
    assert -20.0 < cy < 0.0 and -10.0 < cz1 < 10.0, (cy, cz1)
    # AP field at the target depth: inside the projection >> outside (x = -20 mm)
    iz, iy = _iz(water, 0.0), _iy(water, ISO[1])
    assert d0[iz, iy, _ix(water, -20.0)] < 0.2 * d0[iz, iy, _ix(water, 15.0)]


def test_sub_box_dose_grid_matches_full_grid(water, three_beams):
    """Row order (z, y, x) C-order, and the tissue upstream of a cropped dose box
    counts (pyRadPlan's defaults would start the depth at the box edge)."""
    _, doses = three_beams
    z0, y0, x0 = 3, 20, 8
    sub = GridSpec(
        corner_mm=(GRID.corner_mm[0] + x0 * SP_MM, GRID.corner_mm[1] + y0 * SP_MM, GRID.corner_mm[2] + z0 * SP_MM),
        spacing_xyz_mm=(SP_MM,) * 3,
        shape_zyx=(10, 15, 18),
    )
    beams = [BeamSpec("G0", 0.0, 0.0, 0.0, ISO)]
    res = de.influence_matrix(water["hu"], GRID, water["target"], sub, beams, 5.0, dose_region_mask=water["body"])
    assert res.matrix_gy.shape[0] == sub.n_voxels
    d_sub = de.beam_doses_gy(res, 1)[0].reshape(sub.shape_zyx)
    d_full = doses[0][z0:z0 + 10, y0:y0 + 15, x0:x0 + 18]
    assert np.allclose(d_sub, d_full, rtol=1e-4, atol=1e-6 * d_full.max())
    # the box starts 5 mm past the target centre (60 mm deep): no build-up at its edge
    prof = d_sub[5, :, 9]
    assert np.all(np.diff(prof) < 0)
    # regression guard: pyRadPlan's own default (ray tracing on the cropped dose grid)
    # either crashes (rays missing the box: a broadcasting ValueError inside
    # pyRadPlan 0.5.0) or gets the depth badly wrong
    try:
        bad = de.influence_matrix(
            water["hu"], GRID, water["target"], sub, beams, 5.0, dose_region_mask=water["body"],
            engine_options={"trace_on_dose_grid": True, "ignore_outside_densities": True}, use_cache=False,
        )
    except ValueError:
        return
    d_bad = de.beam_doses_gy(bad, 1)[0].reshape(sub.shape_zyx)
    assert np.abs(d_bad - d_full).max() > 0.2 * d_full.max()


def test_cache_hit_identical_and_fast(water, tmp_path, monkeypatch):
    monkeypatch.setenv("REIRRAD_CACHE_DIR", str(tmp_path))
    beams = [BeamSpec("G40", 40.0, 0.0, 0.0, ISO)]
    t0 = time.perf_counter()
    r1 = de.influence_matrix(water["hu"], GRID, water["target"], GRID, beams, 5.0, dose_region_mask=water["body"])
    t_compute = time.perf_counter() - t0
    files = list(tmp_path.glob("dij_*.npz"))
    assert len(files) == 1
    t0 = time.perf_counter()
    r2 = de.influence_matrix(water["hu"], GRID, water["target"], GRID, beams, 5.0, dose_region_mask=water["body"])
    t_load = time.perf_counter() - t0
    assert (r1.matrix_gy != r2.matrix_gy).nnz == 0
    assert r1.matrix_gy.shape == r2.matrix_gy.shape
    assert np.array_equal(r1.beamlet_beam_index, r2.beamlet_beam_index)
    assert t_load < 0.2 * t_compute, (t_load, t_compute)
    # any input change → a new cache entry
    hu2 = water["hu"].copy()
    hu2[0, 0, 0] = -999.0
    de.influence_matrix(hu2, GRID, water["target"], GRID, beams, 5.0, dose_region_mask=water["body"])
    assert len(list(tmp_path.glob("dij_*.npz"))) == 2


def test_no_cache_written_when_disabled(water, tmp_path, monkeypatch):
    monkeypatch.setenv("REIRRAD_CACHE_DIR", str(tmp_path / "c"))
    de.influence_matrix(
        water["hu"], GRID, water["target"], GRID, [BeamSpec("G0", 0.0, 0.0, 0.0, ISO)], 10.0,
        dose_region_mask=water["body"], use_cache=False,
    )
    assert not (tmp_path / "c").exists()


def test_cache_evicts_least_recently_used_beyond_the_limit(water, tmp_path, monkeypatch):
    """Four 1 000-byte entries used at t = 1, 2, 3, 4 s and a 2 500-byte limit: the two
    oldest go; a cache hit refreshes an entry; the file just written is kept; other
    files in the folder are never touched."""
    import os
    monkeypatch.setenv("REIRRAD_CACHE_DIR", str(tmp_path))
    paths = [tmp_path / f"dij_{k}.npz" for k in range(4)]
    for k, p in enumerate(paths):
        p.write_bytes(b"x" * 1000)
        os.utime(p, (k + 1.0, k + 1.0))
    (tmp_path / "notes.txt").write_bytes(b"y" * 10_000)
    removed = de.evict_cache(max_bytes=2500)
    assert sorted(removed) == paths[:2]
    assert [p.exists() for p in paths] == [False, False, True, True] and (tmp_path / "notes.txt").exists()
    assert de.evict_cache(keep=paths[2], max_bytes=0) == [paths[3]]
    # a real entry: written, then refreshed by a hit, then evicted last
    monkeypatch.setenv("REIRRAD_CACHE_MAX_GB", "1e-9")           # 1 byte: keep only the newest
    beams = [BeamSpec("G40", 40.0, 0.0, 0.0, ISO)]
    de.influence_matrix(water["hu"], GRID, water["target"], GRID, beams, 10.0, dose_region_mask=water["body"])
    assert [p.name for p in tmp_path.glob("dij_*.npz")] != [] and not paths[2].exists()
    monkeypatch.setenv("REIRRAD_CACHE_MAX_GB", "lots")
    with pytest.raises(InputError, match="REIRRAD_CACHE_MAX_GB must be a positive number"):
        de.cache_max_bytes()


def test_dose_box_grid_covers_mask(water):
    g = de.dose_box_grid(GRID, water["target"], 2.5, (10.0, 10.0, 5.0))
    assert g.spacing_xyz_mm == (2.5, 2.5, 2.5)
    lo = np.asarray(g.corner_mm)
    hi = lo + 2.5 * np.asarray(g.shape_zyx[::-1])
    # target voxels span x [6, 24] mm and z [-9, 9] mm (3 mm voxel edges)
    assert lo[0] <= 6.0 - 10.0 and hi[0] >= 24.0 + 10.0
    assert lo[2] <= -9.0 - 5.0 and hi[2] >= 9.0 + 5.0
    assert hi[0] - lo[0] < 18.0 + 20.0 + 2.5  # rounded outward by less than a voxel
    ct_lo = np.asarray(GRID.corner_mm)
    assert np.all(lo >= ct_lo - 1e-9)


@pytest.mark.parametrize(
    "kwargs, word",
    [
        (dict(bixel_mm=0.0), "bixel_mm"),
        (dict(bixel_mm="wide"), "bixel_mm"),
        (dict(beams=[]), "beams"),
        (dict(target_mask="empty"), "target_mask"),
        (dict(ct_hu="short"), "ct_hu"),
        (dict(dose_grid="outside"), "dose_grid"),
    ],
)
def test_bad_inputs_raise_input_error(water, kwargs, word):
    args = dict(
        ct_hu=water["hu"], ct_grid=GRID, target_mask=water["target"], dose_grid=GRID,
        beams=[BeamSpec("G0", 0.0, 0.0, 0.0, ISO)], bixel_mm=5.0,
    )
    args.update(kwargs)
    if isinstance(args["target_mask"], str):
        args["target_mask"] = np.zeros(GRID.shape_zyx)
    if isinstance(args["ct_hu"], str):
        args["ct_hu"] = water["hu"][:-1]
    if isinstance(args["dose_grid"], str):
        args["dose_grid"] = GridSpec((500.0, 0.0, 0.0), (3.0, 3.0, 3.0), (2, 2, 2))
    with pytest.raises(InputError, match=word):
        de.influence_matrix(**args)


def test_target_reaching_the_ct_edge_is_refused_clearly(water):
    """pyRadPlan 0.5.0 crashes with a numpy broadcasting error when beamlets miss
    the patient; we turn that into an InputError that says what to do."""
    X, Y = water["X"], water["Y"]
    column = (np.abs(X - ISO[0]) < 10) & (np.abs(Y - ISO[1]) < 10)  # runs through all z
    with pytest.raises(InputError, match="do not hit the patient"):
        de.influence_matrix(
            water["hu"], GRID, column, GRID, [BeamSpec("G90", 90.0, 0.0, 0.0, ISO)], 5.0,
            dose_region_mask=water["body"], use_cache=False,
        )


def test_beams_computed_in_groups_give_the_same_matrix(water, three_beams):
    """The engine computes at most BEAMS_PER_CALL beams per pyRadPlan call, in worker
    processes, and joins the columns: one beam per call, in one process or two, gives the
    same matrix, entry for entry, as all three at once."""
    from mock_tps._pyradplan_dose import compute_matrix

    res, _ = three_beams
    beams = tuple(BeamSpec(f"G{g}", float(g), 0.0, 0.0, ISO) for g in (0, 90, 180))
    args = (water["hu"], GRID, water["target"], water["body"], GRID, beams, 5.0, dict(de._DEFAULT_ENGINE_OPTIONS))
    one_by_one = compute_matrix(*args, beams_per_call=1, workers=1)
    two_workers = compute_matrix(*args, beams_per_call=1, workers=2)
    at_once = compute_matrix(*args, beams_per_call=3, workers=1)
    for a, idx in (one_by_one, two_workers):
        assert np.array_equal(idx, at_once[1])
        assert a.shape == at_once[0].shape == res.matrix_gy.shape
        assert abs(a - at_once[0]).max() == 0.0
        assert a.dtype == np.float32 and a.has_canonical_format
        assert a.indices.dtype == a.indptr.dtype == np.int32


@pytest.mark.parametrize("n_beams, per_call, workers, sizes", [
    (17, 4, 2, [4, 4, 3, 3, 3]),   # ceil(17 / 4) = 5 groups, sizes as equal as can be
    (4, 4, 2, [2, 2]),             # one group would idle the second worker
    (4, 4, 1, [4]),
    (1, 4, 2, [1]),
    (3, 1, 2, [1, 1, 1]),
])
def test_beam_groups_cover_every_beam_once_in_order(n_beams, per_call, workers, sizes):
    from mock_tps._pyradplan_dose import beam_groups

    groups = beam_groups(n_beams, per_call, workers)
    assert [b - a for a, b in groups] == sizes
    assert groups[0][0] == 0 and groups[-1][1] == n_beams
    assert all(g[1] == h[0] for g, h in zip(groups, groups[1:]))


def test_dose_workers_from_the_environment(monkeypatch):
    monkeypatch.setenv("REIRRAD_DOSE_WORKERS", "3")
    assert de.dose_workers() == 3
    monkeypatch.delenv("REIRRAD_DOSE_WORKERS")
    assert 1 <= de.dose_workers() <= 2
    for bad in ("0", "-1", "two"):
        monkeypatch.setenv("REIRRAD_DOSE_WORKERS", bad)
        with pytest.raises(InputError, match="REIRRAD_DOSE_WORKERS"):
            de.dose_workers()


def test_fast_kernel_lookup_gives_pyradplans_dose(water, three_beams):
    """The shared-index bilinear lookup (mock_tps._pyradplan_kernel) against pyRadPlan's
    engine as shipped: same sparsity, every entry within float32 rounding (measured: equal
    bit for bit, here and on the default-size T4-T5 matrix, 27 M non-zeros of 4 beams)."""
    from mock_tps._pyradplan_dose import compute_matrix

    res, _ = three_beams
    beams = tuple(BeamSpec(f"G{g}", float(g), 0.0, 0.0, ISO) for g in (0, 90, 180))
    shipped, idx = compute_matrix(water["hu"], GRID, water["target"], water["body"], GRID, beams, 5.0,
                                  dict(de._DEFAULT_ENGINE_OPTIONS), workers=1, fast_kernel_lookup=False)
    fast = res.matrix_gy
    assert np.array_equal(idx, res.beamlet_beam_index)
    assert np.array_equal(fast.indptr, shipped.indptr) and np.array_equal(fast.indices, shipped.indices)
    # float32 has a 2**-24 = 6e-8 relative step: allow a few steps of the largest entry
    assert abs(fast - shipped).max() <= 4 * 2.0 ** -24 * shipped.max()


def test_bilinear_lookup_is_exact_on_a_plane():
    """Bilinear interpolation reproduces a plane a + b x + c z exactly; every component
    at once; grid -4..4 mm in 0.5 mm steps, query points anywhere inside, and the grid's
    own edge; a point outside the grid is an error, as pyRadPlan's bounds_error=True."""
    from mock_tps._pyradplan_kernel import UniformKernels, bilinear_uniform

    g = np.arange(-8, 9) * 0.5
    X, Z = np.meshgrid(g, g, indexing="ij")
    k = UniformKernels([])
    k.origin_mm, k.step_mm = -4.0, 0.5
    k.table = np.stack([1.0 + 2.0 * X - 3.0 * Z, 0.5 * X + Z])
    rng = np.random.default_rng(0)
    q = np.vstack([rng.uniform(-4, 4, size=(200, 2)), [[4.0, 4.0], [-4.0, 4.0], [0.0, -4.0]]])
    v = bilinear_uniform(k, q)
    assert v.shape == (2, q.shape[0])
    assert np.allclose(v[0], 1.0 + 2.0 * q[:, 0] - 3.0 * q[:, 1], atol=1e-12)
    assert np.allclose(v[1], 0.5 * q[:, 0] + q[:, 1], atol=1e-12)
    with pytest.raises(ValueError, match="outside the kernel grid"):
        bilinear_uniform(k, np.array([[4.6, 0.0]]))


@pytest.mark.skipif("fork" not in __import__("multiprocessing").get_all_start_methods(), reason="needs fork")
def test_ctrl_c_delivered_to_a_helper_thread_stops_the_workers_at_once():
    # the kernel may hand a SIGINT to any thread; with a blocking wait the parent saw it only
    # when the workers were done (CI: the demo ran to its end after Ctrl-C)
    import multiprocessing
    import signal
    import threading
    from concurrent.futures import ProcessPoolExecutor

    from mock_tps._pyradplan_dose import gather

    workers = []

    def ctrl_c_to_this_thread():
        time.sleep(1.0)
        workers.extend(multiprocessing.active_children())
        signal.pthread_kill(threading.get_ident(), signal.SIGINT)

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # CI may start with SIGINT ignored
    try:
        helper = threading.Thread(target=ctrl_c_to_this_thread)
        helper.start()
        t0 = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            gather(ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork")), time.sleep, [60.0, 60.0])
        elapsed_s = time.monotonic() - t0
        helper.join()
    finally:
        signal.signal(signal.SIGINT, previous)
    assert elapsed_s < 20.0, f"Ctrl-C took {elapsed_s:.1f} s to stop workers of 60 s each"
    assert len(workers) == 2
    for process in workers:  # the pool's own thread may reap a worker first: then its pid is gone
        process.join(timeout=5.0)
        assert process.exitcode is not None or not _pid_exists(process.pid), process


@pytest.mark.skipif("fork" not in __import__("multiprocessing").get_all_start_methods(), reason="needs fork")
def test_ctrl_c_while_the_workers_fork_is_not_lost():
    # a SIGINT handled inside the parent's at-fork hooks (logging's, here a test hook) was
    # printed as "Exception ignored" and the demo went on (CI, pyRadPlan's slow fork)
    import multiprocessing
    import os
    import signal
    from concurrent.futures import ProcessPoolExecutor

    from mock_tps._pyradplan_dose import gather

    armed = [True]

    def ctrl_c_in_an_at_fork_hook():
        if armed:
            armed.clear()
            os.kill(os.getpid(), signal.SIGINT)

    os.register_at_fork(after_in_parent=ctrl_c_in_an_at_fork_hook)  # stays registered, disarmed after one fork
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        t0 = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            gather(ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork")), time.sleep, [60.0, 60.0])
        elapsed_s = time.monotonic() - t0
    finally:
        armed.clear()
        signal.signal(signal.SIGINT, previous)
    assert elapsed_s < 20.0, f"Ctrl-C during the fork took {elapsed_s:.1f} s to stop workers of 60 s each"


def _pid_exists(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.skipif(not hasattr(__import__("signal"), "SIGINT") or __import__("os").name != "posix", reason="POSIX signals")
def test_ctrl_c_while_contours_are_quantized_is_not_lost():
    # numpy 2's np.char.mod swallowed a SIGINT arriving while it ran (the demo went on after
    # Ctrl-C in 11 of 12 tries); quantize_mm runs for most of a phantom's anatomy build
    import signal
    import subprocess
    import sys
    code = ("import time, numpy as np\n"
            "from mock_tps._contours import quantize_mm\n"
            "p = np.random.default_rng(0).random((20000, 2)) * 100\n"
            "print('go', flush=True)\n"
            "t0 = time.time()\n"
            "try:\n"
            "    while time.time() - t0 < 10:\n"
            "        quantize_mm(p)\n"
            "    print('lost', flush=True)\n"
            "except KeyboardInterrupt:\n"
            "    print('interrupted', flush=True)\n")
    outcomes = []
    for delay_s in (0.2, 0.31, 0.43):
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        assert proc.stdout.readline().strip() == "go"
        time.sleep(delay_s)
        proc.send_signal(signal.SIGINT)
        outcomes.append(proc.communicate(timeout=60)[0].strip())
    assert outcomes == ["interrupted"] * 3
