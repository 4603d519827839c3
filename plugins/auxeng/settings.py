"""Settings read from the environment (``AUXENG_*``), never at import time.

Every setting is documented in docs/operations.md, "Settings". A bad value is a
:class:`SettingsError` that names the variable.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import time
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from auxeng.vocabulary import FlagRule, IndependenceComponent

PACKAGE_DIR = Path(__file__).resolve().parent
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off", ""})


class SettingsError(ValueError):
    """An ``AUXENG_*`` setting has a value the pack cannot use."""


def shipped_include_dir() -> Path:
    """The ``include/`` assets (templates, demo registry, its schema) that came with the code:
    ``auxeng/include/`` in an installed wheel (pyproject.toml puts them there), else a
    checkout's ``include/`` beside ``plugins/``."""
    in_package = PACKAGE_DIR / "include"
    return in_package if in_package.is_dir() else PACKAGE_DIR.parents[1] / "include"


def include_dir(env: Mapping[str, str] | None = None) -> Path:
    """The pack's ``include/`` folder: ``AUXENG_INCLUDE_DIR``, else :func:`shipped_include_dir`."""
    override = (os.environ if env is None else env).get("AUXENG_INCLUDE_DIR")
    return Path(override) if override else shipped_include_dir()


def airflow_home() -> Path:
    return Path(os.environ.get("AIRFLOW_HOME") or Path.home() / "airflow")


@dataclass(frozen=True)
class Settings:
    """The pack's settings; see docs/operations.md, "Settings"."""

    registry_path: Path
    timezone: ZoneInfo
    db_conn_id: str
    public_url: str = "http://localhost:8080/auxeng"
    smtp_conn_id: str = "smtp_default"
    slack_api_conn_id: str = "slack_api_default"
    slack_webhook_conn_id: str = "slack_default"
    email_from: str | None = None
    dev_outbox: Path | None = None
    slack_lookup_by_email: bool = True
    recipient_timezone: ZoneInfo | None = None
    quiet_start: time | None = time(9)
    quiet_end: time | None = time(17)
    reminder_days: tuple[int, ...] = (3, 7)
    fatigue_days: int = 30
    survey_window_days: int = 21
    survey_max_age_days: int = 30
    handover_max_age_days: int = 30
    outbox_lease_seconds: int = 600
    outbox_max_attempts: int = 5
    outbox_batch_size: int = 200
    checkin_offset_months: int = 3
    checkin_invite_days_before: int = 7
    checkin_window_days: int = 14
    checkin_max_age_days: int = 30
    checkin_meeting_time: time = time(10)
    checkin_meeting_minutes: int = 30
    follow_up_months: int = 6
    nps_min_responses: int = 3
    digest_max_age_days: int = 6
    help_requests_csv: Path | None = None
    help_lookback_days: int = 90
    help_window_days: int = 30
    help_requests_min: int = 2
    help_requests_critical: int = 5
    flag_comfort_max: int = 2
    flag_memory_days: int = 90
    repeat_months: int = 6
    load_max_engagements: int = 2
    load_gap_days: int = 14
    detractor_cluster_min: int = 2
    flag_independence_below: int = 50
    flag_independence_critical: int = 30
    flag_independence_drop: int = 15
    flag_reannounce_days: int = 7
    flag_copy_host_manager: frozenset[str] = frozenset({FlagRule.HELP_REQUESTS, FlagRule.CHECKIN})
    ops_slack_channel: str | None = None
    ops_emails: tuple[str, ...] = ()
    registry_removal_guard_share: float = 0.2
    registry_removal_guard_min: int = 3
    independence_weights: tuple[tuple[str, float], ...] = ()
    """Weights that differ from the formula's defaults: (component, weight) pairs."""
    independence_threshold: float = 70.0
    independence_window_weeks: int = 52

    @property
    def default_recipient_timezone(self) -> ZoneInfo:
        """Time zone for people without one in the registry (defaults to the program's)."""
        return self.recipient_timezone or self.timezone


def _zone(env: Mapping[str, str], name: str, default: str | None) -> ZoneInfo | None:
    value = env.get(name, default)
    if value is None:
        return None
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise SettingsError(f"{name}={value!r} is not an IANA time zone") from exc


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise SettingsError(f"{name}={raw!r} is not a whole number") from exc
    if value < minimum:
        raise SettingsError(f"{name}={raw!r} must be at least {minimum}")
    return value


def _bounded(env: Mapping[str, str], name: str, default: float, low: float, high: float, what: str) -> float:
    """A number from ``low`` to ``high``; ``what`` says what it is, for the error."""
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise SettingsError(f"{name}={raw!r} is not a number ({what})") from exc
    if not low <= value <= high:
        raise SettingsError(f"{name}={raw!r} must be {what}")
    return value


