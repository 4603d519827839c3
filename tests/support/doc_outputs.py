"""The sample outputs that README.md and docs/ quote, checked against a real run.

A quoted output is marked by an HTML comment naming the run it quotes, on the line right
before its fence, or right before its code span for a one-line sample in a paragraph or table::

    <!-- output: demo -->
    ```text
    ==> auxeng_send_surveys at 2026-11-26 08:00 UTC: success
    …
    Dev outbox …/.airflow-demo/dev-outbox: 167 file(s) (what would have been sent)
    ```

    | the registry YAML | <!-- output: registry tests/data/registry/unknown_team.yaml -->`ENG-2026-002 …` |

The sources (:data:`SOURCES`):

- ``demo``: what ``make demo`` prints (``DEMO_DATE=2026-11-26``);
- ``demo-email GLOB``: the emails of that run's dev outbox named ``email/GLOB``, each as its
  ``Subject:`` line, a blank line and its plain-text part, one after the other;
- ``registry FILE…``: the problems the registry parser reports for each file, one a line.

A block matches when its lines appear in the source's output in order: consecutive lines
consecutively, a line ``…`` skips any number of lines, and ``…`` inside a line stands for any
text (an abridged path ``…/dev-outbox``, a cut-off link). A quote may start and end anywhere
in the output. Trailing spaces are ignored.

Every untagged or ``text`` fenced block of README.md and docs/*.md is either marked or listed
in :data:`ILLUSTRATIVE` (diagrams and layouts that no command prints).

After a change to what the pack prints, rewrite the marked blocks that no longer match from a
real run (one ``make demo``, 1-2 minutes), then review the diff::

    .venv/bin/python -m tests.support.doc_outputs --update

Without ``--update`` it only reports the blocks that do not match; ``--demo-home DIR`` keeps
the demo in DIR (an ``.airflow-demo`` folder) and reuses it on the next call. A stale block keeps its
shape: its ``…`` lines stay, each of its lines is replaced by the line of the run it stands
for (its ``…`` wildcards kept where they still fit), up to two lines the run added between two
quoted lines are taken in, and more become a ``…`` line.
"""

from __future__ import annotations

import argparse
import difflib
import email
import email.policy
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ELLIPSIS = "…"
DEMO_DATE = "2026-11-26"
UPDATE_COMMAND = ".venv/bin/python -m tests.support.doc_outputs --update"
MAX_TAKEN_IN = 2  # an update takes in at most this many new lines between two quoted ones, else "…"
DEMO_STDOUT = "make-demo.out"  # what make demo printed, kept in its home by run_make_demo

# Fenced blocks that show no command's output, by file and first line (why each is one).
ILLUSTRATIVE: dict[tuple[str, str], str] = {
    (
        "README.md",
        "registry YAML --sync--> store --detect ended--> ended engagements",
    ): "the flow diagram as text",
    (
        "README.md",
        "dags/                     one DAG per file; file name = dag_id; they wire, auxeng computes",
    ): "the code layout",
    (
        "docs/development.md",
        "dags/                    one DAG per file; file name = dag_id",
    ): "the repository layout",
    ("docs/development.md", "plugins/"): "the code layout",
}

_FENCE = re.compile(r"^( {0,3})(`{3,}|~{3,})\s*([^`\s]*)")
_MARKER = re.compile(r"^\s*<!--\s*output:\s*(.+?)\s*-->\s*$")
# A marker and its code span, or a code span to step over (a marker quoted in code is no marker).
_INLINE_MARKER = re.compile(
    r"<!--\s*output:\s*(?P<source>.+?)\s*-->(?P<ticks>`+)(?P<code>.+?)(?P=ticks)|(`+).+?\4"
)
_QUOTED_INFO = ("", "text")


# --- the documents' blocks ---------------------------------------------------------------------


@dataclass
class Block:
    """A fenced block (or a marked code span) of a Markdown file."""

    path: Path
    line: int  # 1-based line of the fence (or of the code span)
    info: str
    lines: list[str]
    source: str | None  # the marker's source, None when unmarked
    indent: str = ""
    inline: bool = False

    @property
    def name(self) -> str:
        return f"{self.path.relative_to(REPO) if self.path.is_relative_to(REPO) else self.path}:{self.line}"

    @property
    def quoted_output(self) -> bool:
        return self.inline or self.info in _QUOTED_INFO


