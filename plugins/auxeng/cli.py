"""Command line for operators and the Makefile: ``python -m auxeng COMMAND``.

Commands read the same settings and ``auxeng_db`` connection as the DAGs.
"""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import select

from auxeng.dagkit.context import utcnow
from auxeng.ops.reporting import checkin_lines, state_lines, survey_lines
from auxeng.registry.guard import MassRemovalRefused, RemovalGuard
from auxeng.registry.lifecycle import is_cancelled, is_due_to_end, is_ended, is_ended_and_live, is_live
from auxeng.registry.sync import sync_registry_file
from auxeng.settings import load_settings
from auxeng.store.db import open_store, resolve_database_url, session_scope
from auxeng.store.models import EngagementRow, RegistryLoadRow


def _migrate(_args: argparse.Namespace) -> int:
    url = resolve_database_url()
    open_store(url)
    print(f"Engagement store at {_redact(url)} is up to date.")
    return 0


def _sync(args: argparse.Namespace) -> int:
    settings = load_settings()
    path = args.path or settings.registry_path
    try:
        result = sync_registry_file(
            open_store(),
            path,
            now=utcnow(),
            force=args.force,
            allow_mass_removal=args.allow_mass_removal,
            guard=RemovalGuard.from_settings(settings),
        )
    except MassRemovalRefused as refused:
        print(refused.report(), file=sys.stderr)
        return 1
    if result.skipped:
        print(f"{path}: unchanged since load #{result.load_id}.")
    else:
        print(
            f"{path}: load #{result.load_id}: {len(result.created)} created, {len(result.updated)} updated, "
            f"{result.unchanged} unchanged, {len(result.removed)} removed, {len(result.restored)} restored."
        )
    return _problems(result.problems)


def _import_responses(args: argparse.Namespace) -> int:
    from auxeng.messaging.tokens import MissingSecretKey, secret_key
    from auxeng.surveys.responses import import_responses_csv

    path = Path(args.file)
    if not path.is_file():
        print(f"{path}: no such file", file=sys.stderr)
        return 1
    try:
        key = secret_key()
    except MissingSecretKey as exc:
        print(exc, file=sys.stderr)
        return 1
    report = import_responses_csv(open_store(), path, now=utcnow(), key=key, file_name=str(path))
    print(f"{path}: {report.summary()}.")
    for skipped in report.skipped:
        print(f"  - {skipped}", file=sys.stderr)
    return _problems(report.errors)


def _problems(problems: list[str]) -> int:
    """Print the problems of a load or import (valid rows were saved); the exit code."""
    if not problems:
        return 0
    print(f"{len(problems)} problem(s); valid rows were saved:", file=sys.stderr)
    for problem in problems:
        print(f"  - {problem}", file=sys.stderr)
    return 1


def _report(args: argparse.Namespace) -> int:
    as_of = date.fromisoformat(args.date)
    week_start = as_of - timedelta(days=as_of.weekday())
    with session_scope(open_store()) as session:
        load = session.scalars(select(RegistryLoadRow).order_by(RegistryLoadRow.id.desc())).first()
        rows = list(
            session.scalars(select(EngagementRow).order_by(EngagementRow.end_date, EngagementRow.key))
        )
    print(f"AuxEng as of {as_of.isoformat()} ({as_of:%A})")
    if load is not None:
        print(f"  registry load #{load.id}: {len(rows)} engagements, {len(load.problems)} problem(s)")
    ended = [r for r in rows if is_ended_and_live(r)]
    recent = [r for r in ended if r.end_date >= week_start - timedelta(days=7)]
    print(
        f"\nEngagements detected as ended: {len(ended)} ({len(ended) - len(recent)} earlier ones caught up)"
    )
    for row in recent:
        print(_engagement_line(row))
    upcoming = [
        r for r in rows if is_live(r) and not is_ended(r) and as_of <= r.end_date < as_of + timedelta(days=7)
    ]
    print(f"\nEnding in the next 7 days: {len(upcoming)}")
    for row in upcoming:
        print(_engagement_line(row))
    pending = [r for r in rows if is_due_to_end(r, as_of)]
    if pending:
        print(
            f"\nPast their last day but not marked ended yet (auxeng_detect_ended has not run for {as_of}): {len(pending)}"
        )
    cancelled = [r for r in rows if is_cancelled(r)]
    print(f"\nCancelled (never counted as ended): {', '.join(r.key for r in cancelled) or 'none'}")
    with session_scope(open_store()) as session:
        print("\n".join(checkin_lines(session, as_of)))
        print("\n".join(survey_lines(session, now=utcnow())))
    return 0


def _state(args: argparse.Namespace) -> int:
    with session_scope(open_store()) as session:
        print("\n".join(state_lines(session, date.fromisoformat(args.date))))
    return 0


def _engagement_line(row: EngagementRow) -> str:
    return f"  {row.key:<14} last day {row.end_date}  host {row.host_team_key:<22} {row.title}"


def _redact(url: str) -> str:
    from sqlalchemy import make_url

    return make_url(url).render_as_string(hide_password=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m auxeng", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="create or upgrade the engagement store's schema").set_defaults(
        func=_migrate
    )
    sync = commands.add_parser("sync-registry", help="validate the registry and load it into the store")
    sync.add_argument("--path", help="registry file (default: AUXENG_REGISTRY_PATH or the demo registry)")
    sync.add_argument("--force", action="store_true", help="reload even if the file is unchanged")
    sync.add_argument(
        "--allow-mass-removal",
        action="store_true",
        help="confirm a load that removes more engagements than the mass-removal guard allows "
        "(AUXENG_REGISTRY_REMOVAL_GUARD_SHARE, _MIN); without it such a load is refused and changes nothing",
    )
    sync.set_defaults(func=_sync)
    import_responses = commands.add_parser(
        "import-responses", help="import survey answers collected elsewhere from a CSV file"
    )
    import_responses.add_argument(
        "file",
        help="CSV with the header engagement,email,survey,nps,went_well,to_change,"
        "business_goals,technical_goals,submitted_at (submitted_at optional)",
    )
    import_responses.set_defaults(func=_import_responses)
    report = commands.add_parser("report", help="print what the pack knows as of a date")
    report.add_argument("--date", required=True, help="YYYY-MM-DD")
    report.set_defaults(func=_report)
    state = commands.add_parser("state", help="the pack's state on one screen (what make demo ends with)")
    state.add_argument("--date", required=True, help="YYYY-MM-DD")
    state.set_defaults(func=_state)
    args = parser.parse_args(argv)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    return args.func(args)
