"""Thread pools of native libraries (OpenBLAS/MKL/OpenMP under numpy and ONNX Runtime, Rust's rayon under
tokenizers) sized once, before any of them loads, to the process's share of the machine.

Each library sizes its pool to every core it sees, and a service calls it from several request worker
threads at once: on a small machine shared by the five services the pools fight each other and spin while
they wait. Embedding one query with a two-thread OpenBLAS took about 40 ms of CPU on a loaded 2-core
machine, against about 2 ms with one thread. The libraries read these variables when they load, so this
runs at the top of a service's ``__main__``, before its app is imported; a variable already set in the
environment wins.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

THREADS_VARIABLE = "SWITCHBOARD_NATIVE_THREADS"
POOL_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "RAYON_NUM_THREADS",
)
# A request-serving process gets its parallelism from concurrent requests (each in its own worker thread),
# and `switchboard up` runs five of them on one machine: a native pool gets a quarter of the CPUs.
SHARE_DIVISOR = 4


def available_cpus(cgroup_root: Path = Path("/sys/fs/cgroup")) -> int:
    """CPUs this process may run on: its affinity, capped by a cgroup v2 CPU quota (a container's limit)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cpus = os.cpu_count() or 1
    try:
        quota, period = (cgroup_root / "cpu.max").read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cpus)


def process_share(environ: dict[str, str] | None = None, cpus: int | None = None) -> int:
    """Threads for one native pool: ``SWITCHBOARD_NATIVE_THREADS`` when set, else a quarter of the CPUs
    (at least one)."""
    env = os.environ if environ is None else environ
    configured = env.get(THREADS_VARIABLE, "").strip()
    if configured.isdigit() and int(configured) > 0:
        return int(configured)
    return max(1, (available_cpus() if cpus is None else cpus) // SHARE_DIVISOR)


def size_native_threads(environ: dict[str, str] | None = None) -> int:
    """Set every pool variable not already set to the process's share; return that share."""
    env: dict[str, str] | os._Environ[str] = os.environ if environ is None else environ
    threads = process_share(dict(env))
    for name in POOL_VARIABLES:
        env.setdefault(name, str(threads))
    # Hugging Face tokenizers: no pool of its own beside the request workers (and no fork warning).
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    return threads
