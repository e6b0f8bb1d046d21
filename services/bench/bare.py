"""The redirect bench's baseline: a bare Starlette handler answering 302, served by
uvicorn with the same settings as ``winwin api`` (services/roles.py run_api)."""

from __future__ import annotations

import argparse

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import Route


async def redirect(request: Request) -> RedirectResponse:
    return RedirectResponse("https://network.example.org/diet", status_code=302)


app = Starlette(routes=[Route("/r/{token}", redirect), Route("/healthz", redirect)])


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
