"""The ``winwin`` command. ``winwin --help`` and ``winwin COMMAND --help`` teach each part.

Errors are one line on stderr; exit status 2 for bad usage or input, 1 for a failure.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pydantic import ValidationError

from services.domain.roles import Role
from services.errors import UsageError
from services.logs import configure

if TYPE_CHECKING:
    from services.config import Settings

EPILOG = """\
Typical session:
  winwin demo                         # everything on this machine, dashboard URL printed
  winwin up --port 8000               # api + stream worker + dispatcher + relay
  winwin report stages --from 2017-08 --to 2018-07 --format csv
  winwin users create ann@network.example --role admin --generate
  winwin report lift --campaign ID --format table

Configuration comes from WINWIN_* environment variables (see README, Configuration).
With WINWIN_KAFKA_BOOTSTRAP empty, `up` and `demo` start an embedded Kafka-protocol
broker on loopback; with WINWIN_DATABASE_URL unset, SQLite in ./.winwin/.
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="winwin",
        description="WINWIN: outreach and attribution engine for a learning health network.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    demo = sub.add_parser(
        "demo",
        help="run a seeded demo network with simulated recipients",
        description="Start everything on the embedded default, seed a small network "
        "(resources, messengers, families), send an email campaign and simulate recipients "
        "opening, clicking, using and contributing while the dashboard counts them.",
    )
    demo.add_argument(
        "--headless", action="store_true", help="no dashboard: print a summary and exit"
    )
    demo.add_argument(
        "--duration",
        type=float,
        default=None,
        metavar="SECONDS",
        help="how long to simulate (default: until Ctrl-C; 30 with --headless)",
    )
    demo.add_argument("--port", type=int, default=8000, help="HTTP port (default 8000)")
    demo.add_argument(
        "--families", type=int, default=3000, help="synthetic families to seed (default 3000)"
    )

    up = sub.add_parser(
        "up", help="run api + stream worker + dispatcher + relay under one supervisor"
    )
    up.add_argument("--port", type=int, default=8000, help="HTTP port (default 8000)")

    api = sub.add_parser("api", help="run the HTTP API and public tracking endpoints only")
    api.add_argument("--port", type=int, default=8000)
    api.add_argument("--host", default="127.0.0.1")
    sub.add_parser(
        "worker", help="run one stream worker (Faust): validate, dedupe, attribute, sink"
    )
    sub.add_parser(
        "dispatcher", help="run the campaign dispatcher (renders and sends due campaigns)"
    )
    sub.add_parser("relay", help="run the outbox relay (SQL outbox -> Kafka)")

    db = sub.add_parser("db", help="database schema")
    db_sub = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    db_sub.add_parser("upgrade", help="apply migrations up to the newest schema (idempotent)")

    contacts = sub.add_parser("contacts", help="contacts")
    c_sub = contacts.add_subparsers(dest="contacts_command", metavar="ACTION", required=True)
    imp = c_sub.add_parser(
        "import",
        help="import contacts from a CSV file",
        description="Columns: external_id (required), email, name, role, language, "
        "consent_email (confirmed|unconfirmed|unsubscribed), tags (;-separated); "
        "any other column becomes an attribute. Rows that cannot be imported are refused "
        "one by one (line and reason on stderr and in a report file) and the exit status "
        "is then 2; the other rows are imported. An unsubscribed contact stays unsubscribed.",
    )
    imp.add_argument("file", metavar="FILE.csv")
    imp.add_argument(
        "--encoding",
        default="auto",
        help="the file's encoding (default: UTF-8, or UTF-16/UTF-8 as its byte-order mark "
        "says); e.g. latin-1 or cp1252 for a spreadsheet's older CSV",
    )
    imp.add_argument(
        "--rejects",
        metavar="REJECTS.csv",
        help="write every refused row's line and reason here (default: FILE.csv.rejected.csv)",
    )

    campaign = sub.add_parser("campaign", help="create, list, schedule and cancel campaigns")
    k_sub = campaign.add_subparsers(dest="campaign_command", metavar="ACTION", required=True)
    create = k_sub.add_parser(
        "create",
        help="create a campaign (and its template) from a YAML file",
        description="FILE.yaml holds the fields of POST /api/v1/campaigns; `template:` may "
        "hold an inline template {name, subject, html, text} instead of template_id.",
    )
    create.add_argument("file", metavar="FILE.yaml")
    k_sub.add_parser("list", help="list campaigns with status and sending progress")
    sched = k_sub.add_parser("schedule", help="schedule a draft campaign")
    sched.add_argument("id", metavar="ID")
    sched.add_argument("--at", metavar="ISO8601", help="when to send (default: now)")
    cancel = k_sub.add_parser("cancel", help="cancel a campaign that is not sent yet")
    cancel.add_argument("id", metavar="ID")

    toolkit = sub.add_parser("toolkit", help="trusted-messenger toolkits")
    t_sub = toolkit.add_subparsers(dest="toolkit_command", metavar="ACTION", required=True)
    build = t_sub.add_parser("build", help="build toolkit pages, QR codes and flyers as ZIP files")
    build.add_argument("campaign_id", metavar="CAMPAIGN_ID")
    build.add_argument(
        "--messenger", metavar="ID", help="only this messenger (default: all of the campaign)"
    )
    build.add_argument("--out", metavar="DIR", required=True)

    dead = sub.add_parser("deadletters", help="inspect and replay the dead-letter topic")
    d_sub = dead.add_subparsers(dest="deadletters_command", metavar="ACTION", required=True)
    d_sub.add_parser("list", help="show dead letters: source, offset, error")
    replay = d_sub.add_parser(
        "replay", help="re-process dead letters (after a fix) through the normal path"
    )
    replay.add_argument("--dry-run", action="store_true", help="only say what would be replayed")

    bench = sub.add_parser(
        "bench", help="benchmarks, each against a baseline measured in the same run"
    )
    bench.add_argument(
        "what",
        choices=[
            "pipeline",
            "latency",
            "redirect",
            "dispatch",
            "memory",
            "scaleout",
            "reads",
            "all",
        ],
    )
    bench.add_argument(
        "--json", action="store_true", help="machine-readable results (figure, baseline, ratio)"
    )
    bench.add_argument(
        "--events",
        type=int,
        default=None,
        help="pipeline and scaleout: records (default 200000); reads: events (default 1000000)",
    )
    bench.add_argument(
        "--people",
        type=int,
        default=None,
        help="memory: distinct people (default 1000000); reads: people (default 100000)",
    )
    bench.add_argument(
        "--real-kafka",
        action="store_true",
        help="scaleout: start a real Kafka from deploy/kafka/lib (a checkout) if none is set",
    )
    bench.add_argument(
        "--workers",
        metavar="N,N,...",
        help="scaleout: the same backlog with each group size from the start (e.g. 1,2,4)",
    )

    report = sub.add_parser("report", help="stage and attribution reports (table, CSV, JSON, PNG)")
    r_sub = report.add_subparsers(dest="report_command", metavar="REPORT", required=True)
    stages = r_sub.add_parser(
        "stages", help="unique people aware/use/produce per month, growth, run-chart signals"
    )
    stages.add_argument("--from", dest="start", required=True, metavar="YYYY-MM")
    stages.add_argument("--to", dest="end", required=True, metavar="YYYY-MM")
    stages.add_argument("--baseline", metavar="YYYY-MM", help="default: --from")
    _output_args(stages)
    attribution = r_sub.add_parser(
        "attribution", help="credited events and people per campaign/channel/messenger"
    )
    attribution.add_argument("--campaign", metavar="ID")
    attribution.add_argument(
        "--model",
        default="last_touch",
        choices=["last_touch", "first_touch", "linear", "time_decay", "position_based"],
    )
    attribution.add_argument("--window-days", type=int, default=None)
    attribution.add_argument(
        "--group-by", default="campaign", choices=["campaign", "channel", "messenger"]
    )
    _output_args(attribution)
    _users_parser(sub)
    lift = r_sub.add_parser("lift", help="a holdout's lift per stage (did it work?)")
    subject = lift.add_mutually_exclusive_group(required=True)
    subject.add_argument("--campaign", metavar="ID")
    subject.add_argument("--journey", metavar="ID")
    _output_args(lift)
    return p


