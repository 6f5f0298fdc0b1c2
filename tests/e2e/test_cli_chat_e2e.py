"""``switchboard chat`` in a terminal (a pseudo-terminal) against the real fleet: after ``/human``, an
operator's reply sent while the prompt waits appears without the customer pressing Enter."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time

import httpx
import pytest

from .conftest import Fleet

pytestmark = [pytest.mark.e2e]
USER = "cli-live-customer"
REPLY = "Your parcel left our warehouse this morning."
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class Terminal:
    """A process on a pseudo-terminal: what it wrote so far, waits for text, types lines."""

    def __init__(self, argv: list[str]) -> None:
        self.master, slave = pty.openpty()
        env = {**os.environ, "COLUMNS": "160", "LINES": "40", "TERM": "xterm", "NO_COLOR": "1"}
        self.process = subprocess.Popen(
            argv, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True
        )
        os.close(slave)
        self.output = ""

    def _drain(self, timeout: float) -> None:
        ready, _, _ = select.select([self.master], [], [], timeout)
        if ready:
            try:
                self.output += ANSI.sub("", os.read(self.master, 65536).decode("utf-8", "replace"))
            except OSError:  # the process ended
                time.sleep(timeout)

    def wait_for(self, text: str, timeout: float, start: int = 0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            at = self.output.find(text, start)
            if at >= 0:
                return at + len(text)
            self._drain(0.2)
        raise AssertionError(
            f"{text!r} did not appear within {timeout} s; the terminal shows:\n{self.output}"
        )

    def type(self, line: str) -> None:
        os.write(self.master, f"{line}\r".encode())

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)
        os.close(self.master)


def test_an_operator_reply_appears_while_the_prompt_waits(fleet: Fleet) -> None:
    fleet.require("chat", "integrations")
    argv = [
        sys.executable,
        "-c",
        "from switchboard_cli.main import app; app()",
        "chat",
        "--gateway",
        fleet.gateway,
        "--key",
        fleet.demo["server_key"],
        "--user",
        USER,
        "--poll",
        "0.5",
    ]
    terminal = Terminal(argv)
    try:
        seen = terminal.wait_for("you: ", 60)
        terminal.type("/human")
        seen = terminal.wait_for("connecting you to a person", 60, seen)
        seen = terminal.wait_for("you: ", 10, seen)
        admin = {"Authorization": f"Bearer {fleet.demo['admin_key']}"}
        with httpx.Client(base_url=fleet.gateway, headers=admin, timeout=30) as api:
            handoffs = api.get("/v1/handoffs", params={"limit": 100}).json()["items"]
            handoff = next(h for h in handoffs if h["end_user_id"] == USER)
            claimed = api.post(f"/v1/handoffs/{handoff['id']}/claim", json={"operator_id": "op-1"})
            assert claimed.status_code == 200, claimed.text
            sent = api.post(
                f"/v1/handoffs/{handoff['id']}/reply",
                json={"text": REPLY, "operator_id": "op-1", "idempotency_key": "cli-live-1"},
            )
            assert sent.status_code in (200, 201), sent.text
        # Nothing is typed: the reply must come on its own, above a fresh prompt.
        seen = terminal.wait_for(f"support agent: {REPLY}", 15, seen)
        terminal.wait_for("you: ", 5, seen)
        terminal.type("/quit")
        assert terminal.process.wait(timeout=20) == 0
    finally:
        terminal.close()
