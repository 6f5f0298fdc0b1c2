"""``python -m switchboard_retrieval`` sizes native thread pools before numpy and ONNX Runtime load."""

from __future__ import annotations

import subprocess
import sys


def test_retrieval_entry_point_sizes_the_pools_before_numpy_loads() -> None:
    code = (
        "import os, sys\n"
        "for name in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'SWITCHBOARD_NATIVE_THREADS'):\n"
        "    os.environ.pop(name, None)\n"
        "os.environ['SWITCHBOARD_NATIVE_THREADS'] = '1'\n"
        "import switchboard_retrieval.__main__\n"
        "print(os.environ['OPENBLAS_NUM_THREADS'], 'numpy' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.split() == ["1", "True"]
