"""Slims a service image's virtual environment in its build stage (deploy/images.md).

What never runs in production goes: the installed packages' test suites, type stubs and C/Cython sources,
and their native libraries' debug symbols (not in auditwheel's vendored ``*.libs/``: stripping those breaks
numpy's OpenBLAS). What is left is compiled to bytecode, for the read-only root filesystem.

The pure-Python packages named with --zip move, sources and bytecode, into one compressed archive on the
import path (a ``.pth`` file): Python imports them from it with ``zipimport``, tracebacks still show their
source lines, and they take about a fifth of the space. Every module of theirs that imported before the move
must import after it, or the build fails. Then every module named with --check must import.

usage: python slim_venv.py SITE_PACKAGES [--zip PACKAGE ...] [--check MODULE ...]
Run it with the venv's own interpreter, so the bytecode is for the Python the image runs.
"""

from __future__ import annotations

import argparse
import compileall
import os
import py_compile
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

NEVER_RUN_DIRS = {"tests", "test", "__pycache__"}
NEVER_RUN_SUFFIXES = {".pyi", ".pyx", ".pxd", ".c", ".h", ".cpp", ".hpp", ".cc"}
ARCHIVE = "zipped-packages.zip"

# Prints the modules of a package that import, one per line (a module that needs an optional dependency the
# image lacks fails the same way before and after the move, and is left out of the comparison).
_IMPORTABLE = """
import importlib, pkgutil, sys, warnings
warnings.simplefilter("ignore")
root = importlib.import_module(sys.argv[1])
names = {root.__name__}
for info in pkgutil.walk_packages(root.__path__, root.__name__ + ".", onerror=lambda name: None):
    try:
        importlib.import_module(info.name)
    except Exception:
        continue
    names.add(info.name)
print("\\n".join(sorted(names)))
"""


def remove_never_run(site: Path) -> None:
    for directory, subdirs, files in os.walk(site, topdown=True):
        for name in [d for d in subdirs if d in NEVER_RUN_DIRS]:
            shutil.rmtree(Path(directory, name))
            subdirs.remove(name)
        for name in files:
            if Path(name).suffix in NEVER_RUN_SUFFIXES:
                Path(directory, name).unlink()


def strip_native(site: Path) -> None:
    libraries = [
        path
        for path in site.rglob("*.so*")
        if path.is_file() and not path.is_symlink() and not any(p.endswith(".libs") for p in path.parts)
    ]
    for start in range(0, len(libraries), 200):
        batch = [str(path) for path in libraries[start : start + 200]]
        subprocess.run(["strip", "--strip-unneeded", *batch], check=True)


def importable(package: str) -> set[str]:
    environment = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    result = subprocess.run(
        [sys.executable, "-c", _IMPORTABLE, package],
        check=True,
        capture_output=True,
        text=True,
        env=environment,
    )
    return set(result.stdout.split())


def zip_packages(site: Path, packages: list[str]) -> None:
    archive = site / ARCHIVE
    before = {package: importable(package) for package in packages}
    with (
        zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as bundle,
        tempfile.TemporaryDirectory() as scratch,
    ):
        compiled = Path(scratch, "module.pyc")
        for package in packages:
            root = site / package
            if not root.is_dir() or not (root / "__init__.py").is_file():
                sys.exit(f"slim_venv: {package} is not a regular package in {site}")
            for path in sorted([root, *root.rglob("*")]):
                if "__pycache__" in path.parts:
                    continue
                name = path.relative_to(site).as_posix()
                bundle.write(path, name)  # directories too: zipimport finds namespace packages by them
                if path.is_file() and path.suffix == ".py":
                    bundle.writestr(name + "c", _bytecode(path, f"{archive}/{name}", compiled))
    for package in packages:
        shutil.rmtree(site / package)
    (site / "zipped-packages.pth").write_text(ARCHIVE + "\n")
    for package, modules in before.items():
        missing = modules - importable(package)
        if missing:
            sys.exit(
                f"slim_venv: {len(missing)} modules of {package} no longer import: {sorted(missing)[:10]}"
            )


def _bytecode(source: Path, shown_as: str, target: Path) -> bytes:
    """The module's bytecode beside its source in the archive (zipimport does not read __pycache__), compiled
    through ``target``. Unchecked-hash: the image never changes, so nothing compares it with the source."""
    py_compile.compile(
        str(source),
        cfile=str(target),
        dfile=shown_as,
        doraise=True,
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
    )
    return target.read_bytes()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("site_packages", type=Path)
    parser.add_argument("--zip", nargs="*", default=[], metavar="PACKAGE")
    parser.add_argument("--check", nargs="*", default=[], metavar="MODULE")
    args = parser.parse_args()
    site: Path = args.site_packages.resolve()
    remove_never_run(site)
    strip_native(site)
    if args.zip:
        zip_packages(site, args.zip)
    if not compileall.compile_dir(site.parent.parent, quiet=1, workers=0):
        sys.exit("slim_venv: some installed module does not compile")
    if args.check:
        subprocess.run([sys.executable, "-c", "; ".join(f"import {m}" for m in args.check)], check=True)


if __name__ == "__main__":
    main()
