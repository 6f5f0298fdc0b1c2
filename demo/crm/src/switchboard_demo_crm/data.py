"""The demo CRM's records, in the CRM's own JSON shape (not ours: the connector's field mapping does that)."""

from __future__ import annotations

from typing import Any

CUSTOMERS: list[dict[str, Any]] = [
    {
        "customer_id": "C-1001",
        "full_name": "Анна Петрова",
        "contacts": {"email": "anna.petrova@example.ru", "phone": "+79161234567"},
        "account": {"balance": "1250.50", "currency": "RUB"},
        "tier": "gold",
        "city": "Москва",
    },
    {
        "customer_id": "C-1002",
        "full_name": "Дмитрий Соколов",
        "contacts": {"email": "d.sokolov@example.ru", "phone": "+79035550011"},
        "account": {"balance": 0, "currency": "RUB"},
        "tier": "standard",
        "city": "Санкт-Петербург",
    },
    {
        "customer_id": "C-2001",
        "full_name": "Emily Carter",
        "contacts": {"email": "emily.carter@example.com", "phone": "+14155550123"},
        "account": {"balance": 42.0, "currency": "USD"},
        "tier": "standard",
        "city": "San Francisco",
    },
    {
        "customer_id": "C-2002",
        "full_name": "James O'Neill",
        "contacts": {"email": "james.oneill@example.co.uk", "phone": "+442071234567"},
        "account": {"balance": -15.75, "currency": "GBP"},
        "tier": "platinum",
        "city": "London",
    },
]

ORDERS: list[dict[str, Any]] = [
    {
        "order_no": "A-1001",
        "customer_id": "C-1001",
        "state": "shipped",
        "lines": [
            {"title": "Чайник электрический", "qty": 1, "unit_price": 3490.0},
            {"title": "Фильтр для воды", "qty": 2, "unit_price": 450.0},
        ],
        "amount": {"total": 4390.0, "currency": "RUB"},
        "shipment": {
            "tracking_number": "RU123456789",
            "tracking_url": "https://tracking.example.ru/RU123456789",
        },
        "created": "2026-11-18T09:30:00Z",
        "updated": "2026-11-20T14:05:00Z",
    },
    {
        "order_no": "A-1002",
        "customer_id": "C-1001",
        "state": "delivered",
        "lines": [{"title": "Кофемолка", "qty": 1, "unit_price": 2590.0}],
        "amount": {"total": 2590.0, "currency": "RUB"},
        "shipment": None,
        "created": "2026-10-02T11:00:00Z",
        "updated": "2026-10-06T16:40:00Z",
    },
    {
        "order_no": "A-1003",
        "customer_id": "C-1002",
        "state": "processing",
        "lines": [{"title": "Робот-пылесос", "qty": 1, "unit_price": 18990.0}],
        "amount": {"total": 18990.0, "currency": "RUB"},
        "shipment": None,
        "created": "2026-11-23T08:15:00Z",
        "updated": "2026-11-23T08:15:00Z",
    },
    {
        "order_no": "B-2001",
        "customer_id": "C-2001",
        "state": "shipped",
        "lines": [
            {"title": "Wireless headphones", "qty": 1, "unit_price": 89.99},
            {"title": "USB-C cable", "qty": 2, "unit_price": 9.5},
        ],
        "amount": {"total": 108.99, "currency": "USD"},
        "shipment": {
            "tracking_number": "1Z999AA10123456784",
            "tracking_url": "https://track.example.com/1Z999AA10123456784",
        },
        "created": "2026-11-19T17:20:00Z",
        "updated": "2026-11-21T10:00:00Z",
    },
    {
        "order_no": "B-2002",
        "customer_id": "C-2002",
        "state": "cancelled",
        "lines": [{"title": "Standing desk", "qty": 1, "unit_price": 349.0}],
        "amount": {"total": 349.0, "currency": "GBP"},
        "shipment": None,
        "created": "2026-11-01T12:00:00Z",
        "updated": "2026-11-02T09:00:00Z",
    },
]
