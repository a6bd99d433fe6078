"""The one decorator every kernel uses: Numba's njit, cached on disk unless disabled.

FASTMLP_NUMBA_CACHE=0 turns the on-disk cache off (every process compiles afresh).
NUMBA_CACHE_DIR, Numba's own variable, relocates it. Where no cache location is
writable, Numba refuses cache=True at decoration time; we then compile without one
rather than fail the import. Numba marks a cached kernel with a stamp of its own source
file only, so a kernel that inlines a helper from another file (_math.vexp,
dropout.unit_hash) would keep old code after that helper changed: every kernel's stamp
also carries sources_digest of its file, a hash of that file and of every kernels/*.py
file it imports (kernels/ and its subfolders), directly or through another, and a cache entry written from other
sources is ignored and replaced (no file is deleted, so processes running different
versions side by side cannot trip each other up). An edit recompiles only the kernels
whose files reach the edited one: optim.py, the optimizers; activations.py, the
activations and head_step; _math.py, nearly all.

GOMP_SPINCOUNT, where neither it nor OMP_WAIT_POLICY is set, becomes SPIN_COUNT (1000, the
value libgomp itself takes when it has more threads than CPUs) for this process and its
children. Numba's OpenMP layer ends every parallel loop at a barrier where libgomp's
threads spin 300,000 times by default before they sleep; a spinning thread is never
woken, so when another program holds its core the scheduler returns the core only at the
end of a time slice, and every parallel loop costs milliseconds: beside one busy program
in another terminal the book network at batch 32 trained 26x slower with libgomp's
default (benchmarks/contention.py; BENCHMARKS.md).

FASTMLP_AVX512=1 (opt-in, read once, before Numba starts) compiles the kernels whose loops
Numba vectorises by itself with 512-bit vectors on CPUs that have AVX-512: Numba
otherwise keeps LLVM's preference for 256-bit code on these parts. (The float32 product
tiles, kernels/fast/matmul.py and dense_forward_tiles, use explicit vectors, which LLVM puts
in 512-bit registers either way.) It is process-wide (it sets NUMBA_CPU_FEATURES to the host's
features without that preference, unless NUMBA_CPU_FEATURES is already set), it only
takes effect if nothing was compiled by Numba earlier in the process (else a warning
says so and WIDE_FEATURES is None), it has its own entries in the kernel cache, and
fastmath sums then add in another order: results are reproducible for the same setting,
not across settings. Its measured effect is in BENCHMARKS.md, History (commits ed29c4e
and f6296b1, both before the explicit-vector product tiles).
"""
import hashlib
import os
import re
import sys
import warnings


def host_features():
    """The host CPU's features as LLVM spells them ("+avx2,+avx512f,..."), or None where
    they cannot be read. Uses llvmlite only, so it can run before Numba is imported."""
    try:
        import llvmlite.binding as ll
        return ll.get_host_cpu_features().flatten()
    except RuntimeError:
        return None


def host_has_avx512():
    """Whether this CPU has AVX-512 (32 vector registers of 512 bits)."""
    features = host_features()
    return features is not None and "+avx512f" in features.split(",")


def _wide_vectors():
    """With FASTMLP_AVX512 set, the NUMBA_CPU_FEATURES value for 512-bit code, else None."""
    if os.environ.get("FASTMLP_AVX512", "0").strip().lower() not in ("1", "true", "yes", "on"):
        return None
    if os.environ.get("NUMBA_CPU_FEATURES"):  # the user's own choice wins
        return os.environ["NUMBA_CPU_FEATURES"]
    # Where the features cannot be read, or there is no AVX-512: stay with the default.
    return f"{host_features()},-prefer-256-bit" if host_has_avx512() else None


SPIN_COUNT = "1000"
# libgomp reads it once, when Numba first loads it (the first parallel loop), so it is set
# here, on import; SPIN_COUNT_SET says whether this import set it (fastmlp/bench.py keeps
# it from the other side's processes).
SPIN_COUNT_SET = "GOMP_SPINCOUNT" not in os.environ and "OMP_WAIT_POLICY" not in os.environ
if SPIN_COUNT_SET:
    os.environ["GOMP_SPINCOUNT"] = SPIN_COUNT

WIDE_FEATURES = _wide_vectors()
if WIDE_FEATURES is not None:
    os.environ["NUMBA_CPU_FEATURES"] = WIDE_FEATURES
    if "numba" in sys.modules:  # imported before us: its configuration is already read
        from numba.core import config as _config
        _config.CPU_FEATURES = WIDE_FEATURES

from numba import njit  # noqa: E402  (after NUMBA_CPU_FEATURES is settled)

if WIDE_FEATURES is not None:
    # Numba fixes the target's features when it first compiles; check what it really uses.
    from numba.core.registry import cpu_target
    if "-prefer-256-bit" not in cpu_target.target_context.codegen()._tm_features:
        warnings.warn("FASTMLP_AVX512=1 has no effect: Numba compiled something before fastmlp was "
                      "imported; set it in the environment before starting Python", RuntimeWarning)
        WIDE_FEATURES = None

