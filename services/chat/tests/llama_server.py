"""Runs ``llama_cpp.server`` with llama.cpp's extra CPU buffer types (the AMX repack) switched off.

The prebuilt llama.cpp here crashes (SIGSEGV in libggml-cpu) on any prompt longer than one token when it
repacks Q4_1 weights for AMX; without the repack it runs correctly. Usage: same arguments as
``python -m llama_cpp.server``.
"""

import llama_cpp
import llama_cpp.llama
from llama_cpp.server.__main__ import main

_default_params = llama_cpp.llama_model_default_params


def _params_without_repack() -> llama_cpp.llama_model_params:
    params = _default_params()
    params.use_extra_bufts = False
    return params


llama_cpp.llama_model_default_params = _params_without_repack
llama_cpp.llama.llama_cpp.llama_model_default_params = _params_without_repack  # type: ignore[attr-defined]

if __name__ == "__main__":
    main()
