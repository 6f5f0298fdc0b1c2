"""``switchboard chat``: talk to the assistant through the gateway in the terminal, answers streamed.

Speaks the public API: ``POST /v1/conversations``, ``POST /v1/conversations/{id}/messages`` with
``Accept: text/event-stream`` (SSE packets of ``contracts.chat.StreamPacket``), ``GET /v1/conversations/{id}
?after=<message id>`` for operator replies, ``POST .../handoff``. Commands: ``/human``, ``/new``, ``/quit``.
"""

from __future__ import annotations

import base64
import getpass
import json
import sys
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.markup import escape

try:  # line editing for the prompt, and the text typed so far when a reply is printed above it
    import readline
except ImportError:  # pragma: no cover - Windows without pyreadline
    readline = None  # type: ignore[assignment]

from switchboard_shared.contracts.chat import (
    Citation,
    CitationPacket,
    DonePacket,
    ErrorPacket,
    HandoffPacket,
    Message,
    ResetPacket,
    TokenPacket,
    ToolCallPacket,
    decode_sse,
)

HELP = "Commands: /human — talk to a person, /new — start a new conversation, /quit — leave."


class GatewayError(Exception):
    """An error answer of the gateway, in the shared shape, put in plain words."""

    def __init__(self, status: int, code: str, message: str, retry_after: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after

    def plain(self) -> str:
        if self.status == 429:
            wait = f" Wait {self.retry_after} s and try again." if self.retry_after else " Wait a moment."
            return f"Too many requests.{wait}"
        if self.status in (401, 403):
            return f"The gateway refused this key: {self.message}"
        if self.status in (502, 503, 504):
            return f"The service is unavailable right now ({self.message}). Try again shortly."
        return f"{self.message} ({self.code}, HTTP {self.status})"


def gateway_error(response: httpx.Response) -> GatewayError:
    try:
        error = response.json().get("error", {})
    except (ValueError, AttributeError):
        error = {}
    return GatewayError(
        response.status_code,
        str(error.get("code", "http_error")),
        str(error.get("message") or response.reason_phrase),
        response.headers.get("Retry-After"),
    )


def token_subject(token: str) -> str | None:
    """The ``sub`` of an identity token (``v1.<base64url JSON>.<signature>``), without verifying it."""
    try:
        payload = token.split(".")[1]
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return None
    sub = data.get("sub") if isinstance(data, dict) else None
    return str(sub) if sub else None


@dataclass
class ChatSession:
    """One customer's conversation through the gateway; output goes to ``say``."""

    client: httpx.Client
    end_user_id: str
    say: Callable[[str], None]
    write: Callable[[str], None]
    providers: list[str] | None = None
    conversation_id: str | None = None
    owner: str = "bot"
    seen: set[str] = field(default_factory=set)
    last_message_id: str | None = None

    def _check(self, response: httpx.Response) -> httpx.Response:
        if response.is_error:
            response.read()
            raise gateway_error(response)
        return response

    def _remember(self, message_id: str | None) -> None:
        if message_id:
            self.seen.add(message_id)
            self.last_message_id = message_id

    def start(self) -> str:
        body = {"channel": "api", "end_user_id": self.end_user_id, "metadata": {"client": "switchboard-cli"}}
        conversation = self._check(self.client.post("/v1/conversations", json=body)).json()
        self.conversation_id = str(conversation["id"])
        self.owner = str(conversation.get("owner", "bot"))
        self.seen.clear()
        self.last_message_id = None
        return self.conversation_id

    def ask(self, text: str) -> None:
        if self.conversation_id is None:
            self.start()
        body: dict[str, Any] = {"text": text, "client_message_id": uuid.uuid4().hex}
        if self.providers:
            body["providers"] = self.providers
        citations: list[Citation] = []
        streamed = False
        with self.client.stream(
            "POST",
            f"/v1/conversations/{self.conversation_id}/messages",
            json=body,
            headers={"Accept": "text/event-stream"},
            timeout=httpx.Timeout(10.0, read=120.0),
        ) as response:
            self._check(response)
            if "text/event-stream" not in response.headers.get("content-type", ""):
                response.read()
                self._finish(response.json(), citations, streamed)
                return
            for packet in decode_sse(response.iter_lines()):
                if isinstance(packet, TokenPacket):
                    if not streamed:
                        self.write("[bold cyan]assistant:[/] ")
                        streamed = True
                    self.write(escape(packet.text))
                elif isinstance(packet, CitationPacket):
                    citations.append(packet.citation)
                elif isinstance(packet, ToolCallPacket) and packet.status == "started":
                    self.say(f"[dim]… {escape(packet.name)}[/]")
                elif isinstance(packet, HandoffPacket):
                    self.owner = "human"
                    self.say(f"[yellow]Handing over to a person ({escape(packet.handoff.reason)}).[/]")
                elif isinstance(packet, ErrorPacket):
                    self.say(f"[red]{escape(packet.message)}[/]")
                elif isinstance(packet, ResetPacket):
                    # A terminal cannot take back what it printed: mark the cut and start the answer anew.
                    if streamed:
                        self.say("[dim](answer interrupted; starting again)[/]")
                        streamed = False
                    citations.clear()
                elif isinstance(packet, DonePacket):
                    self._finish(packet.result.model_dump(mode="json"), citations, streamed)

    def _finish(self, result: dict[str, Any], citations: list[Citation], streamed: bool) -> None:
        self._remember(result.get("user_message", {}).get("id"))
        reply = result.get("reply")
        if reply:
            message = Message.model_validate(reply)
            if not streamed:
                self.write(f"[bold cyan]assistant:[/] {escape(message.text)}")
            self.write("\n")
            self._remember(message.id)
            citations = message.citations or citations
        elif streamed:
            self.write("\n")
        for citation in sorted(citations, key=lambda c: c.index):
            where = f" — {citation.url}" if citation.url else ""
            self.say(f"  [dim][{citation.index}] {escape(citation.title)}{escape(where)}[/]")
        previous, self.owner = self.owner, str(result.get("owner", self.owner))
        if self.owner == "human" and previous != "human":
            self.say("[yellow]A person will answer here; type to add details, or wait.[/]")

    def request_human(self) -> None:
        if self.conversation_id is None:
            self.start()
        self._check(
            self.client.post(
                f"/v1/conversations/{self.conversation_id}/handoff",
                json={"reason": "The customer asked to talk to a person."},
            )
        )
        self.owner = "human"
        self.say("[yellow]We're connecting you to a person. Their replies will appear here.[/]")

    def refresh(self) -> None:
        """Print messages that arrived since the last turn (operator replies) and ownership changes."""
        if self.conversation_id is None:
            return
        params = {"after": self.last_message_id} if self.last_message_id else {}
        conversation = self._check(
            self.client.get(f"/v1/conversations/{self.conversation_id}", params=params)
        ).json()
        for raw in conversation.get("messages", []):
            message = Message.model_validate(raw)
            if message.id in self.seen:
                continue
            self._remember(message.id)
            if message.role.value == "operator":
                self.say(f"[bold magenta]support agent:[/] {escape(message.text)}")
            elif message.role.value == "assistant":
                self.say(f"[bold cyan]assistant:[/] {escape(message.text)}")
            elif message.role.value == "system":
                self.say(f"[dim]{escape(message.text)}[/]")
        owner = str(conversation.get("owner", self.owner))
        if owner != self.owner:
            self.say(
                "[green]You're back with the assistant.[/]"
                if owner == "bot"
                else "[yellow]A person owns this conversation now.[/]"
            )
            self.owner = owner


PROMPT = "you: "


class ReplyWatcher:
    """While the prompt waits for a line, polls the conversation every ``interval`` seconds and prints what
    arrived (an operator's reply) above the prompt through ``above``; the prompt loop holds ``lock`` whenever
    it is not waiting, so the session is never used by both at once."""

    def __init__(self, session: ChatSession, interval: float, above: Callable[[str], None]) -> None:
        self.session = session
        self.interval = interval
        self.above = above
        self.lock = threading.Lock()
        self.waiting = threading.Event()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="switchboard-chat-replies", daemon=True)

    def _run(self) -> None:
        while not self.stopped.wait(self.interval):
            if not self.waiting.is_set() or self.session.conversation_id is None:
                continue
            with self.lock:
                if not self.waiting.is_set():
                    continue
                say, self.session.say = self.session.say, self.above
                try:
                    self.session.refresh()
                except (GatewayError, httpx.HTTPError):
                    pass  # tried again next tick; the prompt loop's own refresh reports lasting failures
                finally:
                    self.session.say = say

    def read(self, read: Callable[[str], str], prompt: str) -> str:
        self.waiting.set()
        self.lock.release()
        try:
            return read(prompt)
        finally:
            self.waiting.clear()
            self.lock.acquire()

    def __enter__(self) -> ReplyWatcher:
        self.lock.acquire()
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.lock.release()
        self.thread.join(timeout=self.interval + 15.0)


