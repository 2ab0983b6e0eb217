"""The command line: ``mypreferences-sandbox`` (or ``python -m sandbox``) serves the sandbox."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from werkzeug.serving import make_server

from .app import create_app


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line's options; each defaults to its ``SANDBOX_*`` environment variable."""
    parser = argparse.ArgumentParser(
        prog="mypreferences-sandbox",
        description="Serve a local, in-memory stand-in for the MyPreferences Profile API. Every "
        "other setting comes from SANDBOX_* environment variables (see the README).",
    )
    parser.add_argument(
        "--host",
        default=os.environ.get("SANDBOX_HOST", "127.0.0.1"),
        help="address to listen on (SANDBOX_HOST, default 127.0.0.1)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("SANDBOX_PORT", "8080")),
        help="port to listen on; 0 picks a free one (SANDBOX_PORT, default 8080)",
    )
    parser.add_argument(
        "--seed-file",
        default=os.environ.get("SANDBOX_SEED_FILE"),
        help="a state document (see /_sandbox/state) to load at start-up (SANDBOX_SEED_FILE)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sandbox until interrupted; print its URL once it accepts connections."""
    args = parse_args(argv)
    try:
        app = create_app({"SEED_FILE": args.seed_file})
    except ValueError as error:
        print(f"mypreferences-sandbox: {error}", file=sys.stderr)
        return 2
    server = make_server(args.host, args.port, app, threaded=True)
    print(f"mypreferences-sandbox serving on http://{args.host}:{server.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
