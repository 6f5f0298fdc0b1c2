import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel
from sqlalchemy.exc import DataError, DBAPIError, OperationalError

from switchboard_shared.errors import AppError, ErrorCode


class Item(BaseModel):
    name: str


def add_routes(app: FastAPI) -> None:
    @app.get("/conflict")
    async def conflict() -> None:
        raise AppError(ErrorCode.CONFLICT, "Already there.", details={"id": "x"})

    @app.post("/items")
    async def create(item: Item) -> Item:
        return item

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals /etc/passwd")

    @app.get("/db-down")
    async def db_down() -> None:
        raise OperationalError("SELECT 1", {}, ConnectionRefusedError("refused"))

    @app.get("/db-connection-lost")
    async def db_connection_lost() -> None:
        class ConnectionDoesNotExistError(Exception):  # the shape of asyncpg's own class
            pass

        raise DBAPIError("SELECT 1", {}, ConnectionDoesNotExistError("connection was closed"))

    @app.get("/db-shutting-down")
    async def db_shutting_down() -> None:
        class CannotConnectNowError(Exception):  # asyncpg's, under SQLAlchemy's adapter class
            sqlstate = "57P03"

        class Error(Exception):
            pass

        try:
            raise CannotConnectNowError("the database system is shutting down")
        except CannotConnectNowError as cause:
            adapted = Error("the database system is shutting down")
            adapted.__cause__ = cause
        raise DBAPIError("SELECT 1", {}, adapted)

    @app.get("/db-nul")
    async def db_nul() -> None:
        raise DataError("INSERT", {}, ValueError("invalid byte sequence for encoding UTF8: 0x00"))

    @app.get("/db-out-of-range")
    async def db_out_of_range() -> None:
        class NumericValueOutOfRangeError(Exception):
            sqlstate = "22003"

        raise DBAPIError("SELECT", {}, NumericValueOutOfRangeError("value out of int64 range"))

    @app.get("/db-other")
    async def db_other() -> None:
        raise DBAPIError("SELECT", {}, ValueError("syntax error"))


@pytest.mark.asyncio
async def test_every_error_has_the_one_shape(demo_app: tuple[FastAPI, httpx.AsyncClient]) -> None:
    app, client = demo_app
    add_routes(app)

    conflict = await client.get("/conflict", headers={"X-Request-ID": "req-1"})
    assert conflict.status_code == 409
    assert conflict.json() == {
        "error": {
            "code": "conflict",
            "message": "Already there.",
            "request_id": "req-1",
            "details": {"id": "x"},
        }
    }

    invalid = await client.post("/items", json={"nope": 1})
    assert invalid.status_code == 422
    body = invalid.json()["error"]
    assert body["code"] == "validation_error"
    assert body["details"][0]["loc"] == ["body", "name"]

    missing = await client.get("/no-such-route")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"

    wrong_method = await client.delete("/items")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"]["code"] == "method_not_allowed"


@pytest.mark.asyncio
async def test_unexpected_error_is_500_with_request_id_and_no_internals(
    demo_app: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = demo_app
    add_routes(app)
    response = await client.get("/boom")
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["code"] == "internal_error"
    assert error["request_id"] == response.headers["x-request-id"]
    assert "passwd" not in response.text and "Traceback" not in response.text


@pytest.mark.asyncio
async def test_database_outage_is_503_with_retry_after(demo_app: tuple[FastAPI, httpx.AsyncClient]) -> None:
    app, client = demo_app
    add_routes(app)
    response = await client.get("/db-down")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json()["error"]["code"] == "service_unavailable"


@pytest.mark.asyncio
async def test_driver_errors_map_to_503_422_or_500(demo_app: tuple[FastAPI, httpx.AsyncClient]) -> None:
    app, client = demo_app
    add_routes(app)
    lost = await client.get("/db-connection-lost")
    assert lost.status_code == 503 and lost.headers["retry-after"] == "5"
    shutting_down = await client.get("/db-shutting-down")
    assert shutting_down.status_code == 503 and shutting_down.headers["retry-after"] == "5"
    unstorable = await client.get("/db-nul")
    assert unstorable.status_code == 422 and unstorable.json()["error"]["code"] == "validation_error"
    assert (await client.get("/db-out-of-range")).status_code == 422
    assert (await client.get("/db-other")).status_code == 500
