"""A service's background jobs: one that stops by an error says so at once, by its name and the error's type, never
the error's message (a database error quotes the row's values); funds' sealing of older donors outlasts a database
that fails and tries again."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any

import pytest

from kit import logs
from kit.service import said_if_failed
from services.funds import older_in_clear

SECRET = "Ганна Secret-Donor"


def lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


async def test_a_job_that_fails_is_logged_by_name_without_its_message(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("funds", "INFO")

    async def seal_clear_in_background() -> None:
        raise RuntimeError(SECRET)

    task = asyncio.create_task(seal_clear_in_background(), name="seal_clear_in_background")
    task.add_done_callback(said_if_failed)
    await asyncio.gather(task, return_exceptions=True)
    await asyncio.sleep(0)  # the done callbacks run on the next turn of the loop
    out = capsys.readouterr()

    stopped = [line for line in lines(out.out) if line.get("event") == "background job stopped"]
    assert len(stopped) == 1 and stopped[0]["job"] == "seal_clear_in_background"
    assert "RuntimeError" in json.dumps(stopped[0])
    assert SECRET not in out.out + out.err


async def test_a_job_cancelled_at_shutdown_is_not_a_failure(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("funds", "INFO")
    task = asyncio.create_task(asyncio.sleep(60), name="sleeper")
    task.add_done_callback(said_if_failed)
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await asyncio.sleep(0)
    assert "background job stopped" not in capsys.readouterr().out


async def test_sealing_older_donors_tries_again_after_a_database_error(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("funds", "INFO")
    monkeypatch.setattr(older_in_clear, "RETRY_SECONDS", 0)
    answers: list[Any] = [OSError(SECRET), (3, 2)]

    async def run(_work: Any) -> int:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    runtime = SimpleNamespace(uow=SimpleNamespace(run=run), keyring=None)
    await asyncio.wait_for(older_in_clear.seal_in_background(runtime), timeout=5)  # type: ignore[arg-type]
    out = capsys.readouterr()

    assert answers == []  # asked twice: the failure did not end the job
    events = [line["event"] for line in lines(out.out)]
    assert "sealing what older releases kept in clear failed; trying again" in events
    assert "sealed what older releases kept in clear" in events
    assert SECRET not in out.out + out.err
