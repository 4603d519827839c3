"""Properties of the survey-response CSV import (:func:`auxeng.surveys.responses.import_responses_csv`,
the ``import-responses`` command), with Hypothesis, on SQLite and PostgreSQL.

- Any bytes as the file (and any text as the CSV) never raise: the import documents no error
  type for bad content, it returns an :class:`~auxeng.surveys.responses.ImportReport` whose
  ``errors`` say what was wrong ("answers.csv: the file is …", "answers.csv:N: …"); the store
  takes whatever it is given (no NUL reaches PostgreSQL), and importing again creates nothing.
- Valid rows survive any number of bad neighbours: out-of-range, future and bad ``submitted_at``,
  wrong value counts, bad scores, unknown surveys and choices, unknown engagements and people,
  the wrong side for the survey, NUL and other control characters, over-long comments, text
  after a closing quote, a second answer for the same person; at the end of the file a quote
  never closed or a field over the CSV module's limit. Each valid row is stored exactly once,
  each bad row is one error naming the line it starts on, and importing the same
  file again changes nothing.
- A byte that is not UTF-8 anywhere in the file is one error naming its line and byte, and
  nothing is stored (the documented rule: the whole file is refused, not the row).

Every example starts by deleting the responses and invitations (the demo registry, which the
import only reads, stays), so the function-scoped store fixture is safe to share between examples.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path

from hypothesis import example, given, note
from hypothesis import strategies as st
from sqlalchemy import delete, select

from auxeng.messaging.tokens import response_ref
from auxeng.registry.parse import load_registry_file
from auxeng.settings import load_settings
from auxeng.store.db import session_scope
from auxeng.store.models import SurveyInvitationRow, SurveyResponseRow
from auxeng.surveys.responses import CSV_COLUMNS, ImportReport, import_responses_csv
from auxeng.text import CONTROL, clean_text
from tests.conftest import DEMO_REGISTRY
from tests.support.csv_builder import CONTROL_CHARACTERS, CsvBuilder, free_text, store_properties
from tests.web.conftest import KEY, NOW, registry_store  # noqa: F401 (fixture)

SETTINGS = load_settings({})  # the program's time zone: UTC
SURVEY_FOR = {"host": "post_engagement", "auxeng": "retro"}
_REGISTRY = load_registry_file(DEMO_REGISTRY)
MEMBERS = sorted(
    (engagement.key, member.email, member.side)
    for engagement in _REGISTRY.engagements.values()
    for member in engagement.members
)
ANONYMOUS = {key for key, engagement in _REGISTRY.engagements.items() if engagement.anonymous}
CSV_LIMIT = 131_072
ROW_ERROR = re.compile(r"(?:answers\.csv|<text>):(\d+): ")
ERROR = re.compile(r"(?:answers\.csv|<text>)(?::\d+)?: ")
"""Every error names the file, and the line for a row or the header (``csvinput.located``)."""


def fresh(engine) -> None:
    with session_scope(engine) as session:
        session.execute(delete(SurveyResponseRow))
        session.execute(delete(SurveyInvitationRow))


def run_import(engine, source: Path | str) -> ImportReport:
    return import_responses_csv(engine, source, now=NOW, key=KEY, settings=SETTINGS)


def responses(engine) -> list[SurveyResponseRow]:
    with session_scope(engine) as session:
        return list(session.scalars(select(SurveyResponseRow).order_by(SurveyResponseRow.id)))


def invitations(engine) -> list[SurveyInvitationRow]:
    with session_scope(engine) as session:
        return list(session.scalars(select(SurveyInvitationRow).order_by(SurveyInvitationRow.id)))


def snapshot(engine) -> tuple[list, list]:
    return (
        [
            (r.id, r.response_ref, r.nps, r.answers, r.submitted_at, r.updated_at, r.source)
            for r in responses(engine)
        ],
        [(i.id, i.answered_at, i.updated_at, i.closes_at, i.status) for i in invitations(engine)],
    )


def assert_store_is_sound(engine, report: ImportReport) -> None:
    """What any import may leave: one answered invitation per created response, clean text."""
    stored, invited = responses(engine), invitations(engine)
    assert len(stored) == len(invited) == report.created
    refs = {response_ref(invitation.id, key=KEY) for invitation in invited}
    assert {response.response_ref for response in stored} == refs
    for response in stored:
        assert response.source == "csv"
        assert response.nps is not None and 0 <= response.nps <= 10
        assert not [v for v in response.answers.values() if isinstance(v, str) and CONTROL.search(v)]
        assert datetime(2000, 1, 1, tzinfo=UTC) <= response.submitted_at <= NOW
    assert all(invitation.answered_at is not None for invitation in invited)


# --- arbitrary bytes and text -----------------------------------------------------------------------

HEADER = ",".join(CSV_COLUMNS)
HEADERS = ["", HEADER + "\n", ",".join(CSV_COLUMNS[:-1]) + "\r\n", "engagement,email,score\n"]
TOKEN_ROWS = st.lists(
    st.tuples(
        st.sampled_from([MEMBERS[0], MEMBERS[-1], ("ENG-1999-001", "x@example.com", "host")]),
        st.sampled_from(["post_engagement", "retro", "checkin", "", "RETRO"]),
        st.sampled_from(["9", "0", "11", "-1", "ten", "", "\x00", "١"]),
        free_text(max_size=20),
        st.sampled_from(["yes", "no", "Partly", "maybe", ""]),
        st.sampled_from(
            ["", "2026-11-20", "2026-11-20T14:03", "0001-01-01T00:30:00+01:00", "2026-11-28", "x"]
        ),
    ).map(lambda r: ",".join([r[0][0], r[0][1], r[1], r[2], f'"{r[3]}"', "", r[4], r[4], r[5]]) + "\n"),
    max_size=5,
).map("".join)


@store_properties(40)
@given(
    header=st.sampled_from(HEADERS),
    body=st.one_of(
        st.binary(max_size=400),
        st.text(max_size=300).map(str.encode),
        TOKEN_ROWS.map(str.encode),
    ),
)
@example(header=HEADER + "\n", body=f"{MEMBERS[0][0]}\x00,{MEMBERS[0][1]},x\x00,9,,,yes,yes,\n".encode())
@example(header="", body=b"\xff\xfee\x00n\x00g\x00")
def test_arbitrary_bytes_never_raise(registry_store, tmp_path, header, body):  # noqa: F811
    fresh(registry_store)
    path = tmp_path / "answers.csv"
    path.write_bytes(header.encode() + body)
    report = run_import(registry_store, path)
    assert all(ERROR.match(error) for error in report.errors), report.errors
    assert_store_is_sound(registry_store, report)
    again = run_import(registry_store, path)
    assert (again.created, again.updated) == (0, 0)


@store_properties(40)
@given(header=st.sampled_from(HEADERS[1:]), body=st.one_of(st.text(max_size=300), TOKEN_ROWS))
def test_arbitrary_text_never_raises(registry_store, header, body):  # noqa: F811
    fresh(registry_store)
    report = run_import(registry_store, header + body)
    assert all(ERROR.match(error) for error in report.errors), report.errors
    assert_store_is_sound(registry_store, report)


# --- valid rows among bad neighbours -----------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    engagement: str
    email: str
    survey: str
    values: dict[str, str]  # column -> text as written
    nps: int
    answers: dict[str, str]  # as stored (the NPS aside)
    submitted_at: datetime  # as stored


def _case(text: str) -> st.SearchStrategy[str]:
    return st.sampled_from([text, text.upper(), text.title(), f" {text} "])


@st.composite
def valid_answers(draw, identity: tuple[str, str, str]) -> Answer:
    engagement, email, side = identity
    survey = SURVEY_FOR[side]
    nps = draw(st.integers(0, 10))
    goals = {
        name: draw(st.sampled_from(["yes", "partly", "no"])) for name in ("business_goals", "technical_goals")
    }
    comments = {name: draw(st.one_of(st.just(""), free_text())) for name in ("went_well", "to_change")}
    style = draw(st.sampled_from(["none", "date", "naive", "offset"]))
    day = draw(st.dates(date(2000, 1, 2), NOW.date() - timedelta(days=2)))
    if style == "none":
        written, submitted_at = "", NOW
    elif style == "date":
        written, submitted_at = day.isoformat(), datetime.combine(day, time(), UTC)
    else:
        moment = datetime.combine(day, draw(st.times()).replace(microsecond=0))
        zone = UTC if style == "naive" else timezone(timedelta(minutes=draw(st.integers(-14 * 60, 14 * 60))))
        written = moment.isoformat() if style == "naive" else moment.replace(tzinfo=zone).isoformat()
        submitted_at = moment.replace(tzinfo=zone).astimezone(UTC)
    if engagement in ANONYMOUS:
        submitted_at = datetime.combine(submitted_at.date(), time(), UTC)
    values = {
        "engagement": draw(st.sampled_from([engagement, f" {engagement} ", f"{engagement}\x00"])),
        "email": draw(_case(email)),
        "survey": draw(_case(survey)),
        "nps": draw(st.sampled_from([str(nps), f" {nps} ", f"0{nps}", f"+{nps}"])),
        **{name: draw(_case(value)) for name, value in goals.items()},
        **comments,
        "submitted_at": written,
    }
    answers = {**goals, **{name: clean_text(text) for name, text in comments.items() if clean_text(text)}}
    return Answer(engagement, email, survey, values, nps, answers, submitted_at)


def bad_answers(identities: list[tuple[str, str, str]]) -> st.SearchStrategy[dict]:
    """A row that must be refused: {column: text} (a valid row with one thing wrong), {"raw": text}
    (text after a closing quote) or {"width": n} (values missing or extra)."""

    @st.composite
    def changed(draw, **choices) -> dict:
        engagement, email, side = draw(st.sampled_from(identities))
        row = {
            "engagement": engagement,
            "email": email,
            "survey": SURVEY_FOR[side],
            "nps": "7",
            "went_well": "",
            "to_change": "",
            "business_goals": "yes",
            "technical_goals": "no",
            "submitted_at": "",
        }
        for name, strategy in choices.items():
            row[name] = draw(strategy)
        if "wrong_side" in row:
            row["survey"] = SURVEY_FOR["host" if side == "auxeng" else "auxeng"]
            del row["wrong_side"]
        return row

    control = st.sampled_from(CONTROL_CHARACTERS)
    return st.one_of(
        changed(
            submitted_at=st.sampled_from(
                ["0001-01-01T00:30:00+01:00", "0001-01-01", "1999-12-31", "2100-01-01T00:00", "9999-12-31"]
            )
        ),
        changed(
            submitted_at=st.sampled_from(["2026-11-28", "2026-11-27T11:00", "2026-11-27T12:00:01+01:00"])
        ),
        changed(
            submitted_at=st.sampled_from(
                ["yesterday", "2026-13-01", "20261120", "2026-11-20T25:00", "x" * 5000]
            )
        ),
        changed(
            nps=st.sampled_from(["11", "-1", "ten", "", " ", "9.5", "1e1", "1234567", "١١", "\x00", "9\x00"])
        ),
        changed(survey=st.sampled_from(["exit_interview", "checkin", "follow_up", "", "post-engagement"])),
        changed(business_goals=st.sampled_from(["maybe", "", "y", "\x00"])),
        changed(technical_goals=st.sampled_from(["sometimes", "", "NO!"])),
        changed(engagement=st.sampled_from(["ENG-1999-001", "", "   ", "x" * 5000, "ENG-1999\x00-001"])),
        changed(engagement=control.map(lambda c: f"ENG{c}")),
        changed(email=st.sampled_from(["nobody@example.com", "", "x" * 5000, "not an email"])),
        changed(wrong_side=st.just(True)),
        changed(went_well=st.just("x" * 5001), to_change=st.just("y" * 6000)),
        st.integers(1, 4).map(lambda n: {"width": -n}),
        st.integers(1, 3).map(lambda n: {"width": n}),
        st.just({"raw": f'{MEMBERS[0][0]},{MEMBERS[0][1]},"retro"x,7,,,yes,yes,'}),
    )


@st.composite
def answer_files(draw):
    identities = draw(st.lists(st.sampled_from(MEMBERS), unique=True, max_size=4))
    valid = [draw(valid_answers(identity)) for identity in identities]
    rows: list[tuple[str, object]] = [("valid", answer) for answer in valid]
    for _ in range(draw(st.integers(0, 8))):
        rows.insert(draw(st.integers(0, len(rows))), ("bad", draw(bad_answers(MEMBERS))))
    for _ in range(draw(st.integers(0, 2))):
        rows.insert(draw(st.integers(0, len(rows))), ("blank", None))
    for _ in range(draw(st.integers(0, 2))) if valid else ():
        first = draw(st.sampled_from([n for n, (kind, _row) in enumerate(rows) if kind == "valid"]))
        rows.insert(draw(st.integers(first + 1, len(rows))), ("again", rows[first][1]))
    ending = draw(st.sampled_from([None, None, "unclosed", "huge"]))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    columns = list(draw(st.permutations(CSV_COLUMNS)))
    return rows, ending, newline, columns


def write_answers(case) -> tuple[str, list[tuple[Answer, int]], set[int]]:
    """The CSV text, the valid answers with their start lines, and the bad rows' start lines."""
    rows, ending, newline, columns = case
    builder = CsvBuilder(newline)
    builder.row(columns)
    valid, bad = [], set()
    for kind, row in rows:
        if kind == "blank":
            builder.blank()
        elif kind in ("valid", "again"):
            number = builder.row([row.values[column] for column in columns]).line
            (valid.append((row, number)) if kind == "valid" else bad.add(number))
        elif "raw" in row:
            bad.add(builder.raw(row["raw"] + newline).line)
        elif "width" in row:
            values = [MEMBERS[0][0], MEMBERS[0][1], "retro", "7", "", "", "yes", "yes", ""]
            values = values[: row["width"]] if row["width"] < 0 else values + ["x"] * row["width"]
            bad.add(builder.row(values).line)
        else:
            bad.add(builder.row([row[column] for column in columns]).line)
    if ending == "unclosed":
        bad.add(builder.raw(f'{MEMBERS[0][0]},"never closed{newline}more{newline}').line)
    elif ending == "huge":
        bad.add(builder.row([MEMBERS[0][0], "y" * (CSV_LIMIT + 10)]).line)
    return builder.text(), valid, bad