def blocks(path: Path) -> list[Block]:
    """Every fenced block of ``path`` and every marked code span outside them."""
    found: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if not opening:
            for match in _INLINE_MARKER.finditer(lines[index]):
                if match["source"]:
                    found.append(Block(path, index + 1, "", [match["code"]], match["source"], inline=True))
            index += 1
            continue
        indent, fence, info = opening.groups()
        marker = _MARKER.match(lines[index - 1]) if index else None
        end = index + 1
        while end < len(lines) and not _closes(lines[end], fence):
            end += 1
        content = [
            line[len(indent) :] if line.startswith(indent) else line.lstrip()
            for line in lines[index + 1 : end]
        ]
        found.append(Block(path, index + 1, info, content, marker.group(1) if marker else None, indent))
        index = end + 1
    return found


def _closes(line: str, fence: str) -> bool:
    stripped = line.strip()
    return stripped.startswith(fence[0] * len(fence)) and not stripped.lstrip(fence[0])


def pack_documents(root: Path = REPO) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").rglob("*.md"))]


def unmarked_output_blocks(paths: list[Path], root: Path = REPO) -> list[str]:
    """The untagged or ``text`` blocks that are neither marked nor listed as illustrative."""
    problems = []
    for path in paths:
        for block in blocks(path):
            key = (str(path.relative_to(root)), block.lines[0] if block.lines else "")
            if block.quoted_output and block.source is None and key not in ILLUSTRATIVE:
                problems.append(f"{path.relative_to(root)}:{block.line}: {key[1]!r}")
    return problems


# --- matching ---------------------------------------------------------------------------------


def is_skip(line: str) -> bool:
    return line.strip() == ELLIPSIS


def line_pattern(line: str) -> re.Pattern[str]:
    """``line`` as a regular expression: ``…`` matches any text."""
    return re.compile(".*".join(re.escape(part) for part in line.rstrip().split(ELLIPSIS)) + r"\Z", re.S)


def line_matches(pattern: str, line: str) -> bool:
    return line_pattern(pattern).match(line.rstrip()) is not None


def segments(lines: list[str]) -> list[list[str]]:
    """The runs of consecutive lines between ``…`` lines."""
    runs: list[list[str]] = [[]]
    for line in lines:
        if is_skip(line):
            runs.append([])
        else:
            runs[-1].append(line)
    return [run for run in runs if run]


def _find_run(run: list[str], output: list[str], start: int) -> int | None:
    for first in range(start, len(output) - len(run) + 1):
        if all(line_matches(p, output[first + k]) for k, p in enumerate(run)):
            return first
    return None


def mismatch(lines: list[str], output: list[str]) -> str | None:
    """Why ``lines`` do not match ``output``, or None when they do."""
    position = 0
    for run in segments(lines):
        first = _find_run(run, output, position)
        if first is not None:
            position = first + len(run)
            continue
        return _explain(run, output, position)
    return None


def _explain(run: list[str], output: list[str], start: int) -> str:
    best, best_first = 0, None
    for first in range(start, len(output)):
        count = 0
        while (
            count < len(run)
            and first + count < len(output)
            and line_matches(run[count], output[first + count])
        ):
            count += 1
        if count > best:
            best, best_first = count, first
    wanted = run[best]
    if best_first is None:
        close = difflib.get_close_matches(wanted.replace(ELLIPSIS, ""), output[start:], n=1, cutoff=0.5)
        nearest = f"; the closest line of the run: {close[0]!r}" if close else ""
        return f"no line of the run (after the lines matched before) matches {wanted!r}{nearest}"
    found = output[best_first + best] if best_first + best < len(output) else "(end of output)"
    return f"after {run[best - 1]!r} the quote has {wanted!r}, the run has {found!r}"


# --- updating ---------------------------------------------------------------------------------


def _similarity(pattern: str, line: str) -> float:
    if line_matches(pattern, line):
        return 1.0
    matcher = difflib.SequenceMatcher(None, pattern.replace(ELLIPSIS, ""), line.rstrip(), autojunk=False)
    if matcher.real_quick_ratio() < 0.6 or matcher.quick_ratio() < 0.6:
        return 0.0
    ratio = matcher.ratio()
    return ratio if ratio >= 0.6 else 0.0


def _align(run: list[str], output: list[str], start: int) -> list[tuple[int, int]]:
    """The pairs (line of ``run``, line of ``output``) of the best in-order alignment."""
    window = output[start:]
    rows, cols = len(run), len(window)
    score = [[0.0] * (cols + 1) for _ in range(rows + 1)]
    for i in range(1, rows + 1):
        for j in range(1, cols + 1):
            similarity = _similarity(run[i - 1], window[j - 1])
            diagonal = score[i - 1][j - 1] + similarity if similarity else 0.0
            score[i][j] = max(score[i - 1][j], score[i][j - 1], diagonal)
    pairs = []
    i, j = rows, cols
    while i and j:
        similarity = _similarity(run[i - 1], window[j - 1])
        if similarity and score[i][j] == score[i - 1][j - 1] + similarity:
            pairs.append((i - 1, start + j - 1))
            i, j = i - 1, j - 1
        elif score[i][j] == score[i - 1][j]:
            i -= 1
        else:
            j -= 1
    return pairs[::-1]


