"""deploy/docker/slim_venv.py, which every image's build stage runs on its venv: run here on a real venv."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.conftest import REPO

SCRIPT = REPO / "deploy" / "docker" / "slim_venv.py"


@pytest.fixture
def venv(tmp_path: Path) -> tuple[Path, Path]:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "venv")], check=True)
    (site,) = (tmp_path / "venv" / "lib").glob("python3*/site-packages")
    package = site / "acme"
    (package / "parsing").mkdir(parents=True)  # a namespace subpackage: no __init__.py
    (package / "__init__.py").write_text("VERSION = '1'\n")
    (package / "parsing" / "numbers.py").write_text(
        "def parse(text):\n    return int(text)  # the failing line\n"
    )
    (package / "py.typed").write_text("")
    (package / "tests").mkdir()
    (package / "tests" / "test_acme.py").write_text("assert False\n")
    (package / "__init__.pyi").write_text("VERSION: str\n")
    (site / "other").mkdir()
    (site / "other" / "__init__.py").write_text("import acme.parsing.numbers\n")
    return tmp_path / "venv" / "bin" / "python", site


def test_zipped_package_imports_with_its_sources_in_tracebacks(venv: tuple[Path, Path]) -> None:
    python, site = venv
    subprocess.run(
        [str(python), str(SCRIPT), str(site), "--zip", "acme", "--check", "other", "acme.parsing.numbers"],
        check=True,
    )
    assert not (site / "acme").exists() and (site / "zipped-packages.zip").is_file()
    assert (site / "zipped-packages.pth").read_text().strip() == "zipped-packages.zip"
    assert (site / "other" / "__pycache__").is_dir()  # the rest is precompiled for a read-only filesystem
    # The services log exceptions through the traceback module, which reads the source from the archive.
    logged = (
        "import logging, acme.parsing.numbers as n\n"
        "try:\n    n.parse('x')\nexcept ValueError:\n    logging.exception('failed')"
    )
    result = subprocess.run([str(python), "-c", logged], capture_output=True, text=True, check=True)
    assert 'zipped-packages.zip/acme/parsing/numbers.py", line 2, in parse' in result.stderr
    assert "return int(text)  # the failing line" in result.stderr
    listing = subprocess.run(
        [str(python), "-m", "zipfile", "-l", str(site / "zipped-packages.zip")],
        capture_output=True,
        text=True,
    ).stdout
    assert "acme/parsing/numbers.pyc" in listing and "acme/py.typed" in listing
    assert "acme/tests" not in listing and ".pyi" not in listing


def test_a_module_that_stops_importing_fails_the_build(venv: tuple[Path, Path]) -> None:
    python, site = venv
    # It reads a file beside itself, which a zip archive does not have on disk.
    (site / "acme" / "data.txt").write_text("42")
    (site / "acme" / "reader.py").write_text(
        "import os\nVALUE = open(os.path.join(os.path.dirname(__file__), 'data.txt')).read()\n"
    )
    result = subprocess.run(
        [str(python), str(SCRIPT), str(site), "--zip", "acme"], capture_output=True, text=True
    )
    assert result.returncode != 0 and "acme.reader" in result.stderr
