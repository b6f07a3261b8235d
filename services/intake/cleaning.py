"""Documents are cleaned (`files.cleaned`) in worker processes, each with a memory ceiling, and every file within a
time limit: a file made to exhaust a parser (a PDF of countless objects, an image that inflates to gigabytes) costs a
worker, never the service, its event loop or the threads its database work runs on.

Two workers at most, so two uploads are cleaned at once and others wait their turn; a worker past its time is killed
with the others (a process pool cannot stop one task) and the pool is made again on the next upload, the uploads
being cleaned meanwhile answered "try again" (503). The workers are started on the first upload, from a clean
interpreter (`spawn`: never a fork of a process with threads and open connections), and die with the service.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import resource
import signal
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from kit.errors import Unavailable
from services.intake import files

WORKERS = 2
# Address space per worker: the interpreter with Pillow and pypdf takes about 60 MB of it; a 50-megapixel PNG
# decoded (files.MAX_PNG_PIXELS), or a PDF of files.MAX_PDF_OBJECTS objects, fits in what is left.
MEMORY_BYTES = 1536 * 1024 * 1024
# The gateway waits 10 s for a service's answer (backend_timeout_seconds), the upload's transfer included: a refusal
# must reach it before that, or the caseworker sees a timeout while the document is stored anyway.
SECONDS = 7.0
_PR_SET_PDEATHSIG = 1


class Cleaner:
    def __init__(self, *, workers: int = WORKERS, memory_bytes: int = MEMORY_BYTES, seconds: float = SECONDS) -> None:
        self.workers, self.memory_bytes, self.seconds = workers, memory_bytes, seconds
        self._pool: ProcessPoolExecutor | None = None

    async def cleaned(self, data: bytes, max_bytes: int) -> files.Cleaned:
        """`data` judged and cleaned in a worker; `files.NotAccepted` or `files.TooComplex` as `files.cleaned` says
        (cleaned, more than `max_bytes` is too complex), `TooComplex` as well for a file whose cleaning ran out of
        memory or time."""
        pool = self._running_pool()
        try:
            future: Future = pool.submit(_clean, data, max_bytes)
        except BrokenProcessPool:
            self._stop(pool)
            pool = self._running_pool()
            future = pool.submit(_clean, data, max_bytes)
        try:
            outcome = await asyncio.wait_for(asyncio.wrap_future(future), self.seconds)
        except TimeoutError:
            self._stop(pool)
            raise files.TooComplex(f"The document could not be checked and cleaned within {self.seconds:g} seconds; "
                                   f"save it again as a simpler file, or in parts.") from None
        except BrokenProcessPool:  # a worker died: this file's (out of memory) or another's (its time was up)
            self._stop(pool)
            raise Unavailable("The document could not be cleaned just now; send it again.",
                              code="document-cleaning-interrupted") from None
        kind, first, second = outcome
        if kind == "cleaned":
            return files.Cleaned(first, second)
        if kind == "too-complex":
            raise files.TooComplex(first)
        raise files.NotAccepted(first, str(second))

    def close(self) -> None:
        if self._pool is not None:
            self._stop(self._pool)

    def _running_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_limit_worker, initargs=(self.memory_bytes,))
        return self._pool

    def _stop(self, pool: ProcessPoolExecutor) -> None:
        """Kill the pool's workers (those cleaning too) and let the next upload start a new pool."""
        for process in list(getattr(pool, "_processes", {}).values()):  # Python < 3.14 has no kill_workers()
            if process.is_alive():
                process.kill()
        pool.shutdown(wait=False, cancel_futures=True)
        if self._pool is pool:
            self._pool = None


def _limit_worker(memory_bytes: int) -> None:
    """In the worker, before any file: its memory ceiling, and death with the service (a killed service leaves no
    worker behind holding a document's bytes)."""
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    try:
        import ctypes

        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the pool's own pipe ends it when the service is gone
        pass
    if os.getppid() == 1:  # the service died before the line above
        os._exit(0)


def _clean(data: bytes, max_bytes: int) -> tuple[str, str, bytes | str]:
    """In the worker: the outcome as plain values (a refusal crosses back as words and its code, not as an exception
    object), and never more bytes than a document may hold (the service would have to take them in before refusing
    them)."""
    try:
        done = files.cleaned(data, max_bytes)
    except files.TooComplex as refused:
        return "too-complex", refused.detail, ""
    except files.NotAccepted as refused:
        return "not-accepted", refused.detail, refused.code
    except MemoryError:
        return "too-complex", "The document needs more memory to be checked and cleaned than a document may.", ""
    except Exception:  # noqa: BLE001 - files.cleaned refuses what it cannot read; this is the backstop, never a 500
        return "not-accepted", "The file could not be read as the kind of document it begins like.", files.DAMAGED
    return "cleaned", done.content_type, done.data
