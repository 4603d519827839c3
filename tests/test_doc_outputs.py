"""The README and docs/ cannot drift: every output they quote is marked with the run it quotes
and matches a real one (``tests.support.doc_outputs``), and the README covers the whole pack.

The ``make demo`` blocks read the session's one ``make demo`` run (the ``make_demo`` fixture).
After a change to what the pack prints: ``.venv/bin/python -m tests.support.doc_outputs --update``.
"""

from __future__ import annotations

import re

import pytest

from tests.support.doc_outputs import (
    CHECKED_ELSEWHERE,
    ILLUSTRATIVE,
    REPO,
    SOURCES,
    UPDATE_COMMAND,
    Sources,
    blocks,
    check,
    checked_here,
    marked_blocks,
    mismatch,
    pack_documents,
    rewrite_line,
    unmarked_output_blocks,
    update,
    updated_lines,
)

MARKED = checked_here(marked_blocks())


def _param(block):
    marks = [pytest.mark.airflow] if block.source.startswith("demo") else []
    return pytest.param(block, id=f"{block.name} {block.source}", marks=marks)


# --- the pack's documents --------------------------------------------------------------------


def test_every_quoted_output_block_is_marked_or_listed_as_illustrative():
    unmarked = unmarked_output_blocks(pack_documents())
    assert not unmarked, (
        "output blocks without <!-- output: SOURCE --> (or, if no command prints them, an entry in "
        "tests.support.doc_outputs.ILLUSTRATIVE):\n" + "\n".join(unmarked)
    )


def test_every_illustrative_entry_names_a_block_that_exists():
    present = {
        (str(path.relative_to(REPO)), block.lines[0]) for path in pack_documents() for block in blocks(path)
    }
    assert not set(ILLUSTRATIVE) - present


def test_every_marked_block_names_a_known_source():
    known = {*SOURCES, *CHECKED_ELSEWHERE}
    assert not [f"{b.name}: {b.source}" for b in marked_blocks() if b.source.split()[0] not in known]


def test_the_docs_quote_the_runs_they_promise():
    sources = {block.source.split()[0] for block in MARKED}
    assert {"demo", "demo-email", "registry"} <= sources
    assert any(block.inline and block.path.name == "README.md" for block in MARKED)


@pytest.mark.parametrize("block", [_param(block) for block in MARKED])
def test_each_quoted_output_matches_a_real_run(block, request):
    demo = request.getfixturevalue("make_demo") if block.source.startswith("demo") else None
    why = check(block, Sources(lambda: demo))
    assert why is None, f"{block.name} ({block.source}) no longer matches the real output: {why}\n" + (
        f"Rewrite the stale blocks from a real run with: {UPDATE_COMMAND}"
    )


def test_the_readme_names_every_dag():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    dag_ids = [path.stem for path in sorted((REPO / "dags").glob("auxeng_*.py"))]
    assert len(dag_ids) == 9
    assert not [dag_id for dag_id in dag_ids if f"`{dag_id}`" not in readme]


def test_the_readme_names_every_domain_package_of_the_pack():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    packages = [path.parent.name for path in sorted((REPO / "plugins" / "auxeng").glob("*/__init__.py"))]
    assert len(packages) >= 10
    assert not [name for name in packages if not re.search(rf"^\s+{name}/\s", readme, re.M)]


def test_the_readme_intro_covers_the_web_pages_the_cli_the_dashboard_and_the_outbox():
    intro = (REPO / "README.md").read_text(encoding="utf-8").split("**Who uses it.**")[0]
    for part in ("survey", "opt out", "acknowledge", "python -m auxeng", "dashboard", "outbox"):
        assert part in intro, part


# --- the checker itself ----------------------------------------------------------------------

RUN = [
    "==> Fresh home /tmp/x/.airflow-demo",
    "==> send at 08:00: success",
    "==> checkins at 08:30: success",
    "==> deliver at 12:00: success",
    "",
    "Surveys: 29 engagement(s)",
    "  ENG-1   end   5 invited",
    "  ENG-2   end   6 invited",
    "Dev outbox /tmp/x/.airflow-demo/dev-outbox: 167 file(s)",
    "  link: http://localhost:8080/auxeng/survey/eyJwIjoic3VydmV5IiwicyI6IjE3NCJ9.sig",
]


@pytest.mark.parametrize(
    "quote",
    [
        ["==> send at 08:00: success", "==> checkins at 08:30: success"],
        [
            "==> send at 08:00: success",
            "…",
            "Surveys: 29 engagement(s)",
            "  …",
            "Dev outbox …/dev-outbox: 167 file(s)",
        ],
        ["  link: http://localhost:8080/auxeng/survey/eyJwIjoic3VydmV5Ii…"],
        ["==> deliver at 12:00: success   ", "", "Surveys: 29 engagement(s)"],
        ["…", "  ENG-2   end   6 invited", "…"],
    ],
)
def test_a_quote_matches_its_lines_in_order_with_skips_and_wildcards(quote):
    assert mismatch(quote, RUN) is None


