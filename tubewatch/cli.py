"""The `tubewatch` command line (CONTRACT.md, "Processes").

Arguments are declared here; each subcommand runs ``main(args)`` of its service's ``cli``
module, imported only when that subcommand is chosen.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
import threading

from pydantic import ValidationError

from tubewatch import __version__
from tubewatch.metrics_endpoint import serve_metrics
from tubewatch.settings import Settings, get_settings

# subcommand -> (module whose main(args) runs it, help text)
COMMANDS: dict[str, tuple[str, str]] = {
    "api": ("tubewatch.api.cli", "the REST API (FastAPI on uvicorn)"),
    "poller": ("tubewatch.poller.cli", "poll YouTube for every active watch, produce snapshots"),
    "changes": ("tubewatch.changes.cli", "change engine: youtube_videos in, video_changes out"),
    "notifier": ("tubewatch.notifier.cli", "consume video_changes, send alerts through apprise"),
    "run": ("tubewatch.runner.cli", "api + poller + changes + notifier in one process"),
    "demo": ("tubewatch.runner.demo", "run plus the simulator and a console channel"),
    "youtube-sim": ("tubewatch.youtube_sim.cli", "the YouTube Data API v3 simulator"),
    "keys": ("tubewatch.api.keys_cli", "manage API keys"),
}


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

# Processes without an HTTP server of their own: their metrics at TUBEWATCH_METRICS_BIND.
METRICS_BY_BIND = ("poller", "changes", "notifier")


def _port(text: str) -> int:
    """A TCP port for a server to listen on: 1 to 65535 (argparse reports anything else)."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid port {text!r}: not a number") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"invalid port {port}: must be 1 to 65535")
    return port


def _settings_problems(exc: ValidationError) -> list[str]:
    """One line per bad variable, named as the environment spells it, without its value
    (the value may be a secret)."""
    return [
        f"TUBEWATCH_{'.'.join(str(part) for part in error['loc']).upper()}: {error['msg']}"
        for error in exc.errors()
    ]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tubewatch", description="Notifications for YouTube statistics."
    )
    parser.add_argument("--version", action="version", version=f"tubewatch {__version__}")
    parser.add_argument(
        "--log-level",
        default="INFO",
        type=str.upper,
        choices=LOG_LEVELS,
        help="default INFO",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=COMMANDS[name][1], description=COMMANDS[name][1])

    for name in ("api", "run", "demo"):
        p = add(name)
        p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
        p.add_argument("--port", type=_port, default=8000, help="port to bind (default 8000)")
    add("poller").add_argument("--once", action="store_true", help="run one full cycle and exit")
    add("changes")
    add("notifier")
    sim = add("youtube-sim")
    sim.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    sim.add_argument("--port", type=_port, default=8090, help="port to bind (default 8090)")
    keys = add("keys")
    keys_sub = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    create = keys_sub.add_parser("create", help="mint an API key; prints it on the last line")
    create.add_argument("--name", required=True, help="the owner's name")
    return parser


class Terminated(BaseException):
    """SIGTERM arrived before the command installed its own handlers (while it starts).

    A BaseException, like KeyboardInterrupt, so no ``except Exception`` swallows it on the
    way out and every ``finally`` and context manager still cleans up (the demo's folder).
    """


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    on_main_thread = threading.current_thread() is threading.main_thread()
    if on_main_thread:
        # Until the command installs its own handlers (`run_until_signalled`, the stack,
        # uvicorn), SIGTERM unwinds like Ctrl-C instead of killing the process mid-start.
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        return _run(args)
    except KeyboardInterrupt:  # Ctrl-C before the command installed its own handlers
        print(f"tubewatch {args.command}: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print(f"tubewatch {args.command}: terminated before it started", file=sys.stderr)
        return 128 + signal.SIGTERM
    finally:
        if on_main_thread:  # the command is over: whoever called main gets theirs back
            signal.signal(signal.SIGTERM, previous)


def _run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # httpx logs full request URLs (with the API key) at INFO: keep it quiet.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)  # migration chatter at every start
    # apprise logs whole target URLs (tokens included) at DEBUG and parts of them in warnings;
    # each send captures what it needs (redacted) itself, so apprise never reaches our log.
    logging.getLogger("apprise").propagate = False
    logging.getLogger("urllib3").setLevel(logging.WARNING)  # logs request paths at DEBUG
    module_name = COMMANDS[args.command][0]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            print(f"tubewatch {args.command}: not built yet", file=sys.stderr)
            return 3
        raise
    try:
        if args.command in METRICS_BY_BIND:
            bind = get_settings().metrics_bind
            if bind:
                serve_metrics(bind)
        return int(module.main(args) or 0)
    except ValidationError as exc:
        if exc.title != Settings.__name__:
            raise
        print(f"tubewatch {args.command}: invalid configuration:", file=sys.stderr)
        for line in _settings_problems(exc):
            print(f"  {line}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