def rewrite_line(pattern: str, line: str, abridge: tuple[str, ...] = ()) -> str:
    """``line`` of the run in the place of ``pattern``: its ``…`` wildcards kept where they fit."""
    line = line.rstrip()
    if line_matches(pattern, line):
        return pattern
    for prefix in abridge:
        line = line.replace(prefix, ELLIPSIS + "/")
    if ELLIPSIS not in pattern:
        return line
    kept = []
    matcher = difflib.SequenceMatcher(None, pattern, line, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal" or ELLIPSIS not in pattern[i1:i2]:
            kept.append(line[j1:j2])
        elif not kept or not kept[-1].endswith(ELLIPSIS):
            kept.append(ELLIPSIS)
    rewritten = "".join(kept)
    return rewritten if line_matches(rewritten, line) else line


def updated_lines(lines: list[str], output: list[str], abridge: tuple[str, ...] = ()) -> list[str]:
    """``lines`` rewritten from ``output`` where they no longer match it (see the module doc)."""
    if mismatch(lines, output) is None:
        return lines
    result: list[str] = []
    position = 0
    run: list[str] = []
    for line in [*lines, None]:
        if line is not None and not is_skip(line):
            run.append(line)
            continue
        if run:
            new_run, position = _updated_run(run, output, position, abridge)
            result += new_run
            run = []
        if line is not None:
            result.append(line)
    return result


def _updated_run(
    run: list[str], output: list[str], start: int, abridge: tuple[str, ...]
) -> tuple[list[str], int]:
    first = _find_run(run, output, start)
    if first is not None:
        return run, first + len(run)
    pairs = _align(run, output, start)
    if not pairs:
        return run, start
    new_run: list[str] = []
    for (i, j), following in zip(pairs, [*pairs[1:], None], strict=True):
        new_run.append(rewrite_line(run[i], output[j], abridge))
        gap = output[j + 1 : following[1]] if following else []
        if len(gap) > MAX_TAKEN_IN:
            next_line = output[following[1]]
            new_run.append(next_line[: len(next_line) - len(next_line.lstrip())] + ELLIPSIS)
        else:
            new_run += [rewrite_line(line, line, abridge) for line in gap]
    return new_run, pairs[-1][1] + 1


# --- the sources ------------------------------------------------------------------------------


@dataclass
class DemoRun:
    """One ``make demo`` run: what it printed and its Airflow home."""

    stdout: str
    stderr: str
    returncode: int
    home: Path


def run_make_demo(home: Path, **env: str) -> DemoRun:
    """``make demo DEMO_DATE=2026-11-26`` in ``home`` (created; an ``.airflow-demo`` folder)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "AUXENG_"))}
    result = subprocess.run(
        ["make", "--no-print-directory", "demo", f"DEMO_DATE={DEMO_DATE}"],
        cwd=REPO,
        env={**clean, "AUXENG_DEMO_HOME": str(home), **env},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if result.returncode == 0:
        (home / DEMO_STDOUT).write_text(result.stdout, encoding="utf-8")
    return DemoRun(result.stdout, result.stderr, result.returncode, home)


def finished_demo(home: Path) -> DemoRun:
    """The demo :func:`run_make_demo` left in ``home``."""
    return DemoRun((home / DEMO_STDOUT).read_text(encoding="utf-8"), "", 0, home)


def demo_email_text(path: Path) -> str:
    """An email of the dev outbox as its reader sees it: the subject, then the plain-text part."""
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    return f"Subject: {message['Subject']}\n\n{message.get_body(('plain',)).get_content()}"


def registry_problems(*paths: str) -> str:
    from auxeng.registry.parse import load_registry_file

    return "".join(f"{problem}\n" for path in paths for problem in load_registry_file(REPO / path).problems)


@dataclass
class Sources:
    """The outputs the marked blocks quote; the demo run is made (or given) once, when first needed."""

    demo: Callable[[], DemoRun]
    _demo_run: DemoRun | None = field(default=None, init=False)

    def demo_run(self) -> DemoRun:
        if self._demo_run is None:
            self._demo_run = self.demo()
            assert self._demo_run.returncode == 0, self._demo_run.stdout + self._demo_run.stderr
        return self._demo_run

    def abridge(self, source: str) -> tuple[str, ...]:
        """Path prefixes a rewritten line of ``source`` shows as ``…/``."""
        if self._demo_run is None or not source.startswith("demo"):
            return ()
        return (f"{self._demo_run.home.parent}/",)

    def output(self, source: str) -> str:
        kind, _, argument = source.partition(" ")
        if kind not in SOURCES:
            raise KeyError(f"unknown output source {kind!r} (known: {', '.join(SOURCES)})")
        return SOURCES[kind](self, argument.strip())


def _demo(sources: Sources, argument: str) -> str:
    return sources.demo_run().stdout


def _demo_email(sources: Sources, glob: str) -> str:
    paths = sorted((sources.demo_run().home / "dev-outbox" / "email").glob(glob))
    if not paths:
        raise LookupError(f"no email of the demo's dev outbox is named {glob!r}")
    return "\n".join(demo_email_text(path) for path in paths)


def _registry(sources: Sources, argument: str) -> str:
    return registry_problems(*argument.split())


SOURCES: dict[str, Callable[[Sources, str], str]] = {
    "demo": _demo,
    "demo-email": _demo_email,
    "registry": _registry,
}


# Outputs checked by a run outside pytest: the source, and the run that checks its blocks.
CHECKED_ELSEWHERE: dict[str, str] = {
    "make-run": "python -m tests.e2e.first_start (make e2e): the real make run on a fresh home",
}


def marked_blocks(paths: list[Path] | None = None) -> Iterator[Block]:
    for path in paths or pack_documents():
        yield from (block for block in blocks(path) if block.source is not None)


def checked_here(blocks_: Iterator[Block]) -> list[Block]:
    """The blocks whose source this module runs (not one of :data:`CHECKED_ELSEWHERE`)."""
    return [block for block in blocks_ if block.source not in CHECKED_ELSEWHERE]


def check(block: Block, sources: Sources) -> str | None:
    """Why ``block`` does not match its source's output, or None when it does."""
    return mismatch(block.lines, sources.output(block.source).splitlines())


def update(paths: list[Path], sources: Sources) -> list[str]:
    """Rewrite the marked blocks of ``paths`` that do not match; the names of those rewritten."""
    rewritten = []
    for path in paths:
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        changed = False
        marked = checked_here(marked_blocks([path]))
        for block in reversed(marked):
            output = sources.output(block.source).splitlines()
            new = updated_lines(block.lines, output, sources.abridge(block.source))
            if new == block.lines:
                continue
            rewritten.append(block.name)
            changed = True
            if block.inline:
                index = block.line - 1
                lines[index] = lines[index].replace(f"`{block.lines[0]}`", f"`{new[0]}`", 1)
            else:
                lines[block.line : block.line + len(block.lines)] = [
                    f"{block.indent}{line}" if line else line for line in new
                ]
        if changed:
            path.write_text("\n".join(lines) + ("\n" if text.endswith("\n") else ""), encoding="utf-8")
    return rewritten


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.doc_outputs", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--update", action="store_true", help="rewrite the marked blocks that do not match")
    parser.add_argument(
        "--demo-home",
        type=Path,
        help=f"run make demo in this .airflow-demo folder and keep it; reuse it when it holds {DEMO_STDOUT}",
    )
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO / "plugins"))
    with tempfile.TemporaryDirectory(prefix="auxeng-doc-outputs-") as scratch:
        home = (args.demo_home or Path(scratch) / ".airflow-demo").resolve()

        def demo() -> DemoRun:
            if (home / DEMO_STDOUT).is_file():
                return finished_demo(home)
            print(f"Running make demo DEMO_DATE={DEMO_DATE} in {home} (1-2 minutes)…", file=sys.stderr)
            return run_make_demo(home)

        sources = Sources(demo)
        paths = pack_documents()
        if args.update:
            rewritten = update(paths, sources)
            print("\n".join(f"rewritten: {name}" for name in rewritten) or "every marked block matches")
        failures = [
            (block.name, why)
            for block in checked_here(marked_blocks(paths))
            if (why := check(block, sources))
        ]
        for name, why in failures:
            print(f"{name}: {why}")
        unmarked = unmarked_output_blocks(paths)
        for problem in unmarked:
            print(
                f"unmarked output block {problem}: mark it (<!-- output: SOURCE -->) or list it in ILLUSTRATIVE"
            )
    return 1 if failures or unmarked else 0


if __name__ == "__main__":
    sys.exit(main())
