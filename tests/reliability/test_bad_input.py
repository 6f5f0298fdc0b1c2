"""Targeted bad input through the gateway: oversized bodies, invalid UTF-8, deeply nested JSON, huge
uploads, PDF and zip bombs in ingestion, SSE consumers that vanish mid-stream, slowloris clients, and
forged or replayed webhooks. Each must get a clear 4xx in the shared error shape (never a 5xx) and leave
the fleet serving."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import socket
import threading
import time
import zipfile
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psutil
import pytest

from .fleet import ReliabilityFleet, make_tenant, retrying, wait_job

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def tenant(fleet: ReliabilityFleet) -> dict[str, str]:
    return make_tenant(fleet.gateway, "badinput")


@pytest.fixture(scope="module")
def conversation(fleet: ReliabilityFleet, tenant: dict[str, str]) -> str:
    headers = {**bearer(tenant["server_key"]), "X-End-User-ID": "bad-input-user"}
    with httpx.Client(base_url=fleet.gateway, headers=headers, timeout=30) as client:
        created = retrying(client, "POST", "/v1/conversations", json={"end_user_id": "bad-input-user"})
    assert created.status_code in (200, 201), created.text
    return str(created.json()["id"])


def assert_client_error(response: httpx.Response, *allowed: int) -> None:
    assert response.status_code in allowed, (response.status_code, response.text[:300])
    error = response.json()["error"]
    assert error["code"] and error["message"] and error["request_id"]


def still_serving(fleet: ReliabilityFleet, tenant: dict[str, str], conversation: str) -> None:
    headers = {**bearer(tenant["server_key"]), "X-End-User-ID": "bad-input-user"}
    turn = httpx.post(
        f"{fleet.gateway}/v1/conversations/{conversation}/messages",
        json={"text": "How long does standard shipping take?"},
        headers=headers,
        timeout=40,
    )
    assert turn.status_code == 200, turn.text


def test_oversized_bodies(fleet: ReliabilityFleet, tenant: dict[str, str], conversation: str) -> None:
    headers = {
        **bearer(tenant["server_key"]),
        "X-End-User-ID": "bad-input-user",
        "content-type": "application/json",
    }
    big_message = json.dumps({"text": "a" * 200_000}).encode()
    response = httpx.post(
        f"{fleet.gateway}/v1/conversations/{conversation}/messages", content=big_message, headers=headers
    )
    assert_client_error(response, 413, 422)
    body = json.dumps({"name": "x", "description": "b" * 3_000_000}).encode()
    assert_client_error(httpx.post(f"{fleet.gateway}/v1/kbs", content=body, headers=headers), 413)

    # A chunked body without Content-Length is counted as it streams in.
    def chunks() -> Any:
        for _ in range(64):
            yield b"c" * 65_536

    streamed = httpx.post(f"{fleet.gateway}/v1/kbs", content=chunks(), headers=headers, timeout=30)
    assert_client_error(streamed, 413)
    # Internal services enforce their own limit too.
    internal = httpx.post(
        f"{fleet.url('chat-a')}/internal/v1/conversations",
        content=b'{"end_user_id": "' + b"x" * 2_000_000 + b'"}',
        headers={
            "X-Internal-Token": fleet.env["SWITCHBOARD_INTERNAL_TOKEN"],
            "X-Tenant-ID": "badinput",
            "content-type": "application/json",
        },
    )
    assert_client_error(internal, 413, 422)
    still_serving(fleet, tenant, conversation)


def test_invalid_utf8_and_malformed_json(
    fleet: ReliabilityFleet, tenant: dict[str, str], conversation: str
) -> None:
    headers = {
        **bearer(tenant["server_key"]),
        "X-End-User-ID": "bad-input-user",
        "content-type": "application/json",
    }
    url = f"{fleet.gateway}/v1/conversations/{conversation}/messages"
    for body in (
        b'{"text": "caf\xc3\x28 \xff\xfe"}',
        b'{"text": "\xed\xa0\x80 lone surrogate"}',
        b'{"text": "unterminated',
        b"\xff\xfe\x00\x00",
        b'{"text": "\\ud800"}',
        b"[]",
        b"null",
        b'{"text": 12345}',
    ):
        response = httpx.post(url, content=body, headers=headers, timeout=40)
        assert response.status_code != 500 and response.status_code < 500, (body, response.status_code)
        if response.status_code >= 400:
            assert_client_error(response, 400, 422)
    query = httpx.get(f"{fleet.gateway}/v1/conversations?status=%ff%fe&limit=%00", headers=headers)
    assert_client_error(query, 400, 422)
    still_serving(fleet, tenant, conversation)


def test_deeply_nested_json(fleet: ReliabilityFleet, tenant: dict[str, str], conversation: str) -> None:
    headers = {
        **bearer(tenant["server_key"]),
        "X-End-User-ID": "bad-input-user",
        "content-type": "application/json",
    }
    for depth in (1_000, 100_000):
        nested = b'{"text": "hi", "metadata": ' + b'{"a": ' * depth + b"1" + b"}" * depth + b"}"
        response = httpx.post(
            f"{fleet.gateway}/v1/conversations", content=nested, headers=headers, timeout=30
        )
        assert response.status_code < 500, (depth, response.status_code, response.text[:200])
        arrays = b'{"text": ' + b"[" * depth + b"]" * depth + b"}"
        response = httpx.post(
            f"{fleet.gateway}/v1/conversations/{conversation}/messages",
            content=arrays,
            headers=headers,
            timeout=30,
        )
        assert_client_error(response, 400, 413, 422)
    still_serving(fleet, tenant, conversation)


def test_huge_upload_refused_early(
    fleet: ReliabilityFleet, tenant: dict[str, str], conversation: str
) -> None:
    headers = bearer(tenant["server_key"])
    with httpx.Client(base_url=fleet.gateway, headers=headers, timeout=120) as client:
        kb = retrying(client, "POST", "/v1/kbs", json={"name": "uploads", "embedding_model": "minilm"}).json()
        huge = io.BytesIO(b"# big\n\n" + b"word " * (27 * 1024 * 1024 // 5))
        started = time.monotonic()
        response = client.post(
            f"/v1/kbs/{kb['id']}/files", files=[("files", ("big.md", huge, "text/markdown"))]
        )
        assert_client_error(response, 413)
        assert time.monotonic() - started < 60
        exe = client.post(
            f"/v1/kbs/{kb['id']}/files",
            files=[("files", ("tool.exe", b"MZ\x90\x00", "application/octet-stream"))],
        )
        assert_client_error(exe, 415)
        traversal = client.post(
            f"/v1/kbs/{kb['id']}/files",
            files=[("files", ("../../../../etc/cron.d/x.md", b"# hi\n\ntext", "text/markdown"))],
        )
        assert traversal.status_code == 202, traversal.text
        # Folders inside an upload are kept (guides/a.md); nothing climbs out of the upload's own folder.
        names = traversal.json()["files"]
        assert names and all(not name.startswith("/") and ".." not in name.split("/") for name in names)
    still_serving(fleet, tenant, conversation)


def pdf_bomb(megabytes: int) -> bytes:
    """A one-page PDF whose content stream inflates to ``megabytes`` MB of text operators."""
    compressor = zlib.compressobj(9)
    chunk = b"BT /F1 12 Tf 72 712 Td (bomb) Tj ET\n" * 28_000  # ~1 MB
    stream = b"".join(compressor.compress(chunk) for _ in range(megabytes)) + compressor.flush()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length "
        + str(len(stream)).encode()
        + b" /Filter /FlateDecode >>\nstream\n"
        + stream
        + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n".encode() + body + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        out.write(f"{offset:010d} 00000 n \n".encode())
    out.write(f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode())
    return out.getvalue()


def zip_bomb() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("bomb.md", b"0" * (200 * 1024 * 1024))
    return buffer.getvalue()


def test_pdf_and_zip_bombs_in_ingestion(
    fleet: ReliabilityFleet, tenant: dict[str, str], conversation: str
) -> None:
    retrieval = psutil.Process(fleet.processes["retrieval"].process.pid)  # type: ignore[union-attr]
    rss_before = sum(p.memory_info().rss for p in [retrieval, *retrieval.children(recursive=True)])
    headers = bearer(tenant["server_key"])
    bomb = pdf_bomb(300)
    assert len(bomb) < 3 * 1024 * 1024
    with httpx.Client(base_url=fleet.gateway, headers=headers, timeout=120) as client:
        kb = retrying(client, "POST", "/v1/kbs", json={"name": "bombs", "embedding_model": "minilm"}).json()
        zipped = client.post(
            f"/v1/kbs/{kb['id']}/files", files=[("files", ("docs.zip", zip_bomb(), "application/zip"))]
        )
        assert_client_error(zipped, 413, 415)
        disguised = client.post(
            f"/v1/kbs/{kb['id']}/files", files=[("files", ("notes.md", zip_bomb(), "text/markdown"))]
        )
        assert disguised.status_code in (202, 400, 413, 415), disguised.text
        if disguised.status_code == 202:
            job = wait_job(client, disguised.json()["job"]["id"], timeout=120)
            assert job["status"] in ("succeeded", "failed")
        started = time.monotonic()
        upload = client.post(
            f"/v1/kbs/{kb['id']}/files", files=[("files", ("manual.pdf", bomb, "application/pdf"))]
        )
        assert upload.status_code == 202, upload.text
        job = wait_job(client, upload.json()["job"]["id"], timeout=180)
        elapsed = time.monotonic() - started
    assert job["status"] in ("succeeded", "failed"), job
    if job["status"] == "succeeded":
        assert job["documents_failed"] == 1 or job["chunks_embedded"] < 5_000, job
    assert elapsed < 180
    assert (
        fleet.processes["retrieval"].process is not None
        and fleet.processes["retrieval"].process.poll() is None
    )
    rss_after = sum(p.memory_info().rss for p in [retrieval, *retrieval.children(recursive=True)])
    assert rss_after - rss_before < 1_000 * 1024 * 1024, (rss_before, rss_after)
    still_serving(fleet, tenant, conversation)


def test_sse_consumer_disconnecting_mid_stream(fleet: ReliabilityFleet, tenant: dict[str, str]) -> None:
    headers = {**bearer(tenant["server_key"]), "X-End-User-ID": "sse-quitter"}
    with httpx.Client(base_url=fleet.gateway, headers=headers, timeout=40) as client:
        conversation = retrying(
            client, "POST", "/v1/conversations", json={"end_user_id": "sse-quitter"}
        ).json()["id"]
        for number in range(5):
            with client.stream(
                "POST",
                f"/v1/conversations/{conversation}/messages",
                json={"text": f"How do returns work? ({number})", "client_message_id": f"sse-{number}"},
                headers={"Accept": "text/event-stream"},
            ) as stream:
                assert stream.status_code == 200
                assert stream.headers["content-type"].startswith("text/event-stream")
                for _ in stream.iter_raw(16):
                    break  # the consumer goes away after the first bytes
        # Nothing is stuck: the conversation lock was released and the next turn works.
        turn = client.post(f"/v1/conversations/{conversation}/messages", json={"text": "And refunds?"})
        assert turn.status_code == 200, turn.text
        stored = client.get(f"/v1/conversations/{conversation}").json()["messages"]
    users = [m for m in stored if m["role"] == "user"]
    assert len(users) == 6, [m["text"] for m in users]
    assert len({m["text"] for m in users}) == 6


def test_slowloris_clients_do_not_starve_others(fleet: ReliabilityFleet, tenant: dict[str, str]) -> None:
    host, port = "127.0.0.1", fleet.processes["gateway"].port
    sockets: list[socket.socket] = []
    stop = threading.Event()
    for _ in range(50):
        sock = socket.create_connection((host, port), timeout=5)
        sock.sendall(b"POST /v1/conversations HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n")
        sockets.append(sock)

    def dribble() -> None:
        while not stop.is_set():
            for sock in sockets:
                try:
                    sock.sendall(b"X-a: b\r\n")
                except OSError:
                    pass
            stop.wait(1.0)

    worker = threading.Thread(target=dribble, daemon=True)
    worker.start()
    try:
        latencies = []
        for _ in range(10):
            started = time.monotonic()
            response = httpx.get(
                f"{fleet.gateway}/v1/models", headers=bearer(tenant["server_key"]), timeout=10
            )
            latencies.append(time.monotonic() - started)
            assert response.status_code == 200
            time.sleep(0.3)
        assert max(latencies) < 3.0, latencies
    finally:
        stop.set()
        worker.join(timeout=5)
        for sock in sockets:
            sock.close()


def zendesk_signature(secret: str, timestamp: str, body: bytes) -> str:
    return base64.b64encode(
        hmac.new(secret.encode(), timestamp.encode() + body, hashlib.sha256).digest()
    ).decode()


def test_forged_and_replayed_webhooks(fleet: ReliabilityFleet, tenant: dict[str, str]) -> None:
    secret = "zendesk-webhook-signing-secret"
    created = httpx.post(
        f"{fleet.gateway}/v1/connectors",
        json={
            "kind": "zendesk",
            "name": "helpdesk",
            "settings": {"base_url": "http://127.0.0.1:9", "email": "agent@shop.example"},
            "secrets": {"api_token": "zd-token", "webhook_secret": secret},
        },
        headers=bearer(tenant["admin_key"]),
    )
    assert created.status_code == 201, created.text
    url = f"{fleet.gateway}/v1/channels/zendesk/{created.json()['id']}"
    event = {
        "id": "evt-1",
        "type": "zen:event-type:ticket.status_changed",
        "detail": {"id": "424242"},
        "event": {"current": "solved", "previous": "open"},
    }
    body = json.dumps(event).encode()
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    old = (datetime.now(UTC) - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")

    def send(headers: dict[str, str], payload: bytes = body) -> httpx.Response:
        return httpx.post(url, content=payload, headers={"content-type": "application/json", **headers})

    ts, sig = "X-Zendesk-Webhook-Signature-Timestamp", "X-Zendesk-Webhook-Signature"
    assert_client_error(send({}), 401, 403)
    assert_client_error(send({ts: now, sig: zendesk_signature("wrong-secret", now, body)}), 401, 403)
    assert_client_error(send({ts: now, sig: zendesk_signature(secret, now, body)}, body + b" "), 401, 403)
    tampered = json.dumps({**event, "event": {"current": "open"}}).encode()
    assert_client_error(send({ts: now, sig: zendesk_signature(secret, now, body)}, tampered), 401, 403)
    assert_client_error(send({ts: old, sig: zendesk_signature(secret, old, body)}), 401, 403)
    first = send({ts: now, sig: zendesk_signature(secret, now, body)})
    replay = send({ts: now, sig: zendesk_signature(secret, now, body)})
    assert first.status_code < 500 and replay.status_code < 500, (first.text, replay.text)
    assert first.status_code == replay.status_code
    # A connector of another tenant cannot be addressed with this tenant's secret, nor an unknown one.
    unknown = f"{fleet.gateway}/v1/channels/zendesk/0123456789abcdef0123456789abcdef"
    response = httpx.post(unknown, content=body, headers={ts: now, sig: zendesk_signature(secret, now, body)})
    assert_client_error(response, 401, 403, 404)
