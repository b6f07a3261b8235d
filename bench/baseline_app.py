"""The yardstick: a bare FastAPI endpoint returning small JSON, served the way our services are (uvicorn, uvloop,
httptools, one worker, no access log). `python -m bench.baseline_app PORT`."""

from __future__ import annotations

import sys

import uvicorn
from fastapi import FastAPI

app = FastAPI()


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not argv[0].isdigit():
        print("usage: python -m bench.baseline_app PORT", file=sys.stderr)
        return 2
    # The same settings as kit.service.serve, so the difference to a service is what the service does.
    uvicorn.run(app, host="127.0.0.1", port=int(argv[0]), access_log=False, log_level="warning",
                loop="uvloop", http="httptools", server_header=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
