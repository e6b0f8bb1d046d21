"""The fake SendGrid (services/devtools/fake_sendgrid.py) in its own process, so that its
request handling does not share the dispatcher's interpreter lock.

Prints its host on the first line of stdout; on a line on stdin (or EOF) prints one JSON
line ``{"requests", "delivered"}`` and exits.
"""

from __future__ import annotations

import json
import sys

from services.devtools.fake_sendgrid import FakeSendGrid


def main() -> None:
    with FakeSendGrid(sys.argv[1] if len(sys.argv) > 1 else "SG.bench-key") as fake:
        print(fake.host, flush=True)
        sys.stdin.readline()
        print(
            json.dumps({"requests": fake.request_count, "delivered": len(fake.delivered)}),
            flush=True,
        )


if __name__ == "__main__":
    main()
