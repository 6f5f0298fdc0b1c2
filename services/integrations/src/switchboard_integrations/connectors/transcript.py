"""Renders a conversation transcript for a ticket: plain text (Zendesk) and Atlassian Document Format (Jira)."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from switchboard_shared.contracts.chat import Role
from switchboard_shared.contracts.integrations import CreateTicket, TranscriptLine

ROLE_LABEL = {
    Role.USER: "Customer",
    Role.ASSISTANT: "Assistant",
    Role.OPERATOR: "Operator",
    Role.SYSTEM: "System",
}


def line_label(line: TranscriptLine) -> str:
    """The speaker and the time in UTC (a time without an offset is taken as UTC)."""
    at = line.at.astimezone(UTC) if line.at and line.at.tzinfo else line.at
    stamp = f" ({at:%Y-%m-%d %H:%M} UTC)" if at else ""
    return f"{ROLE_LABEL[line.role]}{stamp}"


def plain_text(request: CreateTicket) -> str:
    parts: list[str] = []
    if request.description:
        parts.append(request.description.strip())
    if request.transcript:
        parts.append("Conversation transcript:")
        parts.extend(f"{line_label(line)}: {line.text}" for line in request.transcript)
    if request.conversation_id:
        parts.append(f"Switchboard conversation: {request.conversation_id}")
    return "\n\n".join(parts) or request.subject


def _adf_text(text: str, *, strong: bool = False) -> list[dict[str, Any]]:
    """Text nodes with hard breaks for newlines (ADF text nodes may not be empty or hold newlines)."""
    nodes: list[dict[str, Any]] = []
    for index, piece in enumerate(text.split("\n")):
        if index:
            nodes.append({"type": "hardBreak"})
        if piece:
            node: dict[str, Any] = {"type": "text", "text": piece}
            if strong:
                node["marks"] = [{"type": "strong"}]
            nodes.append(node)
    return nodes


def adf_paragraph(text: str) -> dict[str, Any]:
    return {"type": "paragraph", "content": _adf_text(text)}


def adf_document(request: CreateTicket) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if request.description:
        content.append(adf_paragraph(request.description.strip()))
    if request.transcript:
        content.append(
            {
                "type": "heading",
                "attrs": {"level": 3},
                "content": [{"type": "text", "text": "Conversation transcript"}],
            }
        )
        for line in request.transcript:
            content.append(
                {
                    "type": "paragraph",
                    "content": [*_adf_text(f"{line_label(line)}: ", strong=True), *_adf_text(line.text)],
                }
            )
    if request.conversation_id:
        content.append(adf_paragraph(f"Switchboard conversation: {request.conversation_id}"))
    if not content:
        content.append(adf_paragraph(request.subject))
    return {"type": "doc", "version": 1, "content": content}


def adf_comment(text: str) -> dict[str, Any]:
    return {"type": "doc", "version": 1, "content": [adf_paragraph(text)]}


def adf_to_text(node: Any) -> str:
    """The plain text of an ADF node (Jira may send comment bodies as ADF)."""
    if isinstance(node, str):
        return node
    if not isinstance(node, dict):
        return ""
    if node.get("type") == "text":
        return str(node.get("text", ""))
    if node.get("type") == "hardBreak":
        return "\n"
    children = "".join(adf_to_text(child) for child in node.get("content", []) or [])
    return children + ("\n" if node.get("type") in {"paragraph", "heading"} else "")
