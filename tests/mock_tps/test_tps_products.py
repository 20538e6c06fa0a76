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
