"""Print the exact pins (``name==version``) of everything the service images install, as installed in this
venv: the closure of the ``switchboard-*`` distributions' requirements, markers and extras applied.

`scripts/test-deploy.sh` downloads these into its wheelhouse without resolving again (``--no-deps``); the
images' own pip still resolves against constraints.txt, so a pin missing here fails their build loudly.
Usage: python scripts/image_pins.py shared gateway chat ...
"""

from __future__ import annotations

import re
import sys
from importlib import metadata

from packaging.requirements import Requirement


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(roots: list[str]) -> dict[str, str]:
    pins: dict[str, str] = {}
    done: set[tuple[str, frozenset[str]]] = set()
    todo: list[tuple[str, frozenset[str]]] = [(root, frozenset()) for root in roots]
    while todo:
        name, extras = todo.pop()
        if (canonical(name), extras) in done:
            continue
        done.add((canonical(name), extras))
        dist = metadata.distribution(name)
        if not canonical(name).startswith("switchboard-"):
            pins[canonical(name)] = dist.version
        for line in dist.requires or []:
            requirement = Requirement(line)
            marker = requirement.marker
            if marker and not any(marker.evaluate({"extra": extra}) for extra in (extras or {""})):
                continue
            todo.append((requirement.name, frozenset(requirement.extras)))
    return pins


def main() -> None:
    pins = closure([f"switchboard-{name}" for name in sys.argv[1:]])
    sys.stdout.write("".join(f"{name}=={version}\n" for name, version in sorted(pins.items())))


if __name__ == "__main__":
    main()