USERS_EPILOG = """\
Examples:
  winwin users create ann@network.example --role admin --generate
      # prints a new random password once
  printf '%s' "$PASSWORD" | winwin users create bo@network.example --role staff
      # the password from standard input (at least 12 characters)
  winwin users create cy@network.example --role analyst
      # at a terminal: asks for the password twice
  winwin users list
  winwin users disable bo@network.example
      # signs bo out everywhere; the account stays in the audit log

Roles: admin (accounts, service tokens, stage map, settings), staff (all outreach
work), analyst (dashboards, reports and exports; changes nothing).
"""


def _users_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    users = sub.add_parser(
        "users",
        help="staff accounts: create, list, disable",
        description="Named staff accounts that sign in to the dashboard and staff pages.",
        epilog=USERS_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    u_sub = users.add_subparsers(dest="users_command", metavar="ACTION", required=True)
    create = u_sub.add_parser(
        "create",
        help="create an account (password from stdin, or --generate)",
        epilog=USERS_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    create.add_argument("email", metavar="EMAIL")
    create.add_argument("--role", required=True, choices=[r.value for r in Role])
    create.add_argument(
        "--generate", action="store_true", help="make a random password and print it once"
    )
    u_sub.add_parser("list", help="list accounts: email, role, created, disabled")
    disable = u_sub.add_parser("disable", help="disable an account and end its sessions")
    disable.add_argument("email", metavar="EMAIL")


def _output_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", default="table", choices=["table", "csv", "json", "png"])
    p.add_argument(
        "--out", metavar="FILE", help="write to FILE instead of stdout (required for png)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)

    configure(role=args.command)
    try:
        return dispatch(args) or 0
    except UsageError as exc:
        print(f"winwin: {exc}", file=sys.stderr)
        return 2
    except ValidationError as exc:
        first = exc.errors()[0]
        print(
            f"winwin: configuration: {'.'.join(map(str, first['loc']))}: {first['msg']}",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - one clear line, not a traceback
        logging.getLogger("winwin").debug("failure", exc_info=True)
        print(f"winwin: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


def dispatch(args: argparse.Namespace) -> int | None:
    # lazy: the settings (pydantic-settings) and the roles cost ~0.4 s that --help skips
    from services import roles
    from services.config import get_settings

    settings = get_settings()
    match args.command:
        case "demo":
            # lazy: a command loads only its own stack (`winwin --help` stays fast)
            from services.demo import run_demo

            duration = (
                args.duration if args.duration is not None else (30.0 if args.headless else None)
            )
            return run_demo(
                settings,
                port=args.port,
                headless=args.headless,
                duration=duration,
                families=args.families,
            )
        case "up":
            # lazy: a command loads only its own stack (`winwin --help` stays fast)
            from services.supervisor import run_up

            return run_up(settings, args.port)
        case "api":
            roles.run_api(settings, args.port, args.host)
        case "worker":
            _need_kafka(settings)
            roles.run_worker(settings)
        case "relay":
            _need_kafka(settings)
            roles.run_relay(settings)
        case "dispatcher":
            roles.run_dispatcher(settings)
        case "db":
            # lazy: a command loads only its own stack (`winwin --help` stays fast)
            from services.db.migrate import upgrade

            upgrade(settings.database_url)
            print("database is at the newest schema")
        case "contacts":
            # lazy: a command loads only its own stack (`winwin --help` stays fast)
            from services.campaigns.importer import import_csv

            return import_csv(settings, args.file, args.encoding, args.rejects)
        case "campaign" | "toolkit":
            # lazy: a command loads only its own stack (`winwin --help` stays fast)
            from services.campaigns.cli import build_command, run_campaign_command

            command = run_campaign_command if args.command == "campaign" else build_command
            return command(settings, args)
        case "deadletters":
            # lazy: a command loads only its own stack (`winwin --help` stays fast)
            from services.tracking.replay import deadletters_command

            return deadletters_command(settings, args)
        case "bench":
            # lazy: a command loads only its own stack (`winwin --help` stays fast)
            from services.bench import run_bench

            return run_bench(settings, args)
        case "report":
            # lazy: a command loads only its own stack (`winwin --help` stays fast)
            from services.experiments.report import run_report_command

            return run_report_command(settings, args)
        case "users":
            # lazy: a command loads only its own stack (`winwin --help` stays fast)
            from services.accounts_cli import users_command

            return users_command(settings, args)
    return None


def _need_kafka(settings: Settings) -> None:
    if not settings.kafka_bootstrap:
        raise UsageError(
            "WINWIN_KAFKA_BOOTSTRAP is empty: set it, or use `winwin up` to start the embedded broker"
        )


if __name__ == "__main__":
    sys.exit(main())
