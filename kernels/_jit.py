"""The one decorator every kernel uses: Numba's njit, cached on disk unless disabled.

FASTMLP_NUMBA_CACHE=0 turns the on-disk cache off (every process compiles afresh).
NUMBA_CACHE_DIR, Numba's own variable, relocates it. Where no cache location is
writable, Numba refuses cache=True at decoration time; we then compile without one
rather than fail the import.
"""
import os

from numba import njit

CACHE_ENABLED = os.environ.get("FASTMLP_NUMBA_CACHE", "1").strip().lower() not in ("0", "false", "no", "off")

# Dot-product loops need reassociation to vectorise and contraction for FMA. We never
# pass nnan/ninf: NaN and Inf must reach the loss, where training checks for them.
FAST = {"reassoc", "contract"}


def kernel(**options):
    """njit(**options), with cache=True when the cache is enabled and usable."""

    def wrap(function):
        if CACHE_ENABLED:
            try:
                return njit(cache=True, **options)(function)
            except RuntimeError:  # "cannot cache function ...: no locator available"
                pass
        return njit(**options)(function)

    return wrap


def cache_dirs(dispatchers):
    """The directories where Numba keeps the compiled code of these kernels."""
    dirs = []
    for d in dispatchers:
        cache = getattr(d, "_cache", None)
        path = getattr(cache, "_cache_path", None)
        if path and path not in dirs:
            dirs.append(path)
    return dirs
