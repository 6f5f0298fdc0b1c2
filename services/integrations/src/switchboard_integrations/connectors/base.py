"""Connector plugins: base classes for CRM and ticketing systems and the registry that maps a kind to
its class. Each plugin validates its own settings and secrets and talks through one ``Downstream``."""

from __future__ import annotations

import abc
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from switchboard_shared.contracts.integrations import (
    CreateTicket,
    Customer,
    CustomerLookup,
    Order,
    TicketSystem,
)
from switchboard_shared.errors import AppError, ErrorCode
from switchboard_shared.http_client import Downstream, DownstreamResponse
from switchboard_shared.redaction import redact_text
from switchboard_shared.stores import Cache
from switchboard_shared.url_guard import AddressGuard, HostUnresolvable, UrlRefused, validate_base_url

log = structlog.get_logger(__name__)


class PluginSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ConfiguredPlugin:
    """What connector and channel plugins share: settings and secrets validated by the plugin's own models.
    A plugin names its models and narrows ``settings`` and ``secrets`` to their types; the check on
    construction holds each instance to them."""

    settings_model: ClassVar[type[PluginSettings]]
    secrets_model: ClassVar[type[PluginSettings]]
    settings: PluginSettings
    secrets: PluginSettings

    def __init__(self, settings: PluginSettings, secrets: PluginSettings) -> None:
        if not isinstance(settings, self.settings_model) or not isinstance(secrets, self.secrets_model):
            raise TypeError(f"{type(self).__name__} is built from its own settings and secrets models.")
        self.settings = settings
        self.secrets = secrets

    @classmethod
    def parse_config(
        cls, settings: Mapping[str, Any], secrets: Mapping[str, Any], *, invalid: str
    ) -> tuple[PluginSettings, PluginSettings]:
        """Stored or submitted settings and secrets as this plugin's models; VALIDATION_ERROR with the
        ``invalid`` message and each field's error otherwise (never the submitted values)."""
        try:
            return cls.settings_model.model_validate(settings), cls.secrets_model.model_validate(secrets)
        except ValidationError as exc:
            details = [
                {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")}
                for err in exc.errors(include_input=False)
            ]
            raise AppError(ErrorCode.VALIDATION_ERROR, invalid, details=details) from exc


@dataclass(slots=True)
class ConnectorContext:
    """What a connector instance is built from: its stored config and the shared resources."""

    connector_id: str
    tenant_id: str
    settings: PluginSettings
    secrets: PluginSettings
    downstream: Downstream
    cache: Cache


class Connector(ConfiguredPlugin, abc.ABC):
    kind: ClassVar[str]

    def __init__(self, context: ConnectorContext) -> None:
        super().__init__(context.settings, context.secrets)
        self.context = context

    @classmethod
    def base_url(cls, settings: PluginSettings) -> str:
        url: str = getattr(settings, "base_url")  # noqa: B009 - every plugin's settings declare it
        return url

    @classmethod
    def read_timeout(cls, settings: PluginSettings) -> float | None:
        timeout: float | None = getattr(settings, "timeout_seconds", None)
        return timeout


class CrmConnector(Connector):
    @abc.abstractmethod
    async def find_customer(self, lookup: CustomerLookup) -> Customer: ...

    @abc.abstractmethod
    async def customer_orders(self, customer_id: str) -> list[Order]: ...

    @abc.abstractmethod
    async def find_order(self, order_number: str) -> Order: ...


@dataclass(slots=True)
class ExternalTicket:
    external_id: str
    url: str | None
    status: str
    requester_external_id: str | None = None


@dataclass(slots=True)
class TicketEvent:
    """What a ticketing webhook tells us: an agent's public reply and/or a status change."""

    event_id: str
    external_ticket_id: str
    comment_id: str | None = None
    comment_text: str | None = None
    comment_author_id: str | None = None
    comment_author_name: str | None = None
    comment_public: bool = True
    status: str | None = None
    raw_type: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class TicketSecrets(PluginSettings):
    """The credentials every ticketing system takes: an API token, and the secret its webhooks are signed
    with (no webhook is accepted without one)."""

    api_token: str = Field(min_length=1)
    webhook_secret: str | None = None


class TicketConnector(Connector):
    system: ClassVar[TicketSystem]
    # How answers and errors name the system, and what it calls the secret that signs its webhooks.
    system_name: ClassVar[str]
    webhook_secret_name: ClassVar[str] = "webhook secret"
    # Statuses that mean the ticket is done (the handoff resolves with it).
    closed_statuses: ClassVar[frozenset[str]] = frozenset()
    secrets: TicketSecrets

    @abc.abstractmethod
    def auth_headers(self) -> dict[str, str]:
        """The headers that authenticate a call to the system's API."""

    async def call_api(
        self,
        method: str,
        path: str,
        *,
        what: str,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
    ) -> Any:
        """One call to the system's API with the connector's credentials: the answer's JSON, or the
        AppError its error status means (``what`` names the object asked about)."""
        response = await self.context.downstream.request(
            method,
            path,
            json=json,
            params=params,
            headers={**self.auth_headers(), **(headers or {})},
            idempotent=idempotent,
        )
        return check_answer(response, system=self.system_name, what=what)

    def webhook_secret(self) -> str:
        """The secret the system signs its webhooks with; FORBIDDEN while none is configured."""
        secret = self.secrets.webhook_secret
        if not secret:
            raise AppError(
                ErrorCode.FORBIDDEN, f"No {self.webhook_secret_name} is configured for this connector."
            )
        return secret

    @abc.abstractmethod
    async def create_ticket(self, request: CreateTicket, *, idempotency_key: str) -> ExternalTicket: ...

    @abc.abstractmethod
    async def add_comment(self, external_id: str, text: str, *, author_id: str | None = None) -> str | None:
        """Add a comment; returns its id when the system tells it."""

    @abc.abstractmethod
    async def get_status(self, external_id: str) -> str: ...

    @abc.abstractmethod
    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> None:
        """Raise AppError(UNAUTHORIZED / FORBIDDEN) unless the request carries a valid signature."""

    @abc.abstractmethod
    def parse_webhook(self, headers: Mapping[str, str], payload: Any) -> TicketEvent:
        """Raise AppError(BAD_REQUEST) for a body that is not this system's webhook shape."""


C = TypeVar("C", bound=type[Connector])
REGISTRY: dict[str, type[Connector]] = {}


def register(cls: C) -> C:
    REGISTRY[cls.kind] = cls
    return cls


def connector_class(kind: str) -> type[Connector]:
    try:
        return REGISTRY[kind]
    except KeyError as exc:
        raise AppError(
            ErrorCode.BAD_REQUEST, f"Unknown connector kind {kind!r}; known: {', '.join(sorted(REGISTRY))}."
        ) from exc


def validate_config(
    kind: str, settings: Mapping[str, Any], secrets: Mapping[str, Any]
) -> tuple[PluginSettings, PluginSettings]:
    cls = connector_class(kind)
    parsed = cls.parse_config(settings, secrets, invalid=f"The {kind} connector config is not valid.")
    try:
        validate_base_url(cls.base_url(parsed[0]))
    except UrlRefused as exc:
        raise base_url_refused(f"The {kind} connector config is not valid", exc) from exc
    return parsed


def base_url_refused(message: str, exc: UrlRefused) -> AppError:
    return AppError(
        ErrorCode.VALIDATION_ERROR,
        f"{message}: {exc}.",
        details=[{"loc": ["settings", "base_url"], "msg": str(exc), "type": "value_error"}],
    )


async def check_address(kind: str, settings: PluginSettings, guard: AddressGuard) -> None:
    """Refuse a base URL that points at an address the fleet must not reach on a tenant's behalf. A host
    that does not resolve yet is accepted here (every call checks it again)."""
    url = connector_class(kind).base_url(settings)
    try:
        await guard.check(url)
    except HostUnresolvable:
        return
    except UrlRefused as exc:
        raise base_url_refused(f"The {kind} connector's base URL is refused", exc) from exc


def check_answer(response: DownstreamResponse, *, system: str, what: str) -> Any:
    """A ticketing system's answer as JSON, or the AppError for its error status. The upstream's error
    body is logged (redacted) for operators and never returned to the tenant: it may come from anywhere
    the base URL points and carry anything."""
    if response.status == 404:
        raise AppError(ErrorCode.NOT_FOUND, f"{system} has no such {what}.")
    if response.status == 429:
        raise AppError(
            ErrorCode.UPSTREAM_UNAVAILABLE,
            f"{system} is rate limiting us; try again shortly.",
            headers={"Retry-After": response.headers.get("Retry-After", "10")},
        )
    if response.status >= 400:
        log.warning(
            "upstream_error_answer",
            system=system,
            what=what,
            status=response.status,
            body=redact_text(response.body[:500].decode("utf-8", "replace")),
        )
        raise AppError(ErrorCode.UPSTREAM_ERROR, f"{system} answered {response.status} to {what}.")
    return response.json()


def mask_secret(value: str) -> str:
    """Enough to recognise a secret, never enough to use it."""
    if len(value) <= 8:
        return "****"
    return f"****{value[-4:]}"


def secrets_fingerprint(secrets: Mapping[str, str]) -> str:
    digest = hashlib.sha256()
    for key in sorted(secrets):
        digest.update(f"{key}={secrets[key]}\n".encode())
    return digest.hexdigest()[:12]