@pytest.mark.parametrize(
    ("quote", "why"),
    [
        (
            ["==> send at 08:00: success", "==> deliver at 12:00: success"],
            "after '==> send at 08:00: success' the quote has '==> deliver at 12:00: success', "
            "the run has '==> checkins at 08:30: success'",
        ),
        (
            ["Surveys: 10 engagement(s)"],
            "no line of the run (after the lines matched before) matches 'Surveys: 10 engagement(s)'; "
            "the closest line of the run: 'Surveys: 29 engagement(s)'",
        ),
        (
            ["Surveys: 29 engagement(s)", "…", "==> send at 08:00: success"],
            "no line of the run (after the lines matched before) matches '==> send at 08:00: success'",
        ),
    ],
)
def test_a_stale_quote_is_explained(quote, why):
    assert mismatch(quote, RUN) == why


def test_an_update_rewrites_stale_lines_keeps_skips_wildcards_and_takes_in_added_lines():
    quote = [
        "==> send at 08:00: success",
        "==> deliver at 12:00: success",
        "…",
        "Surveys: 10 engagement(s)",
        "  ENG-1   end   4 invited",
        "…",
        "Dev outbox …/.airflow-demo/dev-outbox: 131 file(s)",
        "  link: http://localhost:8080/auxeng/survey/eyJwIjoic3VydmV5Ii…",
    ]
    assert updated_lines(quote, RUN) == [
        "==> send at 08:00: success",
        "==> checkins at 08:30: success",
        "==> deliver at 12:00: success",
        "…",
        "Surveys: 29 engagement(s)",
        "  ENG-1   end   5 invited",
        "…",
        "Dev outbox …/.airflow-demo/dev-outbox: 167 file(s)",
        "  link: http://localhost:8080/auxeng/survey/eyJwIjoic3VydmV5Ii…",
    ]
    assert updated_lines(["…", "  ENG-2   end   6 invited"], RUN) == ["…", "  ENG-2   end   6 invited"]
    # more than two new lines between two quoted ones become a skip line, indented as the next one
    assert updated_lines(["==> deliver at 12:00: success", "  ENG-2   end   7 invited"], RUN) == [
        "==> deliver at 12:00: success",
        "  …",
        "  ENG-2   end   6 invited",
    ]


def test_a_rewritten_line_abridges_the_runs_paths():
    assert rewrite_line(
        "e.g. …/x.eml", "e.g. /tmp/pytest-1/make-demo0/.airflow-demo/y.eml", ("/tmp/pytest-1/make-demo0/",)
    ) == ("e.g. …/.airflow-demo/y.eml")
    assert rewrite_line("plain line", "another line") == "another line"


def test_update_rewrites_the_marked_blocks_of_a_file_and_only_those(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n"
        "<!-- output: fake -->\n"
        "```text\n==> send at 08:00: success\n==> deliver at 12:00: success\n```\n\n"
        "- item\n\n  <!-- output: fake -->\n  ```\n  Surveys: 10 engagement(s)\n  ```\n\n"
        "| a | <!-- output: fake -->`Dev outbox …/dev-outbox: 1 file(s)` |\n\n"
        "```text\nnot marked\n```\n"
        "Quoted, not a marker: `<!-- output: fake -->`, `Surveys: 10 engagement(s)`.\n"
    )
    sources = Sources(lambda: None)
    sources.output = lambda source: "\n".join(RUN)
    assert update([page], sources) == [f"{page}:16", f"{page}:12", f"{page}:4"]
    assert page.read_text() == (
        "# Page\n\n"
        "<!-- output: fake -->\n"
        "```text\n==> send at 08:00: success\n==> checkins at 08:30: success\n==> deliver at 12:00: success\n```\n\n"
        "- item\n\n  <!-- output: fake -->\n  ```\n  Surveys: 29 engagement(s)\n  ```\n\n"
        "| a | <!-- output: fake -->`Dev outbox …/dev-outbox: 167 file(s)` |\n\n"
        "```text\nnot marked\n```\n"
        "Quoted, not a marker: `<!-- output: fake -->`, `Surveys: 10 engagement(s)`.\n"
    )
    assert update([page], sources) == []


def test_an_unmarked_output_block_is_reported_and_commands_are_not(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text(
        "```bash\nmake demo\n```\n\n```text\nSurveys: 29 engagement(s)\n```\n\n"
        "<!-- output: demo -->\n```\nSurveys: 29 engagement(s)\n```\n\n```\nunmarked\n```\n"
    )
    assert unmarked_output_blocks(pack_documents(tmp_path), tmp_path) == [
        "README.md:5: 'Surveys: 29 engagement(s)'",
        "README.md:14: 'unmarked'",
    ]
