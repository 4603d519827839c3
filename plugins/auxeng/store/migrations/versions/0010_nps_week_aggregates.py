"""stored weekly NPS counts, and the triggers that mark the days whose answers changed

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06

The weekly NPS stores each week's counts (auxeng_nps_week_aggregates, _week_counts,
_late_answers) and computes only the weeks it has not stored. Every insert, delete and
relevant update of an answer or an invitation marks the UTC days it can touch in
auxeng_nps_dirty_days (a trigger, so no writer can forget it); the next run drops the
stored weeks of those days. Marked days (UTC):

* an answer: the day of its ``submitted_at`` (before and after an update that changes
  ``submitted_at``, ``survey``, ``engagement_key``, ``nps`` or ``maintainability``);
* an invitation: its ``invited_on`` (when inserted, deleted, or its ``survey``,
  ``engagement_key``, ``status`` or ``invited_on`` change) and, when it has an
  ``answered_at``, the later of that day and ``invited_on`` (the week whose counts hold the
  answer: the invitation week when answered by its end, else the week it was answered in),
  before and after the change;
* every answer and invitation of an engagement inserted, deleted or given another host team,
  and of the engagements hosted by a team inserted, deleted or given another org: the
  snapshots count them per host team and org (a new engagement has none yet).

PostgreSQL: statement-level triggers over the transition tables (a COPY of a million rows
marks each day once); SQLite: row-level triggers. Both bump ``marks`` with an upsert.
"""

# ruff: noqa: S608 (the trigger SQL is built from constants of this module only)
import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

MARK = "ON CONFLICT (day) DO UPDATE SET marks = auxeng_nps_dirty_days.marks + excluded.marks"

RESPONSE_CHANGED = (
    "OLD.submitted_at IS NOT NEW.submitted_at OR OLD.survey IS NOT NEW.survey"
    " OR OLD.engagement_key IS NOT NEW.engagement_key OR OLD.nps IS NOT NEW.nps"
    " OR OLD.maintainability IS NOT NEW.maintainability"
)
INVITATION_MOVED = (
    "OLD.survey IS NOT NEW.survey OR OLD.engagement_key IS NOT NEW.engagement_key"
    " OR OLD.status IS NOT NEW.status OR OLD.invited_on IS NOT NEW.invited_on"
)


def _sqlite_answer_day(row: str) -> str:
    return f"CASE WHEN {row}.answered_at IS NOT NULL THEN max(date({row}.answered_at), {row}.invited_on) END"


def _sqlite_mark(days: list[str]) -> str:
    """One single-row upsert per day expression (cheaper than one over their UNION)."""
    return " ".join(
        f"INSERT INTO auxeng_nps_dirty_days (day, marks) SELECT {day}, 1 WHERE {day} IS NOT NULL {MARK};"
        for day in days
    )


def _sqlite_mark_engagements(engagements: str) -> str:
    """Mark the days of every answer and invitation of the engagements whose keys ``engagements`` selects."""
    return _sqlite_mark_select(
        f"SELECT date(submitted_at) AS day FROM auxeng_survey_responses WHERE engagement_key IN ({engagements})"
        f" UNION SELECT invited_on FROM auxeng_survey_invitations WHERE engagement_key IN ({engagements})"
        f" UNION SELECT {_sqlite_answer_day('auxeng_survey_invitations')} FROM auxeng_survey_invitations"
        f" WHERE engagement_key IN ({engagements})"
    )


def _sqlite_mark_select(days: str) -> str:
    return f"INSERT INTO auxeng_nps_dirty_days (day, marks) SELECT day, 1 FROM ({days}) WHERE day IS NOT NULL {MARK};"


def _hosted_by(*teams: str) -> str:
    return f"SELECT key FROM auxeng_engagements WHERE host_team_key IN ({', '.join(teams)})"


