"""``IntegrationsClient`` (beside the contracts, for chat) against the real service over HTTP: typed CRM
lookups, a handoff opened and a customer message relayed, errors in the one shape."""

from __future__ import annotations

import pytest
from integrations_fakes import INTERNAL_TOKEN, ServiceFactory

from switchboard_shared.contracts.chat import Channel
from switchboard_shared.contracts.integrations import (
    CustomerLookup,
    HandoffStatus,
    IntegrationsClient,
    OrderLookup,
    RelayCustomerMessage,
    StartHandoff,
)
from switchboard_shared.contracts.routes import TENANT_HEADER
from switchboard_shared.errors import AppError, ErrorCode
from switchboard_shared.http_client import ClientConfig, Downstream
from switchboard_shared.testing.processes import ServiceProcess


@pytest.mark.asyncio
async def test_the_typed_client_speaks_the_service_api(
    demo_crm: ServiceProcess, service_factory: ServiceFactory
) -> None:
    service = await service_factory(demo_crm_url=demo_crm.url)
    downstream = Downstream(
        "integrations",
        service.url,
        ClientConfig(retries=0, default_headers={"X-Internal-Token": INTERNAL_TOKEN}),
    )
    client = IntegrationsClient(downstream, timeout=10.0)
    headers = {TENANT_HEADER: "demo"}
    try:
        order = await client.order(OrderLookup(order_number="a-1001"), headers=headers)
        assert (order.number, order.customer_id) == ("A-1001", "C-1001")
        customer = await client.customer(
            CustomerLookup(by="email", value="Emily.Carter@example.com"), headers=headers
        )
        assert customer.id == "C-2001"
        with pytest.raises(AppError) as missing:
            await client.order(OrderLookup(order_number="Z-9"), headers=headers)
        assert missing.value.code == ErrorCode.NOT_FOUND

        handoff = await client.start_handoff(
            StartHandoff(
                conversation_id="conv-typed",
                channel=Channel.WEB,
                end_user_id="u-1",
                reason="customer asked for a human",
                create_ticket=False,
                notify_chat=False,
            ),
            headers=headers,
        )
        assert handoff.status == HandoffStatus.WAITING and handoff.conversation_id == "conv-typed"
        await client.relay(
            RelayCustomerMessage(conversation_id="conv-typed", message_id="m-2", text="Still there?"),
            headers=headers,
        )
    finally:
        await downstream.close()