CACHE_ENABLED = os.environ.get("FASTMLP_NUMBA_CACHE", "1").strip().lower() not in ("0", "false", "no", "off")

# Dot-product loops need reassociation to vectorise and contraction for FMA. We never
# pass nnan/ninf: NaN and Inf must reach the loss, where training checks for them.
FAST = {"reassoc", "contract"}


_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # kernels/
_IMPORTS = {}
_DIGESTS = {}


def _module_file(directory, parts):
    """The .py file of module `parts` (a list of names) relative to `directory`, or None."""
    path = os.path.join(directory, *parts)
    for candidate in (path + ".py", os.path.join(path, "__init__.py")):
        if os.path.isfile(candidate):
            return candidate
    return None


_RELATIVE_IMPORT = re.compile(r"\bfrom\s+(\.+)([\w.]*)\s+import\s+(\([^)]*\)|[^\n;]*(?:\\\n[^\n;]*)*)")


def _imports_of(name):
    """The kernels files (paths relative to kernels/) that kernels/<name> imports with a
    relative import (`from .x import ...`, `from ..x import ...`, `from . import x`).
    A text scan, not a parse (parsing every kernels file took most of a warm import): it
    also counts such lines inside strings and comments, which only adds files to a
    digest, never leaves one out."""
    if name not in _IMPORTS:
        path = os.path.join(_ROOT, name)
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        found = set()
        for dots, module, names in _RELATIVE_IMPORT.findall(text):
            base = os.path.dirname(path)
            for _ in range(len(dots) - 1):
                base = os.path.dirname(base)
            prefix = module.split(".") if module else []
            modules = [prefix] if prefix else []
            names = re.sub(r"#[^\n]*", "", names).strip("()").replace("\\", " ")
            for item in names.split(","):
                words = item.split()
                if words and words[0].isidentifier():
                    modules.append(prefix + [words[0]])
            for parts in modules:
                target = _module_file(base, parts)
                if target is not None and os.path.abspath(target).startswith(_ROOT + os.sep):
                    found.add(os.path.relpath(target, _ROOT))
        found.discard(name)
        _IMPORTS[name] = found
    return _IMPORTS[name]


def _kernel_files():
    return sorted(os.path.relpath(os.path.join(d, n), _ROOT) for d, _, names in os.walk(_ROOT)
                  for n in names if n.endswith(".py") and "__pycache__" not in d)


def sources_digest(name=None):
    """SHA-256 of kernels/<name> (a path relative to kernels/) and of every kernels file it
    imports, directly or through another (a kernel can only inline what its file imports),
    in name order; name None: of every kernels file."""
    if name not in _DIGESTS:
        if name is None:
            files = set(_kernel_files())
        else:
            files, todo = set(), [name]
            while todo:
                n = todo.pop()
                if n not in files:
                    files.add(n)
                    todo.extend(_imports_of(n))
        h = hashlib.sha256()
        for n in sorted(files):
            with open(os.path.join(_ROOT, n), "rb") as f:
                h.update(n.encode() + b"\0" + f.read())
        _DIGESTS[name] = h.hexdigest()
    return _DIGESTS[name]


def _stamp_with_sources(dispatcher):
    """Make the cache entry's source stamp (Numba's own, of this kernel's file) also carry
    sources_digest of that file (every kernel file for a kernel defined elsewhere).
    Returns False where this Numba keeps the stamp elsewhere."""
    cache_file = getattr(getattr(dispatcher, "_cache", None), "_cache_file", None)
    if cache_file is None or not hasattr(cache_file, "_source_stamp"):
        return False
    path = os.path.abspath(dispatcher.py_func.__code__.co_filename)
    inside = path.startswith(_ROOT + os.sep) and os.path.isfile(path)
    cache_file._source_stamp = (cache_file._source_stamp, sources_digest(os.path.relpath(path, _ROOT) if inside else None))
    return True


def kernel(**options):
    """njit(**options), with cache=True when the cache is enabled and usable, and Numba's
    "numpy" error model: a float division by zero gives inf or NaN, as in NumPy (they reach
    the loss check), instead of a ZeroDivisionError test before every division, which
    keeps a loop with a division from vectorising (Numba's parallel loops use this model
    anyway)."""
    options.setdefault("error_model", "numpy")

    def wrap(function):
        if CACHE_ENABLED:
            try:
                dispatcher = njit(cache=True, **options)(function)
            except RuntimeError:  # "cannot cache function ...: no locator available"
                dispatcher = None
            # Without the full stamp a stale entry could be loaded: compile without a cache.
            if dispatcher is not None and _stamp_with_sources(dispatcher):
                return dispatcher
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