SQLITE_TRIGGERS = {
    "auxeng_nps_mark_response_insert": (
        "AFTER INSERT ON auxeng_survey_responses",
        _sqlite_mark(["date(NEW.submitted_at)"]),
    ),
    "auxeng_nps_mark_response_delete": (
        "AFTER DELETE ON auxeng_survey_responses",
        _sqlite_mark(["date(OLD.submitted_at)"]),
    ),
    "auxeng_nps_mark_response_update": (
        "AFTER UPDATE OF submitted_at, survey, engagement_key, nps, maintainability"
        f" ON auxeng_survey_responses WHEN {RESPONSE_CHANGED}",
        _sqlite_mark(["date(OLD.submitted_at)", "date(NEW.submitted_at)"]),
    ),
    "auxeng_nps_mark_invitation_insert": (
        "AFTER INSERT ON auxeng_survey_invitations",
        _sqlite_mark(["NEW.invited_on", _sqlite_answer_day("NEW")]),
    ),
    "auxeng_nps_mark_invitation_delete": (
        "AFTER DELETE ON auxeng_survey_invitations",
        _sqlite_mark(["OLD.invited_on", _sqlite_answer_day("OLD")]),
    ),
    "auxeng_nps_mark_invitation_update": (
        "AFTER UPDATE OF survey, engagement_key, status, invited_on, answered_at ON auxeng_survey_invitations"
        f" WHEN {INVITATION_MOVED} OR OLD.answered_at IS NOT NEW.answered_at",
        _sqlite_mark(
            [
                f"CASE WHEN {INVITATION_MOVED} THEN OLD.invited_on END",
                f"CASE WHEN {INVITATION_MOVED} THEN NEW.invited_on END",
                _sqlite_answer_day("OLD"),
                _sqlite_answer_day("NEW"),
            ]
        ),
    ),
    "auxeng_nps_mark_engagement_insert": (
        "AFTER INSERT ON auxeng_engagements",
        _sqlite_mark_engagements("NEW.key"),
    ),
    "auxeng_nps_mark_engagement_delete": (
        "AFTER DELETE ON auxeng_engagements",
        _sqlite_mark_engagements("OLD.key"),
    ),
    "auxeng_nps_mark_engagement_update": (
        "AFTER UPDATE OF key, host_team_key ON auxeng_engagements"
        " WHEN OLD.key IS NOT NEW.key OR OLD.host_team_key IS NOT NEW.host_team_key",
        _sqlite_mark_engagements("OLD.key, NEW.key"),
    ),
    "auxeng_nps_mark_team_insert": (
        "AFTER INSERT ON auxeng_teams",
        _sqlite_mark_engagements(_hosted_by("NEW.key")),
    ),
    "auxeng_nps_mark_team_delete": (
        "AFTER DELETE ON auxeng_teams",
        _sqlite_mark_engagements(_hosted_by("OLD.key")),
    ),
    "auxeng_nps_mark_team_update": (
        "AFTER UPDATE OF key, org ON auxeng_teams WHEN OLD.key IS NOT NEW.key OR OLD.org IS NOT NEW.org",
        _sqlite_mark_engagements(_hosted_by("OLD.key", "NEW.key")),
    ),
}


def _pg_answer_day(row: str) -> str:
    return (
        f"CASE WHEN {row}.answered_at IS NOT NULL"
        f" THEN greatest(({row}.answered_at AT TIME ZONE 'UTC')::date, {row}.invited_on) END"
    )


def _pg_mark(days: str) -> str:
    """Mark the ``day`` column of ``days`` (one row per change), each day once."""
    return (
        "INSERT INTO auxeng_nps_dirty_days (day, marks)"
        f" SELECT day, count(*) FROM ({days}) AS changed WHERE day IS NOT NULL GROUP BY day {MARK};"
    )


