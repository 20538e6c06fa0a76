"""The mock optimizer's products on two row halves give the same bits on one core or two."""
from __future__ import annotations

import numpy as np
import pytest

from mock_tps import _tps_products as products

ROWS = products.SPLIT_ROWS + 101      # odd: the halves differ in size


@pytest.fixture(scope="module")
def matrix():
    rng = np.random.default_rng(7)
    return (rng.random((ROWS, 37)) * (rng.random((ROWS, 37)) < 0.7)).astype(np.float32)


def _serial_halves(fn, n_rows):
    half = n_rows // 2
    return [fn(slice(0, half)), fn(slice(half, n_rows))]


def test_matvec_is_the_halves_joined(matrix):
    x = np.linspace(0.0, 3.0, matrix.shape[1])
    expected = np.concatenate(_serial_halves(lambda r: matrix[r] @ x.astype(np.float32), ROWS)).astype(np.float64)
    assert np.array_equal(products.matvec(matrix, x), expected)
    assert np.allclose(products.matvec(matrix, x), matrix.astype(np.float64) @ x, rtol=1e-5)


@pytest.mark.parametrize("columns", [None, 2, 5])
def test_rmatvec_adds_the_halves_in_a_fixed_order(matrix, columns):
    rng = np.random.default_rng(columns or 0)
    y = rng.random(ROWS) if columns is None else rng.random((ROWS, columns))
    y32 = y.astype(np.float32)
    first, second = _serial_halves(lambda r: products._rmatvec_rows(matrix[r], y32[r]), ROWS)
    assert np.array_equal(products.rmatvec(matrix, y), first + second)
    assert np.allclose(products.rmatvec(matrix, y), matrix.astype(np.float64).T @ y, rtol=1e-4)


def test_gram_of_scaled_rows(matrix):
    rows = np.arange(0, ROWS, 1)
    columns = np.array([0, 3, 4, 10, 36])
    scale = np.sqrt(np.linspace(0.5, 2.0, rows.size))
    b = matrix[np.ix_(rows, columns)].astype(np.float64) * scale[:, None]
    assert np.allclose(products.gram(matrix, rows, columns, scale), b.T @ b, rtol=1e-4)
    half = rows.size // 2

    def serial(part):
        block = matrix[np.ix_(rows[part], columns)] * scale[part].astype(np.float32)[:, None]
        return np.asarray(block.T @ block, dtype=np.float64)
    assert np.array_equal(products.gram(matrix, rows, columns, scale),
                          serial(slice(0, half)) + serial(slice(half, rows.size)))


def test_small_matrices_are_not_split():
    a = np.arange(12, dtype=np.float32).reshape(4, 3)
    assert np.array_equal(products.matvec(a, np.ones(3)), np.array([3.0, 12.0, 21.0, 30.0]))
    assert np.array_equal(products.rmatvec(a, np.ones(4)), np.array([18.0, 22.0, 26.0]))


def test_gram_of_a_fortran_ordered_matrix_is_that_of_the_c_ordered_one(matrix):
    # the working copy of a CSC beamlet matrix is Fortran-ordered: its blocks are gathered
    # column by column into the scratch buffer, and the Gram matrix keeps its bits
    fortran = np.asfortranarray(matrix)
    rows = np.arange(3, ROWS, 2)
    columns = np.array([1, 2, 7, 30])
    scale = np.linspace(0.1, 1.0, rows.size)
    scratch = products.Scratch()
    assert np.array_equal(products.gram(fortran, rows, columns, scale, scratch),
                          products.gram(matrix, rows, columns, scale))
    # a second, smaller use of the same scratch is right too
    assert np.array_equal(products.gram(fortran, rows[:50], columns[:2], scale[:50], scratch),
                          products.gram(matrix, rows[:50], columns[:2], scale[:50]))


def test_gather_of_a_fortran_ordered_matrix(matrix):
    fortran = np.asfortranarray(matrix)
    rows, columns = np.array([0, 1, 7, 100, ROWS - 1]), np.array([0, 5, 36])
    expected = matrix[np.ix_(rows, columns)]
    out = products.Scratch().get(rows.size * matrix.shape[1], np.float32)
    block = products.gather(fortran, rows, columns, out)
    assert np.array_equal(block, expected) and block.flags.f_contiguous
    assert np.shares_memory(block, out)


def test_take_rows_writes_the_rows_into_the_buffer(matrix):
    rows = np.arange(1, ROWS, 1)          # past SPLIT_ROWS: taken half by half
    out = np.empty(ROWS * matrix.shape[1], dtype=np.float32)
    block = products.take_rows(matrix, rows, out)
    assert np.array_equal(block, matrix[rows]) and block.flags.c_contiguous
    assert np.shares_memory(block, out)


def test_scratch_grows_and_reuses_its_buffer():
    scratch = products.Scratch()
    a = scratch.get(10, np.float32)
    b = scratch.get(5, np.float64)                  # 40 bytes: fits in the first buffer
    assert a.size == 10 and b.size == 5 and np.shares_memory(a, b)
    c = scratch.get(100, np.float32)                # larger: a new buffer
    assert c.size == 100 and not np.shares_memory(a, c)


def test_problem_rows_of_a_csc_matrix_come_from_its_row_major_twin():
    import scipy.sparse
    from mock_tps._tps_function_spec import FunctionSpec
    from mock_tps._tps_merit import prepare
    rng = np.random.default_rng(3)
    dense = (rng.random((40, 6)) + 0.1).astype(np.float32)
    spec = FunctionSpec("MaxDose", np.arange(40), np.ones(40), dose_level_gy=10.0)
    problem = prepare(scipy.sparse.csc_matrix(dense), [spec], single=True)
    assert problem.matrix.flags.f_contiguous          # the working copy of a CSC matrix
    rows = np.array([2, 3, 17, 39])
    first = problem.rows_of(rows)
    assert np.array_equal(first, dense[rows]) and first.flags.c_contiguous
    twin = problem.row_major.get()
    assert twin.flags.c_contiguous and problem.row_major.get() is twin    # made once
    assert np.array_equal(problem.rows_of(rows[:2]), dense[rows[:2]])