def _share(env: Mapping[str, str], name: str, default: float) -> float:
    return _bounded(env, name, default, 0, 1, "a share between 0 and 1, e.g. 0.2")


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise SettingsError(f"{name}={raw!r} is not a yes/no value (true/false, 1/0)")


def _days(env: Mapping[str, str], name: str, default: tuple[int, ...]) -> tuple[int, ...]:
    raw = env.get(name)
    if raw is None:
        return default
    try:
        days = tuple(int(part) for part in raw.split(",") if part.strip())
    except ValueError as exc:
        raise SettingsError(f"{name}={raw!r} must be comma-separated day counts, e.g. 3,7") from exc
    if any(d < 1 for d in days) or list(days) != sorted(set(days)):
        raise SettingsError(f"{name}={raw!r} must be increasing day counts of at least 1, e.g. 3,7")
    return days


def _quiet_hours(env: Mapping[str, str], name: str) -> tuple[time | None, time | None]:
    raw = env.get(name, "09:00-17:00")
    if raw.strip().lower() == "off":
        return None, None
    try:
        start_text, end_text = raw.split("-")
        start, end = time.fromisoformat(start_text.strip()), time.fromisoformat(end_text.strip())
    except ValueError as exc:
        raise SettingsError(f"{name}={raw!r} must look like 09:00-17:00 (or be off)") from exc
    if start >= end:
        raise SettingsError(f"{name}={raw!r}: the window must start before it ends")
    return start, end


def _clock(env: Mapping[str, str], name: str, default: time) -> time:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return time.fromisoformat(raw.strip())
    except ValueError as exc:
        raise SettingsError(f"{name}={raw!r} must be a time of day like 10:00") from exc


def _dev_outbox(env: Mapping[str, str]) -> Path | None:
    raw = env.get("AUXENG_DEV_OUTBOX", "").strip()
    if raw.lower() in FALSE_WORDS:
        return None
    if raw.lower() in TRUE_WORDS:
        home = env.get("AIRFLOW_HOME") or str(Path(env.get("HOME") or Path.home()) / "airflow")
        return Path(home) / "dev-outbox"
    return Path(raw)


def _optional_path(env: Mapping[str, str], name: str) -> Path | None:
    raw = env.get(name, "").strip()
    return Path(raw) if raw else None


COPYABLE_RULES = frozenset(FlagRule) - {FlagRule.ENGINEER_LOAD}


def _rules(env: Mapping[str, str], name: str, default: frozenset[str]) -> frozenset[str]:
    raw = env.get(name)
    if raw is None:
        return default
    if raw.strip().lower() in FALSE_WORDS | {"none"}:
        return frozenset()
    rules = frozenset(part.strip() for part in raw.split(",") if part.strip())
    unknown = sorted(rules - COPYABLE_RULES)
    if unknown:
        raise SettingsError(
            f"{name}={raw!r}: unknown rule(s) {', '.join(unknown)}; "
            f"choose from {', '.join(sorted(COPYABLE_RULES))} (or none)"
        )
    return rules


# A Slack conversation to post ops alerts to: a channel id (C…, G… for a private one) or #name.
# A pattern, compiled (and cached by ``re``) on first use, not when DAG files import this module.
_OPS_CHANNEL = r"[CG][A-Z0-9]{6,20}|#[a-z0-9][a-z0-9._-]{0,79}"


def _ops_channel(env: Mapping[str, str], name: str) -> str | None:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return None
    value = raw.strip()
    if not re.fullmatch(_OPS_CHANNEL, value):
        raise SettingsError(
            f"{name}={raw!r} must be a Slack channel id (C0123ABCD, G… for a private channel) "
            f"or a lowercase #channel-name"
        )
    return value


def _weights(env: Mapping[str, str], name: str) -> tuple[tuple[str, float], ...]:
    """``component=weight`` pairs, comma-separated (e.g. ``maintainability=30,help_asks=10``);
    components not named keep their default weight."""
    raw = env.get(name, "").strip()
    if not raw:
        return ()
    known = [component.value for component in IndependenceComponent]
    weights: dict[str, float] = {}
    for part in raw.split(","):
        component, sep, value = (piece.strip() for piece in part.partition("="))
        if not sep or component not in known:
            raise SettingsError(
                f"{name}: {part.strip()!r} is not component=weight with a component among {', '.join(known)}"
            )
        if component in weights:
            raise SettingsError(f"{name}: {component!r} is given twice")
        try:
            weight = float(value)
        except ValueError as exc:
            raise SettingsError(f"{name}: {part.strip()!r}: the weight is not a number") from exc
        if not math.isfinite(weight) or weight < 0:
            raise SettingsError(f"{name}: {part.strip()!r}: a weight is a number of at least 0")
        weights[component] = weight
    if len(weights) == len(known) and not any(weights.values()):
        raise SettingsError(f"{name}: at least one weight must be above 0")
    return tuple(weights.items())


