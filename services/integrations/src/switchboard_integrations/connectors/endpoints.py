"""Admin routes for a tenant's connectors (CRM, Zendesk, Jira) and messenger channel bindings."""

from __future__ import annotations

from fastapi import APIRouter, Response

from switchboard_integrations.connectors import service
from switchboard_integrations.connectors.schemas import (
    BindingCreate,
    BindingOut,
    ConnectorCreate,
    ConnectorOut,
    ConnectorUpdate,
)
from switchboard_integrations.runtime import RuntimeDep
from switchboard_shared.deps import TenantDep
from switchboard_shared.errors import error_responses

router = APIRouter(prefix="/internal/v1/connectors", tags=["connectors"])


@router.get("/channels", response_model=list[BindingOut])
async def list_bindings(tenant_id: TenantDep, runtime: RuntimeDep) -> list[BindingOut]:
    return await service.list_bindings(runtime, tenant_id=tenant_id)


@router.post("/channels", response_model=BindingOut, status_code=201, responses=error_responses(400, 409))
async def create_binding(body: BindingCreate, tenant_id: TenantDep, runtime: RuntimeDep) -> BindingOut:
    return await service.create_binding(runtime, tenant_id=tenant_id, body=body)


@router.delete("/channels/{binding_id}", status_code=204, responses=error_responses(404))
async def delete_binding(binding_id: str, tenant_id: TenantDep, runtime: RuntimeDep) -> Response:
    await service.delete_binding(runtime, tenant_id=tenant_id, binding_id=binding_id)
    return Response(status_code=204)


@router.get("", response_model=list[ConnectorOut])
async def list_connectors(tenant_id: TenantDep, runtime: RuntimeDep) -> list[ConnectorOut]:
    return await service.list_connectors(runtime, tenant_id=tenant_id)


@router.post("", response_model=ConnectorOut, status_code=201, responses=error_responses(400, 409))
async def create_connector(body: ConnectorCreate, tenant_id: TenantDep, runtime: RuntimeDep) -> ConnectorOut:
    return await service.create_connector(runtime, tenant_id=tenant_id, body=body)


@router.get("/{connector_id}", response_model=ConnectorOut, responses=error_responses(404))
async def get_connector(connector_id: str, tenant_id: TenantDep, runtime: RuntimeDep) -> ConnectorOut:
    return await service.get_connector(runtime, tenant_id=tenant_id, connector_id=connector_id)


@router.put("/{connector_id}", response_model=ConnectorOut, responses=error_responses(400, 404))
async def update_connector(
    connector_id: str, body: ConnectorUpdate, tenant_id: TenantDep, runtime: RuntimeDep
) -> ConnectorOut:
    return await service.update_connector(runtime, tenant_id=tenant_id, connector_id=connector_id, body=body)


@router.delete("/{connector_id}", status_code=204, responses=error_responses(404))
async def delete_connector(connector_id: str, tenant_id: TenantDep, runtime: RuntimeDep) -> Response:
    await service.delete_connector(runtime, tenant_id=tenant_id, connector_id=connector_id)
    return Response(status_code=204)
