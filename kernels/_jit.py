"""The one decorator every kernel uses: Numba's njit, cached on disk unless disabled.

FASTMLP_NUMBA_CACHE=0 turns the on-disk cache off (every process compiles afresh).
NUMBA_CACHE_DIR, Numba's own variable, relocates it. Where no cache location is
writable, Numba refuses cache=True at decoration time; we then compile without one
rather than fail the import.

FASTMLP_AVX512=1 (opt-in, read once, before Numba starts) compiles the kernels with
512-bit vectors on CPUs that have AVX-512: Numba otherwise keeps LLVM's preference for
256-bit code on these parts. It is process-wide (it sets NUMBA_CPU_FEATURES to the host's
features without that preference), it has its own entries in the kernel cache, and
fastmath sums then add in another order: results are reproducible for the same setting,
not across settings. Measured gain: the deep network's epoch 18% shorter, the book
network none (BENCHMARKS.md).
"""
import os
import sys


def _wide_vectors():
    """With FASTMLP_AVX512 set, the NUMBA_CPU_FEATURES value for 512-bit code, else None."""
    if os.environ.get("FASTMLP_AVX512", "0").strip().lower() not in ("1", "true", "yes", "on"):
        return None
    import llvmlite.binding as ll
    features = ll.get_host_cpu_features().flatten()
    return f"{features},-prefer-256-bit" if "+avx512f" in features.split(",") else None


WIDE_FEATURES = _wide_vectors()
if WIDE_FEATURES is not None:
    os.environ["NUMBA_CPU_FEATURES"] = WIDE_FEATURES
    if "numba" in sys.modules:  # imported before us: its configuration is already read
        from numba.core import config as _config
        _config.CPU_FEATURES = WIDE_FEATURES

from numba import njit  # noqa: E402  (after NUMBA_CPU_FEATURES is settled)

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