def _pg_function(name: str, inserted: str, deleted: str, updated: str) -> str:
    return f"""
        CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'INSERT' THEN
                {_pg_mark(inserted)}
            ELSIF TG_OP = 'DELETE' THEN
                {_pg_mark(deleted)}
            ELSE
                {_pg_mark(updated)}
            END IF;
            RETURN NULL;
        END
        $$
    """


PG_RESPONSE_CHANGED = (
    "(o.submitted_at, o.survey, o.engagement_key, o.nps, o.maintainability)"
    " IS DISTINCT FROM (n.submitted_at, n.survey, n.engagement_key, n.nps, n.maintainability)"
)
PG_INVITATION_MOVED = "(o.survey, o.engagement_key, o.status, o.invited_on) IS DISTINCT FROM (n.survey, n.engagement_key, n.status, n.invited_on)"
PG_FUNCTIONS = {
    "auxeng_nps_mark_responses": (
        "auxeng_survey_responses",
        _pg_function(
            "auxeng_nps_mark_responses",
            "SELECT (submitted_at AT TIME ZONE 'UTC')::date AS day FROM new_rows",
            "SELECT (submitted_at AT TIME ZONE 'UTC')::date AS day FROM old_rows",
            "SELECT d.day FROM old_rows o JOIN new_rows n ON n.id = o.id CROSS JOIN LATERAL (VALUES"
            " ((o.submitted_at AT TIME ZONE 'UTC')::date), ((n.submitted_at AT TIME ZONE 'UTC')::date)) AS d(day)"
            f" WHERE {PG_RESPONSE_CHANGED}",
        ),
    ),
    "auxeng_nps_mark_invitations": (
        "auxeng_survey_invitations",
        _pg_function(
            "auxeng_nps_mark_invitations",
            f"SELECT d.day FROM new_rows n CROSS JOIN LATERAL (VALUES (n.invited_on), ({_pg_answer_day('n')})) AS d(day)",
            f"SELECT d.day FROM old_rows o CROSS JOIN LATERAL (VALUES (o.invited_on), ({_pg_answer_day('o')})) AS d(day)",
            "SELECT d.day FROM old_rows o JOIN new_rows n ON n.id = o.id CROSS JOIN LATERAL (VALUES"
            f" (CASE WHEN {PG_INVITATION_MOVED} THEN o.invited_on END),"
            f" (CASE WHEN {PG_INVITATION_MOVED} THEN n.invited_on END),"
            f" ({_pg_answer_day('o')}), ({_pg_answer_day('n')})) AS d(day)"
            f" WHERE {PG_INVITATION_MOVED} OR o.answered_at IS DISTINCT FROM n.answered_at",
        ),
    ),
}


def _pg_engagement_days(engagements: str) -> str:
    """The days of every answer and invitation of the engagements whose keys ``engagements`` selects."""
    return (
        "SELECT (r.submitted_at AT TIME ZONE 'UTC')::date AS day FROM auxeng_survey_responses r"
        f" WHERE r.engagement_key IN ({engagements})"
        " UNION ALL SELECT d.day FROM auxeng_survey_invitations i CROSS JOIN LATERAL"
        f" (VALUES (i.invited_on), ({_pg_answer_day('i')})) AS d(day) WHERE i.engagement_key IN ({engagements})"
    )


