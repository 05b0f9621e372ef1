"""``python -m bench.bare_server PORT``: the bridge benchmark's baseline.

A constant-JSON ASGI handler served exactly as the agent serves the bridge: its own process,
the agent's loopback sockets (TCP_NODELAY), the same uvicorn settings. The ratio against it
is then the cost of cardkit's security middleware, routing and status, not of a different
process layout.
"""

from __future__ import annotations

import sys
from typing import Any

import uvicorn

from agent.daemon import loopback_sockets

BODY = b'{"name":"bare","version":"0","state":"running","readers":[]}'


async def bare(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(BODY)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": BODY})


def main() -> None:
    sockets = loopback_sockets(int(sys.argv[1]))
    config = uvicorn.Config(
        bare,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_keep_alive=5,
        limit_concurrency=None,
    )
    uvicorn.Server(config).run(sockets=sockets)


if __name__ == "__main__":
    main()
