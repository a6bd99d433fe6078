"""Compiling kernels in helper processes, so that a cold start uses more than one core.

Numba compiles one kernel at a time, on one core, and the book network's kernels take
about 14 s to compile. warmup() hands the kernels that have no code in the on-disk cache
yet to helper processes (one for each further core, at most MOST, the kernels split by
measured compile times), compiles its own share meanwhile, then loads the helpers'
kernels from the cache.
Nothing here changes what is compiled, only where: a helper that fails or is slow leaves
nothing that matters behind, since whatever is still missing then compiles in this
process, as it would without helpers.
"""
import os
import subprocess
import sys

import numpy as np

from .registry import KERNELS

DEFAULT = 0.5  # seconds, for a name the registry does not know
WORTH = 3.0  # below this many seconds of compiling, a helper's start-up (~0.5 s) is not worth it
HELPER_START = 0.7  # seconds before a helper compiles: importing fastmlp and Numba
MOST = 3  # helpers at most: head_step alone takes 6 s, so more could not finish sooner


def cores():
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def has_code(dispatcher, dtype):
    """Whether `dispatcher` has code for arrays of `dtype`, compiled in this process or in
    the on-disk cache (an index written from these sources). True where it cannot tell
    (no cache, another Numba, a kernel replaced by a Python function): then nothing is
    handed to helpers."""
    name = np.dtype(dtype).name
    try:
        if any(name in str(signature) for signature in dispatcher.signatures):
            return True
        index = dispatcher._cache._cache_file._load_index()  # {} when written from other sources
    except Exception:
        return True
    return any(name in str(key[0]) for key in index)


def _seconds(name):
    """About how long kernel `name` takes to compile (its registry entry's `seconds`)."""
    return KERNELS[name].seconds if name in KERNELS else DEFAULT


def split(names, parts):
    """`names` in at most `parts` groups that finish at about the same time: the first
    group is this process's, the others start HELPER_START later (a helper imports
    fastmlp first); the longest kernel first, each to the group that would finish it
    soonest."""
    groups, load = [[] for _ in range(parts)], [0.0] + [HELPER_START] * (parts - 1)
    for name in sorted(names, key=lambda n: -_seconds(n)):
        i = load.index(min(load))
        groups[i].append(name)
        load[i] += _seconds(name)
    return [groups[0]] + [g for g in groups[1:] if g]


def worth_helpers(names):
    return len(names) > 1 and sum(_seconds(n) for n in names) >= WORTH


# A helper imports the same kernels package (it checks the file) and warms up its names.
_HELPER = ("import importlib, os, sys\n"
           "import numpy as np\n"
           "K = importlib.import_module(sys.argv[1])\n"
           "if K.__file__ != sys.argv[2]:\n"
           "    sys.exit(3)\n"
           "K.warmup(np.dtype(sys.argv[3]), sys.argv[4:], helpers=0)\n"
           "os._exit(0)\n")  # the cache files are written: skip the interpreter's teardown


def start(package, file, dtype, groups):
    """One helper process for each group; they see this process's environment and path."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if isinstance(p, str) and p)}
    return [subprocess.Popen([sys.executable, "-c", _HELPER, package, file, str(dtype), *group], env=env,
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for group in groups]


def finish(helpers, timeout=600, stop=False):
    """Wait for the helpers, killing any still running after `timeout` seconds (at once
    with stop: this process is being interrupted)."""
    for p in helpers:
        try:
            if stop:
                p.kill()
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