def _threshold(env: Mapping[str, str], name: str, default: float) -> float:
    return _bounded(env, name, default, 0, 100, "a score from 0 to 100")


def _emails(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    raw = env.get(name)
    if raw is None:
        return ()
    addresses: list[str] = []
    for part in raw.split(","):
        address = part.strip()
        if not address:
            continue
        local, at, domain = address.rpartition("@")
        if not (local and at and domain) or any(c.isspace() or c in "<>,;" for c in address):
            raise SettingsError(
                f"{name}={raw!r}: {address!r} is not an email address "
                f"(comma-separated plain addresses, e.g. ops@example.com,oncall@example.com)"
            )
        if address.lower() not in {a.lower() for a in addresses}:
            addresses.append(address)
    return tuple(addresses)


class _ReadLog(Mapping[str, str]):
    """A view of an environment that notes each name read and the value it had (None: unset)."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env
        self.reads: dict[str, str | None] = {}
        self.complete = True  # False once iterated: every name then counts, so nothing is cached

    def __getitem__(self, name: str) -> str:
        self.reads[name] = self._env.get(name)
        return self._env[name]

    def get(self, name: str, default: str | None = None) -> str | None:  # type: ignore[override]
        value = self.reads[name] = self._env.get(name)
        return default if value is None else value

    def __iter__(self):
        self.complete = False
        return iter(self._env)

    def __len__(self) -> int:
        return len(self._env)


_cached: tuple[tuple[tuple[str, str | None], ...], Settings] | None = None


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """The settings of ``environ`` (default ``os.environ``).

    For ``os.environ`` they are built once per process and rebuilt whenever one of the
    variables they were built from changes (DAG files call this on every parse).
    """
    global _cached
    if environ is not None:
        return _build_settings(environ)
    cached = _cached
    if cached is not None and all(os.environ.get(name) == value for name, value in cached[0]):
        return cached[1]
    log = _ReadLog(os.environ)
    settings = _build_settings(log)
    if log.complete:
        _cached = (tuple(log.reads.items()), settings)
    return settings


def _build_settings(env: Mapping[str, str]) -> Settings:
    timezone = _zone(env, "AUXENG_TIMEZONE", "UTC")
    assert timezone is not None
    registry = env.get("AUXENG_REGISTRY_PATH") or str(include_dir(env) / "registry" / "engagements.yaml")
    public_url = env.get("AUXENG_PUBLIC_URL", "http://localhost:8080/auxeng").rstrip("/")
    if not public_url.startswith(("http://", "https://")):
        raise SettingsError(f"AUXENG_PUBLIC_URL={public_url!r} must start with http:// or https://")
    quiet_start, quiet_end = _quiet_hours(env, "AUXENG_QUIET_HOURS")
    settings = Settings(
        registry_path=Path(registry),
        timezone=timezone,
        db_conn_id=env.get("AUXENG_DB_CONN_ID", "auxeng_db"),
        public_url=public_url,
        smtp_conn_id=env.get("AUXENG_SMTP_CONN_ID", "smtp_default"),
        slack_api_conn_id=env.get("AUXENG_SLACK_API_CONN_ID", "slack_api_default"),
        slack_webhook_conn_id=env.get("AUXENG_SLACK_WEBHOOK_CONN_ID", "slack_default"),
        email_from=env.get("AUXENG_EMAIL_FROM") or None,
        dev_outbox=_dev_outbox(env),
        slack_lookup_by_email=_bool(env, "AUXENG_SLACK_LOOKUP_BY_EMAIL", True),
        recipient_timezone=_zone(env, "AUXENG_RECIPIENT_TIMEZONE", None),
        quiet_start=quiet_start,
        quiet_end=quiet_end,
        reminder_days=_days(env, "AUXENG_REMINDER_DAYS", (3, 7)),
        fatigue_days=_int(env, "AUXENG_SURVEY_FATIGUE_DAYS", 30),
        survey_window_days=_int(env, "AUXENG_SURVEY_WINDOW_DAYS", 21, minimum=1),
        survey_max_age_days=_int(env, "AUXENG_SURVEY_MAX_AGE_DAYS", 30),
        handover_max_age_days=_int(env, "AUXENG_HANDOVER_MAX_AGE_DAYS", 30),
        outbox_lease_seconds=_int(env, "AUXENG_OUTBOX_LEASE_SECONDS", 600),
        outbox_max_attempts=_int(env, "AUXENG_OUTBOX_MAX_ATTEMPTS", 5, minimum=1),
        outbox_batch_size=_int(env, "AUXENG_OUTBOX_BATCH_SIZE", 200, minimum=1),
        checkin_offset_months=_int(env, "AUXENG_CHECKIN_OFFSET_MONTHS", 3, minimum=1),
        checkin_invite_days_before=_int(env, "AUXENG_CHECKIN_INVITE_DAYS_BEFORE", 7),
        checkin_window_days=_int(env, "AUXENG_CHECKIN_WINDOW_DAYS", 14, minimum=1),
        checkin_max_age_days=_int(env, "AUXENG_CHECKIN_MAX_AGE_DAYS", 30),
        checkin_meeting_time=_clock(env, "AUXENG_CHECKIN_MEETING_TIME", time(10)),
        checkin_meeting_minutes=_int(env, "AUXENG_CHECKIN_MEETING_MINUTES", 30, minimum=5),
        follow_up_months=_int(env, "AUXENG_FOLLOW_UP_MONTHS", 6, minimum=1),
        nps_min_responses=_int(env, "AUXENG_NPS_MIN_RESPONSES", 3, minimum=1),
        digest_max_age_days=_int(env, "AUXENG_DIGEST_MAX_AGE_DAYS", 6),
        help_requests_csv=_optional_path(env, "AUXENG_HELP_REQUESTS_CSV"),
        help_lookback_days=_int(env, "AUXENG_HELP_LOOKBACK_DAYS", 90, minimum=1),
        help_window_days=_int(env, "AUXENG_HELP_WINDOW_DAYS", 30, minimum=1),
        help_requests_min=_int(env, "AUXENG_HELP_REQUESTS_MIN", 2, minimum=1),
        help_requests_critical=_int(env, "AUXENG_HELP_REQUESTS_CRITICAL", 5, minimum=1),
        flag_comfort_max=_int(env, "AUXENG_FLAG_COMFORT_MAX", 2, minimum=1),
        flag_memory_days=_int(env, "AUXENG_FLAG_MEMORY_DAYS", 90, minimum=1),
        repeat_months=_int(env, "AUXENG_REPEAT_MONTHS", 6, minimum=1),
        load_max_engagements=_int(env, "AUXENG_LOAD_MAX_ENGAGEMENTS", 2, minimum=1),
        load_gap_days=_int(env, "AUXENG_LOAD_GAP_DAYS", 14),
        detractor_cluster_min=_int(env, "AUXENG_DETRACTOR_CLUSTER_MIN", 2, minimum=1),
        flag_independence_below=_int(env, "AUXENG_FLAG_INDEPENDENCE_BELOW", 50),
        flag_independence_critical=_int(env, "AUXENG_FLAG_INDEPENDENCE_CRITICAL", 30),
        flag_independence_drop=_int(env, "AUXENG_FLAG_INDEPENDENCE_DROP", 15, minimum=1),
        flag_reannounce_days=_int(env, "AUXENG_FLAG_REANNOUNCE_DAYS", 7, minimum=1),
        flag_copy_host_manager=_rules(
            env, "AUXENG_FLAG_COPY_HOST_MANAGER", frozenset({FlagRule.HELP_REQUESTS, FlagRule.CHECKIN})
        ),
        ops_slack_channel=_ops_channel(env, "AUXENG_OPS_SLACK_CHANNEL"),
        ops_emails=_emails(env, "AUXENG_OPS_EMAILS"),
        registry_removal_guard_share=_share(env, "AUXENG_REGISTRY_REMOVAL_GUARD_SHARE", 0.2),
        registry_removal_guard_min=_int(env, "AUXENG_REGISTRY_REMOVAL_GUARD_MIN", 3, minimum=1),
        independence_weights=_weights(env, "AUXENG_INDEPENDENCE_WEIGHTS"),
        independence_threshold=_threshold(env, "AUXENG_INDEPENDENCE_THRESHOLD", 70.0),
        independence_window_weeks=_int(env, "AUXENG_INDEPENDENCE_WINDOW_WEEKS", 52, minimum=1),
    )
    if settings.help_requests_critical < settings.help_requests_min:
        raise SettingsError(
            f"AUXENG_HELP_REQUESTS_CRITICAL={settings.help_requests_critical} must be at least "
            f"AUXENG_HELP_REQUESTS_MIN={settings.help_requests_min}"
        )
    if not settings.flag_independence_critical <= settings.flag_independence_below <= 100:
        raise SettingsError(
            f"AUXENG_FLAG_INDEPENDENCE_CRITICAL={settings.flag_independence_critical} must be at most "
            f"AUXENG_FLAG_INDEPENDENCE_BELOW={settings.flag_independence_below}, itself at most 100"
        )
    return settings
