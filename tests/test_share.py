"""Work sharing between threads (kernels/_share.py): every item taken exactly once, and
the big kernels' results independent of who took what."""
import numba
import numpy as np
import pytest
from numba import njit, prange

from fastmlp.kernels._runtime.jit import host_has_avx512
from fastmlp.kernels.fast import dense
from fastmlp.kernels.fast.matmul import tile_columns
from fastmlp.kernels.fast._share import SLOT, claim, deal, make_counters


@njit
def _sequence(counters):
    """One share of 5 items, then one of 40: the owner takes from the front (a quarter of
    what is left, at least one), another thread half of what is left from the back
    while at least `keep` are left."""
    deal(counters, 0, 5)
    small = (claim(counters, 0, True, 1), claim(counters, 0, True, 1),    # 0, 1
             claim(counters, 0, False, 2),                                # 3 left: 4
             claim(counters, 0, False, 3),                                # 2 left < keep 3: none
             claim(counters, 0, False, 1),                                # 2 left: 3
             claim(counters, 0, True, 1), claim(counters, 0, True, 1),    # 2, then none
             claim(counters, 0, False, 1))                                # none
    deal(counters, 0, 40)
    big = (claim(counters, 0, True, 1), claim(counters, 0, False, 1),    # 0..9, 30 left: 25..39
           claim(counters, 0, True, 1), claim(counters, 0, False, 1))    # 15 left: 10..12, 12 left: 19..24
    return small, big


def test_claim_takes_the_front_for_the_owner_and_the_back_for_others():
    small, big = _sequence(make_counters(1))
    ranges = [(t0, t1) if t1 > t0 else None for t0, t1 in small]
    assert ranges == [(0, 1), (1, 2), (4, 5), None, (3, 4), (2, 3), None, None]
    assert big == ((0, 10), (25, 40), (10, 13), (19, 25))


@njit(parallel=True)
def _take_all(taken_by, per_thread, counters, parts, items):
    for q in range(parts):
        deal(counters, q, items)
    for p in prange(parts):
        for r in range(parts):
            q = (p + r) % parts
            while True:
                t0, t1 = claim(counters, q, r == 0, 1)
                if t0 >= t1:
                    break
                for t in range(t0, t1):
                    taken_by[q, t] = p + 1
                    per_thread[p * SLOT] += 1


@pytest.mark.parametrize("parts", [2, 3, 7])
def test_every_item_is_taken_exactly_once_under_contention(parts):
    # Thousands of tiny items, so that the threads keep taking from the same shares at
    # the same time: a double claim shows up as more takes than items.
    items = 4000
    counters = make_counters(parts)
    for _ in range(20):
        taken_by = np.zeros((parts, items), np.int64)
        per_thread = np.zeros(parts * SLOT, np.int64)
        _take_all(taken_by, per_thread, counters, parts, items)
        assert (taken_by > 0).all()
        assert per_thread.sum() == parts * items


def _threads(n):
    if numba.config.NUMBA_NUM_THREADS < n:
        pytest.skip(f"Numba runs fewer than {n} threads here")


@pytest.mark.parametrize("parts", [2, 3, 5])
def test_products_give_the_same_bits_however_the_work_is_shared(parts, rng):
    # More shares than threads: each thread runs its own share, then takes items from
    # the others; the numbers must be those of one share on one thread, every time.
    _threads(2)
    C = make_counters(parts)
    X = rng.standard_normal((256, 784)).astype(np.float32)
    W = rng.standard_normal((100, 784)).astype(np.float32)
    b = rng.standard_normal(100).astype(np.float32)
    dY = rng.standard_normal((256, 100)).astype(np.float32)
    zeros = np.zeros(784, np.float32)
    width = tile_columns(np.float32)
    ref_dW, ref_db = np.empty((100, 784), np.float32), np.empty(100, np.float32)
    dense.matmul(ref_dW, dY, X, zeros, width, True, ref_db, True, 1, make_counters(1))
    for _ in range(10):
        dW, db = np.full_like(ref_dW, np.nan), np.full_like(ref_db, np.nan)
        dense.matmul(dW, dY, X, zeros, width, True, db, True, parts, C)
        assert np.array_equal(dW.view(np.int32), ref_dW.view(np.int32))
        assert np.array_equal(db.view(np.int32), ref_db.view(np.int32))
    if not host_has_avx512():
        return
    ref_Y = np.empty((256, 100), np.float32)
    dense.dense_forward_tiles(ref_Y, X, W, b, 1, make_counters(1))
    for _ in range(10):
        Y = np.full_like(ref_Y, np.nan)
        dense.dense_forward_tiles(Y, X, W, b, parts, C)
        assert np.array_equal(Y.view(np.int32), ref_Y.view(np.int32))


def test_more_shares_than_counters_fall_back_to_the_counters_there_are(rng):
    # A kernel never reads past its counters: asked for 4 shares with counters for 2, it
    # runs 2 (same bits as 1).
    A = rng.standard_normal((40, 30)).astype(np.float32)
    B = rng.standard_normal((40, 200)).astype(np.float32)
    bias = np.zeros(200, np.float32)
    width = tile_columns(np.float32)
    ref = np.empty((30, 200), np.float32)
    dense.matmul(ref, A, B, bias, width, True, bias, False, 1, make_counters(1))
    Y = np.full_like(ref, np.nan)
    dense.matmul(Y, A, B, bias, width, True, bias, False, 4, make_counters(2))
    assert np.array_equal(Y.view(np.int32), ref.view(np.int32))