def run_chat(session: ChatSession, read: Callable[[str], str], watcher: ReplyWatcher | None = None) -> None:
    """The prompt loop: plain lines are messages, ``/``-lines are commands. With a ``watcher``, replies that
    arrive while the prompt waits are printed as they come."""
    if watcher is None:
        _loop(session, read)
        return
    with watcher:
        _loop(session, lambda prompt: watcher.read(read, prompt))


def _loop(session: ChatSession, read: Callable[[str], str]) -> None:
    session.say(f"[dim]{HELP}[/]")
    while True:
        try:
            session.refresh()
        except (GatewayError, httpx.HTTPError) as exc:
            session.say(f"[red]{escape(exc.plain() if isinstance(exc, GatewayError) else str(exc))}[/]")
        try:
            line = read(PROMPT).strip()
        except (EOFError, KeyboardInterrupt):
            session.say("")
            return
        if not line:
            continue
        command = line.lower()
        try:
            if command in ("/quit", "/exit", "/q"):
                return
            if command == "/new":
                session.start()
                session.say(f"[dim]New conversation {session.conversation_id}.[/]")
            elif command == "/human":
                session.request_human()
            elif command.startswith("/"):
                session.say(f"[dim]Unknown command. {HELP}[/]")
            else:
                session.ask(line)
        except GatewayError as exc:
            session.say(f"[red]{escape(exc.plain())}[/]")
        except httpx.HTTPError as exc:
            session.say(f"[red]Cannot reach the gateway: {escape(str(exc))}[/]")


