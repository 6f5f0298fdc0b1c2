"""Every image's Dockerfile: hadolint clean at warning level, and the properties the images promise."""

from __future__ import annotations

import re
import subprocess
import tomllib
from fnmatch import fnmatchcase
from pathlib import Path

import pytest

from tests.deploy.conftest import FLEET, REPO

DOCKERFILES = {service: REPO / "services" / service / "Dockerfile" for service in FLEET}
PORTS = {
    "gateway": 8000,
    "chat": 8001,
    "retrieval": 8002,
    "integrations": 8003,
    "analytics": 8004,
    "console": 8501,
}
# What an image copies beside constraints.txt, shared/ and its own service.
EXTRA_COPIES = {
    "retrieval": ["deploy/docker/retrieval-no-deps.txt"],  # its model packages, installed --no-deps
    "integrations": ["demo/crm/"],  # the demo CRM server, which docker-compose's demo-crm runs from it
}


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n\s*", " ", path.read_text())
    pairs = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            pairs.append((keyword.upper(), rest.strip()))
    return pairs


@pytest.mark.parametrize("service", FLEET)
def test_hadolint_is_clean_at_warning_level(hadolint_bin: Path, service: str) -> None:
    completed = subprocess.run(
        [str(hadolint_bin), "--no-color", "--failure-threshold", "warning", str(DOCKERFILES[service])],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr


@pytest.mark.parametrize("service", FLEET)
def test_image_is_multi_stage_pinned_non_root_with_healthcheck(service: str) -> None:
    steps = instructions(DOCKERFILES[service])
    bases = [args for keyword, args in steps if keyword == "FROM"]
    assert len(bases) == 2, "a build stage and a runtime stage"
    # The bases are build arguments (declared before the first FROM) whose defaults are the production images.
    first = [k for k, _ in steps].index("FROM")
    defaults = dict(args.split("=", 1) for keyword, args in steps[:first] if keyword == "ARG" and "=" in args)
    assert [base.split()[0] for base in bases] == ["${PYTHON_BUILD_IMAGE}", "${PYTHON_IMAGE}"], bases
    for name in ("PYTHON_BUILD_IMAGE", "PYTHON_IMAGE"):
        image = defaults[name]
        assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+", image), (
            f"base not pinned to a slim Python patch: {image}"
        )
    runtime = steps[[i for i, (k, _) in enumerate(steps) if k == "FROM"][1] :]
    users = [args for keyword, args in runtime if keyword == "USER"]
    assert users and not users[-1].startswith(("root", "0")), users
    assert any(keyword == "COPY" and args.startswith("--from=build") for keyword, args in runtime)
    (healthcheck,) = [args for keyword, args in runtime if keyword == "HEALTHCHECK"]
    assert f"127.0.0.1:{PORTS[service]}/" in healthcheck
    assert [args for keyword, args in runtime if keyword == "EXPOSE"] == [str(PORTS[service])]


@pytest.mark.parametrize("service", FLEET)
def test_image_installs_only_its_own_service(service: str) -> None:
    steps = instructions(DOCKERFILES[service])
    copied = [
        args.split()[0] for keyword, args in steps if keyword == "COPY" and not args.startswith("--from")
    ]
    assert copied == [
        "constraints.txt",
        "shared/",
        f"services/{service}/",
        *EXTRA_COPIES.get(service, []),
        "deploy/docker/slim_venv.py",
    ]
    (install,) = [
        args for keyword, args in steps if keyword == "RUN" and re.search(r"\bpip\b.* install ", args)
    ]
    assert "-c constraints.txt" in install
    # One slimming of the venv for every image, in the build stage, after the install.
    runs = [args for keyword, args in steps if keyword == "RUN"]
    slims = [
        i for i, args in enumerate(runs) if "/opt/venv/bin/python /src/slim_venv.py /opt/venv/lib/" in args
    ]
    assert len(slims) == 1 and slims[0] > runs.index(install), runs
    # The build stage's pip installs into a venv made without one: no pip or setuptools at runtime.
    assert "python -m venv --without-pip /opt/venv" in [args for keyword, args in steps if keyword == "RUN"]
    assert all("pip --python /opt/venv/bin/python install " in part for part in install.split("&&")[:-1])
    assert re.findall(r"\./services/\w+", install) == [f"./services/{service}"]
    assert re.findall(r"\./demo/\w+", install) == (["./demo/crm"] if service == "integrations" else [])
    text = DOCKERFILES[service].read_text().lower()
    if service != "retrieval":
        for heavy in ("onnx", "chroma", "torch"):
            assert heavy not in text


@pytest.mark.parametrize("service", FLEET)
def test_no_secret_is_baked_into_the_image(service: str) -> None:
    for keyword, args in instructions(DOCKERFILES[service]):
        if keyword in {"ENV", "ARG", "LABEL"}:
            assert not re.search(r"(TOKEN|PASSWORD|SECRET|API_KEY|SALT|DATABASE_URL)", args, re.I), args


def test_retrieval_no_deps_pins_match_the_repository_pins() -> None:
    def pins(path: Path) -> set[str]:
        return {
            line.strip()
            for line in path.read_text().splitlines()
            if line.strip() and not line.startswith("#")
        }

    image_pins = pins(REPO / "deploy" / "docker" / "retrieval-no-deps.txt")
    assert image_pins, "the retrieval image needs its model packages"
    assert image_pins <= pins(REPO / "requirements" / "no-deps.txt")


def test_build_context_excludes_local_state() -> None:
    patterns = (REPO / ".dockerignore").read_text().splitlines()
    assert patterns[patterns.index("**") + 1 :][:4] == [
        "!constraints.txt",
        "!shared/",
        "!services/",
        "!deploy/docker/",
    ]
    assert "!demo/crm/" in patterns
    for excluded in ("**/tests/", "**/.env", "**/*.egg-info/"):
        assert excluded in patterns


def package_data_misses(distribution: str) -> list[str]:
    """Files under the distribution's src/ (``services/<name>``, ``demo/crm``) that a (non-editable) image
    install would leave behind.

    The images install the distribution, so only modules and files matched by
    ``[tool.setuptools.package-data]`` reach them (globs relative to the owning package, ``*`` within
    one path segment, as setuptools applies them).
    """
    root = REPO / distribution
    config = tomllib.loads((root / "pyproject.toml").read_text())
    package_data = config.get("tool", {}).get("setuptools", {}).get("package-data", {})
    misses = []
    src = root / "src"
    for path in sorted(src.rglob("*")):
        relative_parts = path.relative_to(src).parts
        if (
            path.is_dir()
            or path.suffix in {".py", ".pyc"}
            or any(part == "__pycache__" or part.endswith(".egg-info") for part in relative_parts)
        ):
            continue
        package_dir = path.parent
        while not (package_dir / "__init__.py").exists() and package_dir != src:
            package_dir = package_dir.parent
        package = ".".join(package_dir.relative_to(src).parts)
        inside = path.relative_to(package_dir).parts
        patterns = [*package_data.get("*", []), *package_data.get(package, [])]
        matched = any(
            len(pattern.split("/")) == len(inside)
            and all(fnmatchcase(part, glob) for part, glob in zip(inside, pattern.split("/"), strict=True))
            for pattern in patterns
        )
        if not matched:
            misses.append("/".join(relative_parts))
    return misses


@pytest.mark.parametrize("distribution", [*(f"services/{service}" for service in FLEET), "demo/crm"])
def test_image_install_carries_every_non_python_file(distribution: str) -> None:
    assert package_data_misses(distribution) == []
