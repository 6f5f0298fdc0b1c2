"""A running fleet for the console's page tests: the five services as real processes on free ports (embedded
defaults, data in a temporary folder), with the demo tenant and its keys created through the gateway."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from streamlit.testing.v1 import AppTest

import switchboard_console
from switchboard_cli.demo import bootstrap_demo
from switchboard_cli.fleet import Fleet, ServiceSpec
from switchboard_shared.registry import SERVICE_NAMES
from switchboard_shared.testing.servers import free_port

PAGES = Path(switchboard_console.__file__).parent / "pages"
ADMIN_TOKEN = "console-tests-operator-token"


@dataclass
class RunningFleet:
    gateway_url: str
    keys: dict[str, str]
    data_dir: Path

    def api(self, key: str = "admin_key", **headers: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.gateway_url,
            headers={"Authorization": f"Bearer {self.keys[key]}", **headers},
            timeout=60.0,
        )


@pytest.fixture(scope="session")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningFleet]:
    data_dir = tmp_path_factory.mktemp("console-fleet")
    specs = [ServiceSpec(name, "127.0.0.1", free_port()) for name in SERVICE_NAMES]
    running = Fleet(
        specs,
        data_dir,
        extra_env={
            "GATEWAY_ADMIN_TOKEN": ADMIN_TOKEN,
            "SWITCHBOARD_LOG_JSON": "true",
            # Messenger stand-ins of the tests listen here (a binding's own api_base, as for a trial).
            "INTEGRATIONS_URL_ALLOWLIST": '["127.0.0.1"]',
        },
    )
    running.start()
    try:
        ready = running.wait_ready(180.0)
        if not all(ready.values()):
            logs = "\n".join(
                f"--- {name}\n{(data_dir / 'logs' / f'{name}.log').read_text()[-2000:]}"
                for name, ok in ready.items()
                if not ok
            )
            pytest.fail(f"the fleet did not become ready: {ready}\n{logs}")
        gateway = next(spec for spec in specs if spec.name == "gateway").url
        yield RunningFleet(gateway, bootstrap_demo(gateway, ADMIN_TOKEN), data_dir)
    finally:
        running.stop()


def open_page(fleet: RunningFleet, name: str, **state: object) -> AppTest:
    """The console page ``name`` signed in to the fleet with the demo tenant's admin key, after one run."""
    app = AppTest.from_file(str(PAGES / f"{name}.py"), default_timeout=90)
    app.session_state["gateway_url"] = fleet.gateway_url
    app.session_state["admin_key"] = fleet.keys["admin_key"]
    for key, value in state.items():
        app.session_state[key] = value
    app.run()
    assert not app.exception, app.exception
    return app


@pytest.fixture
def page(fleet: RunningFleet) -> object:
    """``page(name, **session_state)``: open a console page against the fleet."""

    def opener(name: str, **state: object) -> AppTest:
        return open_page(fleet, name, **state)

    return opener