def chat(
    gateway: Annotated[
        str, typer.Option(envvar="SWITCHBOARD_GATEWAY_URL", help="The gateway's base URL")
    ] = "http://127.0.0.1:8000",
    key: Annotated[
        str, typer.Option(envvar="SWITCHBOARD_API_KEY", help="A server or admin API key of the tenant")
    ] = "",
    user: Annotated[str | None, typer.Option(help="End-user id to chat as (default: cli-<login>)")] = None,
    user_token: Annotated[
        str | None, typer.Option(envvar="SWITCHBOARD_USER_TOKEN", help="Signed identity token of that user")
    ] = None,
    provider: Annotated[
        list[str] | None, typer.Option(help="Override the provider chain (repeat for fallbacks)")
    ] = None,
    conversation: Annotated[str | None, typer.Option(help="Continue this conversation id")] = None,
    poll: Annotated[
        float,
        typer.Option(
            min=0.0, help="Seconds between checks for replies while the prompt waits (terminal only; 0: off)"
        ),
    ] = 2.0,
) -> None:
    """Chat with the assistant through the gateway: answers stream in, citations are listed."""
    console = Console(highlight=False)
    if not key:
        console.print("[red]An API key is needed: --key or SWITCHBOARD_API_KEY.[/]")
        raise typer.Exit(2)
    headers = {"Authorization": f"Bearer {key}"}
    if user_token:
        # A signed identity: the gateway takes the end user from the token's subject.
        headers["X-End-User-Token"] = user_token
        end_user = token_subject(user_token) or user or ""
    else:
        # A server or admin key is the tenant's own backend, trusted to name the end user.
        end_user = user or f"cli-{getpass.getuser()}"
        headers["X-End-User-ID"] = end_user
    with httpx.Client(base_url=gateway.rstrip("/"), headers=headers, timeout=15.0) as client:
        session = ChatSession(
            client=client,
            end_user_id=end_user,
            say=console.print,
            write=lambda text: console.print(text, end=""),
            providers=provider or None,
            conversation_id=conversation,
        )
        watcher = None
        if poll > 0 and sys.stdin.isatty() and console.is_terminal:

            def above(text: str) -> None:
                typed = readline.get_line_buffer() if readline is not None else ""
                console.file.write("\r\x1b[2K")  # the prompt's line, cleared
                console.print(text)
                console.print(escape(PROMPT), end="")
                console.file.write(typed)
                console.file.flush()

            watcher = ReplyWatcher(session, poll, above)
        run_chat(session, read=console.input, watcher=watcher)
