"""``switchboard eval``: ingest a corpus, ask a question set through the gateway, score it."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from switchboard_cli.evaluation.curated import ask_curated, curated_cases, curated_report
from switchboard_cli.evaluation.replay import ReplayError, captured_turn, chat_view, replay, write_capture
from switchboard_cli.evaluation.runner import EvalError, GatewayEval
from switchboard_cli.fleet import Fleet, fleet_specs, probe
from switchboard_shared.evaluation.questions import Question, QuestionFileError, load_questions
from switchboard_shared.evaluation.scoring import SUMMARY_KEYS, report

console = Console()
DEFAULT_GATEWAY = "http://127.0.0.1:8000"


EVAL_TENANT = "eval"


def _admin_check(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        raise EvalError(f"gateway admin API answered {response.status_code}: {response.text[:300]}")
    return response.json() if response.content else None


@contextmanager
def _eval_key(gateway: str, admin_token: str) -> Iterator[str]:
    """A server key of the ``eval`` tenant (created once), revoked when the run ends."""
    with httpx.Client(
        base_url=gateway, headers={"Authorization": f"Bearer {admin_token}"}, timeout=10
    ) as admin:
        if admin.get(f"/v1/admin/tenants/{EVAL_TENANT}").status_code == 404:
            _admin_check(admin.post("/v1/admin/tenants", json={"id": EVAL_TENANT, "name": "Evaluation"}))
        name = f"eval-run-{uuid.uuid4().hex[:8]}"
        created = _admin_check(
            admin.post(f"/v1/admin/tenants/{EVAL_TENANT}/keys", json={"scope": "server", "name": name})
        )
        try:
            yield str(created["key"])
        finally:
            admin.delete(f"/v1/admin/tenants/{EVAL_TENANT}/keys/{created['id']}")


@contextmanager
def _local_fleet(data_dir: Path) -> Iterator[tuple[str, str]]:
    """The gateway URL and a server key: the running local fleet, or one started for the run."""
    from switchboard_cli.operator import admin_token

    fleet = None
    with httpx.Client(timeout=2) as client:
        running = probe(client, DEFAULT_GATEWAY)
    if not running:
        fleet = Fleet(fleet_specs("127.0.0.1"), data_dir.resolve())
        console.print("Starting the local fleet…")
        fleet.start()
        ready = fleet.wait_ready(180)
        if not all(ready.values()):
            fleet.stop()
            raise EvalError(f"the local fleet did not become ready: {ready}; logs in {data_dir / 'logs'}")
    try:
        with _eval_key(DEFAULT_GATEWAY, admin_token()) as key:
            yield DEFAULT_GATEWAY, key
    finally:
        if fleet is not None:
            fleet.stop()


def _print(result: dict[str, Any]) -> None:
    """One row per metric, one column per question kind (so the table fits a terminal)."""
    table = Table(title="Evaluation")
    table.add_column("metric")
    columns = [("overall", result["overall"]), *result["by_kind"].items()]
    for kind, _ in columns:
        table.add_column(kind, justify="right")
    for key in SUMMARY_KEYS:
        table.add_row(
            key, *("—" if summary[key] is None else f"{summary[key]:.3g}" for _, summary in columns)
        )
    console.print(table)


def eval_command(
    corpus: Annotated[
        Path | None, typer.Option(exists=True, file_okay=False, help="Folder of documents to ingest")
    ] = None,
    questions: Annotated[
        Path | None, typer.Option(exists=True, dir_okay=False, help="Question set (JSON lines)")
    ] = None,
    gateway: Annotated[str | None, typer.Option(help="Gateway URL; default: the local fleet")] = None,
    key: Annotated[str | None, typer.Option(help="A server key of the tenant to evaluate")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the full results here")] = None,
    provider: Annotated[
        list[str] | None, typer.Option(help="Provider chain for the run (repeatable)")
    ] = None,
    data_dir: Annotated[Path, typer.Option(help="Data folder when the fleet is started here")] = Path("data"),
    capture: Annotated[
        Path | None,
        typer.Option(help="Also store what the extractive answerer was given per question, for --replay"),
    ] = None,
    replay_from: Annotated[
        Path | None,
        typer.Option(
            "--replay",
            exists=True,
            dir_okay=False,
            help="Answer a --capture again with this checkout's extractive answerer, offline (no fleet)",
        ),
    ] = None,
    curated: Annotated[
        bool,
        typer.Option(
            "--curated",
            help="Also ask every wording of the tenant's curated answers, with its own assistant settings, "
            "and count those not answered with their entry",
        ),
    ] = False,
) -> None:
    """Score retrieval (hit@1, hit@5, MRR@10), answers (key phrases), refusals and latency, by kind."""
    if replay_from is not None:
        _replay(replay_from, json_out)
        return
    if (corpus is None) != (questions is None) or (questions is None and not curated):
        console.print("[red]--corpus and --questions are needed together (or --curated, or --replay).[/]")
        raise typer.Exit(2)
    try:
        question_set = load_questions(questions) if questions is not None else []
    except QuestionFileError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from exc
    if (gateway is None) != (key is None):
        console.print("[red]--gateway and --key go together.[/]")
        raise typer.Exit(2)

    def evaluate(url: str, server_key: str) -> dict[str, Any]:
        result: dict[str, Any] = {}
        if corpus is not None and question_set:
            result = _run(url, server_key, corpus, question_set, provider, capture, questions)
        if curated:
            result["curated"] = _run_curated(url, server_key)
        return result

    try:
        if gateway and key:
            result = evaluate(gateway, key)
        else:
            with _local_fleet(data_dir) as (url, server_key):
                result = evaluate(url, server_key)
    except (EvalError, httpx.HTTPError) as exc:
        console.print(f"[red]Evaluation failed: {exc}[/]")
        raise typer.Exit(1) from exc
    if question_set:
        _print(result)
    if curated:
        _print_curated(result["curated"])
    if json_out:
        json_out.write_text(json.dumps(result, indent=2, ensure_ascii=False))
        console.print(f"Results written to {json_out}")


def _run_curated(gateway: str, key: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=gateway.rstrip("/"), headers=headers, timeout=120) as client:
        cases = curated_cases(client)
        outcomes = []
        with Progress(console=console) as progress:
            task = progress.add_task("Curated answers", total=len(cases))
            for case in cases:
                outcomes.append(ask_curated(client, case))
                progress.advance(task)
    return curated_report(outcomes)


def _print_curated(report: dict[str, Any]) -> None:
    table = Table(title="Curated answers")
    for column in ("entries", "wordings", "matched", "other", "missed", "match_rate"):
        table.add_column(column, justify="right")
    table.add_row(
        *(
            "—" if report[c] is None else str(report[c])
            for c in ("entries", "wordings", "matched", "other", "missed", "match_rate")
        )
    )
    console.print(table)
    for miss in report["not_matched"]:
        console.print(f"[yellow]{miss['outcome']}[/]: {miss['wording']!r} (entry {miss['entry_id']})")


def _replay(path: Path, json_out: Path | None) -> None:
    try:
        with Progress(console=console) as progress:
            task = progress.add_task("Replaying")
            results, same = replay(path, progress=lambda: progress.advance(task))
    except ReplayError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from exc
    result = report(results)
    _print(result)
    console.print(f"{same}/{len(results)} answers are word for word the fleet's answer at capture time")
    if json_out:
        json_out.write_text(json.dumps(result, indent=2, ensure_ascii=False))
        console.print(f"Results written to {json_out}")


def _run(
    gateway: str,
    key: str,
    corpus: Path,
    question_set: list[Question],
    providers: list[str] | None,
    capture: Path | None = None,
    questions_path: Path | None = None,
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=gateway.rstrip("/"), headers=headers, timeout=120) as client:
        runner = GatewayEval(client)
        with console.status("Preparing the knowledge base…") as status:
            kb_id, documents = runner.ensure_kb(corpus, progress=lambda text: status.update(text))
        previous = runner.scope_assistant(kb_id, providers)
        results = []
        turns: list[dict[str, Any]] = []
        try:
            with Progress(console=console) as progress:
                task = progress.add_task("Asking", total=len(question_set))
                for question in question_set:
                    result = runner.ask(question, documents, end_user=f"eval-{uuid.uuid4().hex[:12]}")
                    results.append(result)
                    if capture is not None:
                        language, query = chat_view(question, list(previous.get("languages") or []))
                        found = runner.search(
                            kb_id, query, language=language, top_k=len(result.context or []) or 5
                        )
                        turns.append(
                            captured_turn(
                                question,
                                language=language,
                                query=query,
                                hits=list(found["hits"]),
                                corrected_query=found.get("corrected_query"),
                                query_words=found.get("query_words"),
                                fleet=result,
                            )
                        )
                    progress.advance(task)
        finally:
            runner.restore_assistant(previous)
        if capture is not None:
            write_capture(
                capture,
                corpus=corpus.name,
                questions=str(questions_path or ""),
                kb_id=kb_id,
                embedding_model=runner.embedding_model(kb_id),
                documents=documents,
                turns=turns,
            )
            console.print(f"Capture written to {capture}")
    return report(results)
