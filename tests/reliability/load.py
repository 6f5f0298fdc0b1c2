"""Simulated customers: each opens a conversation through the gateway and keeps asking questions.

A message is sent with a ``client_message_id`` and sent again with the same id after a 503/429/409 (the
documented way to retry safely), so every acknowledged (2xx) message must be stored exactly once. Every
answer is recorded with its status, the answer text and provider, and the phase of the test it fell in.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

QUESTIONS = (
    "How long does standard shipping take?",
    "Can I return an item after 30 days?",
    "How do I reset my password?",
    "Is water damage covered by the warranty?",
    "When will my refund arrive?",
    "Do you offer express shipping?",
)
ORDER_QUESTION = "What is the status of order B-2001?"
RETRYABLE = {409, 429, 503}


@dataclass
class Outcome:
    at: float
    phase: str
    status: int
    elapsed: float
    code: str | None = None
    retry_after: str | None = None
    provider: str | None = None
    text: str | None = None
    error: str | None = None


@dataclass
class Customer:
    headers: dict[str, str]
    verified: bool = False
    end_user_id: str = ""


@dataclass
class LoadRun:
    gateway: str
    customers: list[Customer]
    think_seconds: float = 0.2
    request_timeout: float = 40.0
    phase: str = "warm-up"
    outcomes: list[Outcome] = field(default_factory=list)
    acked: list[tuple[str, str, str]] = field(default_factory=list)  # (phase, conversation, client id)
    conversations: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def start(self) -> LoadRun:
        self.thread = threading.Thread(target=lambda: asyncio.run(self._main()), name="load", daemon=True)
        self.thread.start()
        return self

    def finish(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(timeout=self.request_timeout + 30)

    async def _main(self) -> None:
        limits = httpx.Limits(
            max_connections=len(self.customers) * 2, max_keepalive_connections=64, keepalive_expiry=2.0
        )
        async with httpx.AsyncClient(
            base_url=self.gateway, timeout=self.request_timeout, limits=limits
        ) as client:
            await asyncio.gather(*(self._customer(client, c, n) for n, c in enumerate(self.customers)))

    async def _send(
        self, client: httpx.AsyncClient, method: str, path: str, customer: Customer, **kwargs: Any
    ) -> tuple[httpx.Response | None, Outcome]:
        phase, started = self.phase, time.monotonic()
        try:
            response = await client.request(method, path, headers=customer.headers, **kwargs)
        except httpx.TimeoutException as exc:
            failed = Outcome(time.time(), phase, 0, time.monotonic() - started, error=repr(exc))
            self.outcomes.append(failed)
            return None, failed
        except httpx.TransportError as exc:
            failed = Outcome(time.time(), phase, -1, time.monotonic() - started, error=repr(exc))
            self.outcomes.append(failed)
            return None, failed
        outcome = Outcome(
            time.time(),
            phase,
            response.status_code,
            time.monotonic() - started,
            retry_after=response.headers.get("retry-after"),
        )
        if response.status_code >= 400:
            try:
                outcome.code = response.json()["error"]["code"]
            except (ValueError, KeyError, TypeError):
                outcome.code = "<not the shared error shape>"
                outcome.text = response.text[:300]
        self.outcomes.append(outcome)
        return response, outcome

    async def _open(self, client: httpx.AsyncClient, customer: Customer) -> str | None:
        while not self.stop.is_set():
            response, _ = await self._send(
                client, "POST", "/v1/conversations", customer, json={"end_user_id": customer.end_user_id}
            )
            if response is not None and response.status_code in (200, 201):
                conversation_id = str(response.json()["id"])
                self.conversations.append(conversation_id)
                return conversation_id
            await asyncio.sleep(0.5)
        return None

    async def _customer(self, client: httpx.AsyncClient, customer: Customer, number: int) -> None:
        rng = random.Random(number)
        conversation_id = await self._open(client, customer)
        while not self.stop.is_set():
            question = rng.choice(QUESTIONS)
            if customer.verified and rng.random() < 0.3:
                question = ORDER_QUESTION
            client_id = uuid.uuid4().hex
            body = {"text": f"{question} (ticket {client_id[:8]})", "client_message_id": client_id}
            while True:
                phase = self.phase
                response, outcome = await self._send(
                    client, "POST", f"/v1/conversations/{conversation_id}/messages", customer, json=body
                )
                if response is not None and 200 <= response.status_code < 300:
                    payload = response.json()
                    self.acked.append((phase, str(conversation_id), client_id))
                    reply = payload.get("reply") or {}
                    outcome.provider = reply.get("provider")
                    outcome.text = reply.get("text")
                    if payload.get("owner") != "bot":
                        conversation_id = await self._open(client, customer)  # handed to a human
                    break
                if self.stop.is_set():
                    break
                status = response.status_code if response is not None else 0
                if response is not None and status not in RETRYABLE:
                    break  # recorded as an unexpected answer; the test fails on it
                retry_after = response.headers.get("retry-after") if response is not None else None
                await asyncio.sleep(min(float(retry_after or 0.5), 1.0))
            await asyncio.sleep(self.think_seconds * (0.5 + rng.random()))
