"""What releases before it kept in clear, sealed once funds runs: grants' donors (donors.seal_clear) and payments'
references and rate sources (service.seal_older_payments). A background job (`ServiceSpec.background`): while the
keys are sealed or out of reach, or the database fails, it is tried again every `RETRY_SECONDS` until done."""

from __future__ import annotations

import asyncio

from sqlmodel import Session

from kit import logs
from kit.errors import Unavailable
from kit.service import Runtime
from services.funds import donors, service

RETRY_SECONDS = 30
log = logs.get("funds.older_in_clear")


async def seal_in_background(runtime: Runtime) -> None:
    def seal(session: Session) -> tuple[int, int]:
        return donors.seal_clear(session, runtime.keyring), service.seal_older_payments(session, runtime)

    while True:
        try:
            grants, payments = await runtime.uow.run(seal)
        except Unavailable:
            await asyncio.sleep(RETRY_SECONDS)
            continue
        except Exception as error:  # noqa: BLE001 (the database failing: said, and tried again; never the message)
            log.warning("sealing what older releases kept in clear failed; trying again", error=type(error).__name__,
                        retry_seconds=RETRY_SECONDS)
            await asyncio.sleep(RETRY_SECONDS)
            continue
        if grants or payments:
            log.info("sealed what older releases kept in clear", grants=grants, payments=payments)
        return