@store_properties(30)
@given(case=answer_files(), as_file=st.booleans())
def test_valid_rows_survive_bad_neighbours_and_a_reimport_changes_nothing(
    registry_store,  # noqa: F811
    tmp_path,
    case,
    as_file,
):
    fresh(registry_store)
    text, valid, bad = write_answers(case)
    note(f"valid rows {[number for _answer, number in valid]}, bad rows {sorted(bad)}")
    source: Path | str = text
    if as_file:
        source = tmp_path / "answers.csv"
        source.write_text(text, encoding="utf-8", newline="")

    report = run_import(registry_store, source)

    numbers = [int(ROW_ERROR.match(error).group(1)) for error in report.errors]
    assert sorted(numbers) == sorted(bad), report.errors  # one error per bad row, naming its row
    assert report.skipped == []
    assert (report.created, report.updated, report.unchanged) == (len(valid), 0, 0)
    assert_store_is_sound(registry_store, report)
    by_identity = {(i.survey, i.engagement_key, i.email): i for i in invitations(registry_store)}
    by_ref = {r.response_ref: r for r in responses(registry_store)}
    for answer, number in valid:
        invitation = by_identity.get((answer.survey, answer.engagement, answer.email))
        assert invitation is not None, f"line {number} was not imported"
        response = by_ref[response_ref(invitation.id, key=KEY)]
        assert (response.nps, response.answers, response.submitted_at) == (
            answer.nps,
            answer.answers,
            answer.submitted_at,
        ), f"line {number}"
        anonymous = answer.engagement in ANONYMOUS
        assert response.respondent_email == (None if anonymous else answer.email)

    before = snapshot(registry_store)
    again = run_import(registry_store, source)
    assert (again.created, again.updated, again.unchanged) == (0, 0, len(valid))
    assert again.errors == report.errors
    assert snapshot(registry_store) == before


