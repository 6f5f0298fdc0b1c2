from __future__ import annotations

import json
import logging
from types import SimpleNamespace

import pytest
import structlog

from switchboard_shared.health import Readiness
from switchboard_shared.logging import configure_logging
from switchboard_shared.redaction import pseudonymise, redact_text, tenant_pseudonym

from .conftest import make_app, running


@pytest.mark.asyncio
async def test_readyz_reports_checks_and_breakers() -> None:
    readiness = Readiness()

    async def db_ok() -> None:
        return None

    async def redis_down() -> None:
        raise ConnectionError("refused")

    readiness.add_check("database", db_ok)
    readiness.add_breaker("retrieval", SimpleNamespace(breaker_state="open"))
    async with running(make_app(readiness)) as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["breakers"] == {"retrieval": "open"}
        readiness.add_check("redis", redis_down)
        unready = await client.get("/readyz")
        assert unready.status_code == 503
        assert unready.json()["checks"]["redis"]["ok"] is False
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        metrics = await client.get("/metrics")
        assert "switchboard_http_requests_total" in metrics.text
        assert 'route="/readyz"' in metrics.text


def test_redaction() -> None:
    text = "Mail me at ivan.petrov@example.ru or call +7 (912) 345-67-89, card 4111 1111 1111 1111"
    redacted = redact_text(text)
    assert "example.ru" not in redacted and "345-67" not in redacted and "4111" not in redacted
    assert "[email]" in redacted and "[phone]" in redacted and "[card]" in redacted
    assert redact_text("order 12345 shipped") == "order 12345 shipped"
    assert (
        pseudonymise("user-1", salt="s")
        == pseudonymise("user-1", salt="s")
        != pseudonymise("user-2", salt="s")
    )


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("4111.1111.1111.1111", "[card]"),
        ("5500-0000-0000-0004", "[card]"),
        ("2200 1234 5678 9010", "[card]"),
        ("+7.916.123.45.67", "[phone]"),
        ("8 (916) 765-43-21", "[phone]"),
        ("8-916-765-43-21", "[phone]"),
        ("89161112233", "[phone]"),
        ("415.555.0199", "[phone]"),
        ("+1 (415) 555-0199", "[phone]"),
        ("+44 20 7946 0958", "[phone]"),
        ("DE89 3704 0044 0532 0130 00", "[iban]"),
        ("GB82WEST12345698765432", "[iban]"),
        ("40817810099910004312", "[phone]"),
    ],
)
def test_redaction_of_numbers_in_every_notation(text: str, label: str) -> None:
    assert redact_text(f"mine is {text}, thanks") == f"mine is {label}, thanks"


@pytest.mark.parametrize(
    "text",
    [
        "order A-1001 placed on 12.11.2026 at 14:05",
        "it costs 4390.00 RUB, version 1.2.3",
        "DE89 is not a full account number",
        "call me in 15 minutes",
    ],
)
def test_redaction_leaves_dates_amounts_and_look_alikes(text: str) -> None:
    assert redact_text(text) == text


def test_tenant_pseudonyms() -> None:
    first = tenant_pseudonym("acme", "customer-1", salt="fleet-salt")
    assert first.startswith("u_") and "customer-1" not in first
    assert first == tenant_pseudonym("acme", "customer-1", salt="fleet-salt")
    assert first != tenant_pseudonym("globex", "customer-1", salt="fleet-salt")
    assert first != tenant_pseudonym("acme", "customer-1", salt="other-salt")
    assert tenant_pseudonym("acme", first, salt="fleet-salt") == first  # applying it twice changes nothing


def test_json_logs_carry_context_and_hide_pii(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(service="demo", level="INFO", json=True)
    structlog.contextvars.bind_contextvars(request_id="rid-7", tenant_id="t1")
    try:
        structlog.get_logger("x").info("customer_wrote", text="my email is a@b.co", api_key="sk_live_123")
        logging.getLogger("stdlib").warning("plain %s", "message")
    finally:
        structlog.contextvars.unbind_contextvars("request_id", "tenant_id")
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    event = next(line for line in lines if line["event"] == "customer_wrote")
    assert event["request_id"] == "rid-7" and event["tenant_id"] == "t1" and event["service"] == "demo"
    assert event["text"] == "my email is [email]" and event["api_key"] == "[secret]"
    assert any(line["event"] == "plain message" for line in lines)


def test_messenger_account_ids_are_not_taken_for_phone_numbers(capsys: pytest.CaptureFixture[str]) -> None:
    """A Telegram bot id or a WhatsApp phone-number id names the business's account, not a customer: logs keep
    it (or a failed send cannot be traced to its bot); a customer's number in the reason is still hidden."""
    configure_logging(service="integrations", level="INFO", json=True)
    structlog.get_logger("x").warning(
        "channel_send_retry",
        account_id="7000000001",
        bot_id="7000000001",
        phone_number_id="106540352242922",
        reason="WhatsApp answered 400: recipient +1 415 555 0123 not allowed",
    )
    event = next(
        json.loads(line) for line in capsys.readouterr().out.splitlines() if "channel_send_retry" in line
    )
    assert event["account_id"] == event["bot_id"] == "7000000001"
    assert event["phone_number_id"] == "106540352242922"
    assert "415" not in event["reason"] and "[phone]" in event["reason"]
