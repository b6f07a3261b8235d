"""`rehab dead-letters`: the events each service parked after its handler kept refusing them (kit.bus), listed, and
sent again once a new version mends what made them fail (kit.dead_letters says how a replay is applied once)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import MetaData

from kit import dead_letters
from kit.db import make_engine
from kit.settings import ServiceSettings
from kit.tables import KitTables
from ops.audit import database_url, operator_connection, operator_seed
from ops.settings import SupervisorSettings

# The processes that consume events, and so may park one (the gateway publishes only).
CONSUMERS = ("intake", "referrals", "funds", "reports")

app = typer.Typer(help="Events a service parked after failing to apply them: list them; replay them once mended.",
                  no_args_is_help=True)


def _database(name: str) -> str | None:
    """The process's database URL; None for an embedded one not made yet."""
    url = database_url(ServiceSettings(), name)
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return None
    return url


@app.command("list")
def list_command(
    service: Annotated[str | None, typer.Argument(help="One of intake, referrals, funds, reports (default: all)")] = None,
) -> None:
    """Each parked event: its number (what `replay` takes), the consumer, subject and event id, the error's type,
    how many times it was tried and when it was parked. Never the event's data."""
    found = 0
    for name in _chosen(service):
        url = _database(name)
        if url is None:
            typer.echo(f"{name:10} no database yet")
            continue
        letters = dead_letters.parked(make_engine(url), KitTables(MetaData()))
        found += len(letters)
        if not letters:
            typer.echo(f"{name:10} none")
        for letter in letters:
            typer.echo(f"{name:10} #{letter.id:<5} {letter.parked_at:%Y-%m-%d %H:%M:%S} {letter.consumer} "
                       f"{letter.subject} {letter.event_id} {letter.error} (tried {letter.deliveries} times)")
    if found:
        typer.echo(f"{found} parked: once what made them fail is mended, `rehab dead-letters replay SERVICE --all` "
                   "(or the numbers) sends them again")


@app.command("replay")
def replay_command(
    service: Annotated[str, typer.Argument(help="intake, referrals, funds or reports")],
    numbers: Annotated[list[int] | None, typer.Argument(help="the dead letters' numbers, as `list` shows them")] = None,
    every: Annotated[bool, typer.Option("--all", help="every dead letter of the service")] = False,
    nats_url: Annotated[str | None, typer.Option(
        "--nats-url", help="The system's NATS (default: REHAB_NATS_URL, else the one `rehab up` runs)")] = None,
    nkey_seed: Annotated[Path | None, typer.Option(
        "--nkey-seed", help="The operator's nkey seed (default: ops/nats.nk in the secrets folder)")] = None,
) -> None:
    """Send parked events again, to be applied by the running service (once: those who applied them already only
    acknowledge them). A letter leaves the list once NATS has stored its event; one that fails again is parked
    again under a new number."""
    (name,) = _chosen(service)
    if bool(numbers) == every:
        typer.echo("error: name the dead letters' numbers, or --all", err=True)
        raise typer.Exit(2)
    url = _database(name)
    if url is None:
        typer.echo(f"error: {name} has no database yet", err=True)
        raise typer.Exit(2)
    settings = SupervisorSettings()
    bus = nats_url or (settings.nats_url if settings.external_nats else settings.embedded_nats_url)
    engine, tables = make_engine(url), KitTables(MetaData())
    known = {letter.id for letter in dead_letters.parked(engine, tables)}
    unknown = sorted(set(numbers or ()) - known)

    async def send() -> list[dead_letters.Parked]:
        nc = await operator_connection(bus, operator_seed(nkey_seed))
        try:
            return await dead_letters.replay(engine, tables, nc.jetstream(timeout=5), process=name,
                                             ids=None if every else numbers)
        finally:
            await nc.close()

    try:
        sent = asyncio.run(send())
    except Exception as error:
        typer.echo(f"error: NATS did not take the events ({type(error).__name__}): is the system running?", err=True)
        raise typer.Exit(1) from None
    for letter in sent:
        typer.echo(f"{name:10} #{letter.id:<5} sent again: {letter.subject} {letter.event_id}")
    if unknown:
        typer.echo(f"no such dead letter of {name}: {', '.join(f'#{n}' for n in unknown)}", err=True)
    typer.echo(f"{len(sent)} sent again")
    raise typer.Exit(1 if unknown else 0)


def _chosen(service: str | None) -> tuple[str, ...]:
    if service is None:
        return CONSUMERS
    if service not in CONSUMERS:
        typer.echo(f"error: {service!r} is not one of {', '.join(CONSUMERS)}", err=True)
        raise typer.Exit(2)
    return (service,)