# --- not UTF-8 ---------------------------------------------------------------------------------------

NOT_UTF8 = st.one_of(st.integers(0x80, 0xC1), st.integers(0xF5, 0xFF)).map(lambda n: bytes([n]))


@store_properties(30)
@given(case=answer_files(), data=st.data())
def test_a_byte_that_is_not_utf8_is_one_error_naming_its_line_and_nothing_is_stored(
    registry_store,  # noqa: F811
    tmp_path,
    case,
    data,
):
    fresh(registry_store)
    text, _valid, _bad = write_answers(case)
    at = data.draw(st.integers(0, len(text)), label="character")
    head = text[:at].encode()
    raw = head + data.draw(NOT_UTF8, label="byte") + text[at:].encode()
    if raw.count(b"\x00") * 4 >= len(raw):  # would be taken for UTF-16 (a different message)
        return
    path = tmp_path / "answers.csv"
    path.write_bytes(raw)
    line = len(re.findall(r"\r\n|\r|\n", text[:at])) + 1
    report = run_import(registry_store, path)
    assert report.errors == [
        f"answers.csv: the file is not UTF-8 text at line {line}, byte {len(head)} ({raw[len(head)]:#04x}); save it as UTF-8 CSV"
    ]
    assert (report.created, responses(registry_store), invitations(registry_store)) == (0, [], [])
