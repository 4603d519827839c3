"""Task bodies of the pack's DAGs: plain functions the thin DAG files call."""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from auxeng.dagkit.context import utcnow
from auxeng.registry.guard import MassRemovalRefused, RemovalGuard
from auxeng.registry.lifecycle import mark_ended
from auxeng.registry.sync import sync_registry_file
from auxeng.settings import load_settings
from auxeng.store.db import open_store

log = logging.getLogger(__name__)


class RegistryProblems(AirflowFailException):
    """The registry has problems; valid rows were saved. Not retried: the file must be fixed."""


class RegistryMassRemoval(AirflowFailException):
    """The load would remove too many engagements at once; nothing was changed. Not retried:
    confirm with the param ``allow_mass_removal``, or fix the file."""


def load_registry(*, force: bool = False, allow_mass_removal: bool = False) -> dict[str, Any]:
    """Validate the registry file and save its valid rows; raise with the full report if anything is wrong.

    A load that would remove more engagements than the mass-removal guard allows fails with
    its report and changes nothing, unless ``allow_mass_removal``.
    """
    settings = load_settings()
    try:
        result = sync_registry_file(
            open_store(),
            settings.registry_path,
            now=utcnow(),
            force=force,
            allow_mass_removal=allow_mass_removal,
            guard=RemovalGuard.from_settings(settings),
        )
    except MassRemovalRefused as refused:
        raise RegistryMassRemoval(refused.report()) from None
    if result.skipped:
        log.info(
            "Registry %s unchanged since load #%s: nothing to do", settings.registry_path, result.load_id
        )
    else:
        log.info(
            "Registry load #%s: %d created, %d updated, %d unchanged, %d removed, %d restored",
            result.load_id,
            len(result.created),
            len(result.updated),
            result.unchanged,
            len(result.removed),
            len(result.restored),
        )
        for label, keys in (
            ("created", result.created),
            ("updated", result.updated),
            ("removed", result.removed),
        ):
            if keys:
                log.info("%s: %s", label, ", ".join(keys))
    if result.problems:
        report = "\n".join(f"  - {p}" for p in result.problems)
        raise RegistryProblems(
            f"{settings.registry_path}: {len(result.problems)} problem(s); valid rows were saved:\n{report}"
        )
    return result.summary()


def detect_ended(as_of: date) -> dict[str, Any]:
    """Mark engagements ended as of ``as_of``; returns the asset event payload."""
    result = mark_ended(open_store(), as_of, now=utcnow())
    for engagement in result.ended:
        log.info(
            "Ended: %s %r (host %s, last day %s)",
            engagement.key,
            engagement.title,
            engagement.host_team,
            engagement.end,
        )
    for key in result.reopened:
        log.warning("Reopened: %s (its end date moved to %s or later)", key, as_of)
    if not result.ended:
        log.info("No engagement newly ended as of %s", as_of)
    return {
        "as_of": as_of.isoformat(),
        "engagements": [e.as_event() for e in result.ended],
        "reopened": result.reopened,
    }