PG_FUNCTIONS |= {
    "auxeng_nps_mark_engagements": (
        "auxeng_engagements",
        _pg_function(
            "auxeng_nps_mark_engagements",
            _pg_engagement_days("SELECT key FROM new_rows"),
            _pg_engagement_days("SELECT key FROM old_rows"),
            _pg_engagement_days(
                "SELECT key FROM ((SELECT key, host_team_key FROM old_rows EXCEPT SELECT key, host_team_key FROM new_rows)"
                " UNION (SELECT key, host_team_key FROM new_rows EXCEPT SELECT key, host_team_key FROM old_rows)) AS moved"
            ),
        ),
    ),
    "auxeng_nps_mark_teams": (
        "auxeng_teams",
        _pg_function(
            "auxeng_nps_mark_teams",
            _pg_engagement_days(_hosted_by("SELECT key FROM new_rows")),
            _pg_engagement_days(_hosted_by("SELECT key FROM old_rows")),
            _pg_engagement_days(
                _hosted_by(
                    "SELECT key FROM ((SELECT key, org FROM old_rows EXCEPT SELECT key, org FROM new_rows)"
                    " UNION (SELECT key, org FROM new_rows EXCEPT SELECT key, org FROM old_rows)) AS moved"
                )
            ),
        ),
    ),
}
PG_EVENTS = {
    "insert": "INSERT ON {table} REFERENCING NEW TABLE AS new_rows",
    "update": "UPDATE ON {table} REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
    "delete": "DELETE ON {table} REFERENCING OLD TABLE AS old_rows",
}


def upgrade() -> None:
    op.create_table(
        "auxeng_nps_week_aggregates",
        sa.Column("week", sa.Date(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("week", name=op.f("pk_auxeng_nps_week_aggregates")),
    )
    op.create_table(
        "auxeng_nps_week_counts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("week", sa.Date(), nullable=False),
        sa.Column("segment", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("promoters", sa.Integer(), nullable=False),
        sa.Column("passives", sa.Integer(), nullable=False),
        sa.Column("detractors", sa.Integer(), nullable=False),
        sa.Column("maintainability_total", sa.Integer(), nullable=False),
        sa.Column("maintainability_answers", sa.Integer(), nullable=False),
        sa.Column("invited", sa.Integer(), nullable=False),
        sa.Column("answered", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["week"],
            ["auxeng_nps_week_aggregates.week"],
            name=op.f("fk_auxeng_nps_week_counts_week_auxeng_nps_week_aggregates"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auxeng_nps_week_counts")),
        sa.UniqueConstraint("week", "segment", "key", name=op.f("uq_auxeng_nps_week_counts_week")),
    )
    op.create_table(
        "auxeng_nps_late_answers",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("week", sa.Date(), nullable=False),
        sa.Column("invite_week", sa.Date(), nullable=False),
        sa.Column("segment", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("answered", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["week"],
            ["auxeng_nps_week_aggregates.week"],
            name=op.f("fk_auxeng_nps_late_answers_week_auxeng_nps_week_aggregates"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auxeng_nps_late_answers")),
        sa.UniqueConstraint(
            "week", "invite_week", "segment", "key", name=op.f("uq_auxeng_nps_late_answers_week")
        ),
    )
    op.create_table(
        "auxeng_nps_dirty_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("marks", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_auxeng_nps_dirty_days")),
    )
    op.create_index(
        "ix_auxeng_survey_invitations_answered_at",
        "auxeng_survey_invitations",
        ["answered_at", "survey", "status", "engagement_key", "invited_on"],
    )
    if op.get_bind().dialect.name == "postgresql":
        for function, (table, body) in PG_FUNCTIONS.items():
            op.execute(body)
            for event, clause in PG_EVENTS.items():
                op.execute(
                    f"CREATE TRIGGER {function}_{event} AFTER {clause.format(table=table)}"
                    f" FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
                )
    else:
        for name, (when, body) in SQLITE_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {when} BEGIN {body} END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for function, (table, _body) in PG_FUNCTIONS.items():
            for event in PG_EVENTS:
                op.execute(f"DROP TRIGGER {function}_{event} ON {table}")
            op.execute(f"DROP FUNCTION {function}()")
    else:
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER {name}")
    op.drop_index("ix_auxeng_survey_invitations_answered_at", table_name="auxeng_survey_invitations")
    op.drop_table("auxeng_nps_dirty_days")
    op.drop_table("auxeng_nps_late_answers")
    op.drop_table("auxeng_nps_week_counts")
    op.drop_table("auxeng_nps_week_aggregates")
