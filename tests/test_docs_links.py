"""The README and docs/ hang together: every relative link and ``#anchor`` resolves.

Links are checked as GitHub renders the Markdown: a relative target must exist in the
repository, and an anchor (``#x`` in the same file or ``other.md#x``) must be the slug of a
heading there (lowercased, punctuation other than ``-`` and ``_`` dropped, spaces turned into
``-``, repeated headings numbered ``-1``, ``-2``, …) or an explicit ``id``/``name`` of an HTML
element. External (``http(s):``, ``mailto:``) links are not fetched. Fenced code blocks and
inline code are not Markdown, so links in them are ignored.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import pytest

REPO = Path(__file__).resolve().parents[1]
README_MAX_LINES = 250

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_CODE_SPAN = re.compile(r"(`+)(.+?)(?<!`)\1(?!`)")
_INLINE_LINK = re.compile(
    r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]"  # [text] or ![alt], one level of nested brackets
    r"\(\s*(<[^>\n]*>|[^\s()]*(?:\([^\s()]*\)[^\s()]*)*)"  # (target
    r"(?:\s+(?:\"[^\"]*\"|'[^']*'|\([^)]*\)))?\s*\)"  # optional "title")
)
_REFERENCE_DEF = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(<[^>\n]*>|\S+)")
_HTML_LINK = re.compile(r"""<(?:a|img|source)\b[^>]*?\b(?:href|src)\s*=\s*["']([^"']*)["']""", re.I)
_HTML_ANCHOR = re.compile(r"""<[a-z][^>]*?\b(?:id|name)\s*=\s*["']([^"']+)["']""", re.I)
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading's rendered text (before duplicate numbering)."""
    kept = []
    for char in heading.strip().lower():
        category = unicodedata.category(char)
        if char in "- " or category[0] in "LMN" or category == "Pc":
            kept.append(char)
    return "".join(kept).replace(" ", "-")


def heading_text(markdown: str) -> str:
    """A heading's text as rendered: code spans, links, images, emphasis and HTML tags unwrapped."""
    parts = []
    last = 0
    for match in _CODE_SPAN.finditer(markdown):
        parts.append(_unwrap_inline(markdown[last : match.start()]))
        parts.append(match.group(2).strip() if match.group(2).strip() else match.group(2))
        last = match.end()
    parts.append(_unwrap_inline(markdown[last:]))
    return "".join(parts)


def _unwrap_inline(text: str) -> str:
    text = re.sub(r"!\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"\[([^\]]*)\]\[[^\]]*\]", r"\1", text)
    text = re.sub(r"<[^>]+>", "", text)
    text = re.sub(r"(\*{1,3})(\S(?:.*?\S)?)\1", r"\2", text)
    return re.sub(r"(?<![\w])(_{1,3})(\S(?:.*?\S)?)\1(?![\w])", r"\2", text)


@dataclass(frozen=True)
class Link:
    line: int
    target: str


@dataclass
class Document:
    path: Path
    anchors: set[str]
    links: list[Link]


def parse(path: Path) -> Document:
    """The anchors a Markdown file defines and the links it makes, outside code."""
    anchors: set[str] = set()
    seen: dict[str, int] = {}
    links: list[Link] = []

    def add_heading(text: str) -> None:
        slug = github_slug(heading_text(text))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")

    fence: str | None = None
    previous = ""  # the previous line, when it can be the text of a setext heading
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        opening = _FENCE.match(line)
        if fence is not None:
            closes = opening and opening.group(1)[0] == fence[0] and len(opening.group(1)) >= len(fence)
            if closes and not line.strip().lstrip(fence[0]):  # a closing fence has no info string
                fence = None
            continue
        if opening:
            fence = opening.group(1)
            previous = ""
            continue
        atx = _ATX.match(line)
        if atx:
            add_heading(atx.group(2) or "")
            previous = ""
        elif previous and _SETEXT.match(line) and not line.strip().startswith("|"):
            add_heading(previous)
            previous = ""
            continue
        else:
            stripped = line.strip()
            block_start = stripped[:1] in ("|", ">", "-", "*", "+") or re.match(r"^\d+[.)]\s", stripped)
            previous = "" if not stripped or block_start or line.startswith("    ") else stripped
        outside_code = _CODE_SPAN.sub(lambda m: " " * len(m.group(0)), line)
        anchors.update(_HTML_ANCHOR.findall(outside_code))
        targets = [m.group(1) for m in _INLINE_LINK.finditer(outside_code)]
        targets += _HTML_LINK.findall(outside_code)
        reference = _REFERENCE_DEF.match(outside_code)
        if reference:
            targets.append(reference.group(1))
        links += [Link(number, target.strip("<>")) for target in targets]
    return Document(path, anchors, links)


def broken_links(paths: list[Path], root: Path) -> list[str]:
    """Every relative link of ``paths`` that does not resolve, as ``file:line: target: why``."""
    documents: dict[Path, Document] = {}

    def document(path: Path) -> Document:
        path = path.resolve()
        if path not in documents:
            documents[path] = parse(path)
        return documents[path]

    problems = []
    for path in paths:
        source = document(path)
        for link in source.links:
            where = f"{path.resolve().relative_to(root)}:{link.line}: {link.target}"
            if not link.target or _SCHEME.match(link.target) or link.target.startswith("//"):
                continue
            file_part, _, anchor = link.target.partition("#")
            file_part = unquote(file_part.split("?", 1)[0])
            target = (path.parent / file_part).resolve() if file_part else path.resolve()
            if not target.is_relative_to(root):
                problems.append(f"{where}: points outside the repository")
                continue
            if not target.exists():
                problems.append(f"{where}: no such file")
                continue
            if not anchor:
                continue
            if target.is_dir() or target.suffix.lower() not in (".md", ".markdown"):
                problems.append(f"{where}: an anchor into a file that is not Markdown")
            elif unquote(anchor) not in document(target).anchors:
                problems.append(f"{where}: no heading with that anchor in {target.relative_to(root)}")
    return problems


def pack_documents(root: Path = REPO) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").rglob("*.md"))]


def unlinked_docs(root: Path = REPO) -> list[str]:
    """The docs pages no link of the README leads to."""
    readme = root / "README.md"
    linked = {
        (readme.parent / unquote(link.target.partition("#")[0])).resolve()
        for link in parse(readme).links
        if not _SCHEME.match(link.target)
    }
    pages = sorted((root / "docs").rglob("*.md"))
    return [str(page.relative_to(root)) for page in pages if page.resolve() not in linked]


# --- the pack's documents --------------------------------------------------------------------


def test_every_relative_link_and_anchor_of_the_readme_and_docs_resolves():
    documents = pack_documents()
    assert len(documents) > 1, "docs/ has no Markdown pages"
    problems = broken_links(documents, REPO)
    assert not problems, "broken links:\n" + "\n".join(problems)


def test_the_readme_is_a_front_door_that_links_every_docs_page():
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) < README_MAX_LINES, f"README.md has {len(lines)} lines: move detail to docs/"
    assert not unlinked_docs(REPO), f"docs pages the README does not link to: {unlinked_docs(REPO)}"


# --- the checker itself ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("heading", "slug"),
    [
        ("Delivery: the outbox", "delivery-the-outbox"),
        ("The dashboard in the Airflow UI", "the-dashboard-in-the-airflow-ui"),
        ("Upgrading to the domain layout", "upgrading-to-the-domain-layout"),
        ("The `auxeng_checkins` DAG", "the-auxeng_checkins-dag"),
        ("What's new? (2026)", "whats-new-2026"),
        ("NPS & digests", "nps--digests"),
        ("registry -> sync", "registry---sync"),
        ("**Bold** and _emphasis_ and [a link](x.md)", "bold-and-emphasis-and-a-link"),
        ("Über Café", "über-café"),
        ("  Trailing hashes ##", "trailing-hashes"),
    ],
)
def test_slugs_are_githubs(tmp_path, heading, slug):
    page = tmp_path / "page.md"
    page.write_text(f"# {heading}\n")
    assert parse(page).anchors == {slug}


def test_a_broken_document_is_caught_and_everything_else_is_left_alone(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "image.png").write_bytes(b"\x89PNG")
    (tmp_path / "README.md").write_text(
        "# Front door\n"
        "\n"
        "## Settings\n"
        "\n"
        "## Settings\n"
        "\n"
        "Setext heading\n"
        "--------------\n"
        "\n"
        '<a id="kept-anchor"></a>\n'
        "[ok](#settings) [ok](#settings-1) [ok](#setext-heading) [ok](#kept-anchor)\n"
        "[ok](docs/page.md) [ok](docs/page.md#the-rules) [ok](./docs/) ![ok](docs/image.png)\n"
        '[ok](docs/page.md "with a title") [ok](<docs/page.md>) [ok](https://example.com/x.md#nope)\n'
        "[ok](mailto:ops@example.com) `[in code](missing.md)`\n"
        "[broken](#settings-2)\n"
        "[broken](docs/missing.md)\n"
        "[broken](docs/page.md#no-such-heading)\n"
        "```markdown\n"
        "[in a fence](missing.md) [in a fence](#nowhere)\n"
        "```\n"
        "[ref]: docs/gone.md\n"
        '<img src="docs/none.png">\n'
        "[outside](../elsewhere.md)\n"
        "[anchor into an image](docs/image.png#x)\n"
    )
    (tmp_path / "docs" / "page.md").write_text(
        "# Page\n\n## The rules\n\n[back](../README.md#front-door) [broken](../README.md#front_door)\n"
        "~~~\n[in a tilde fence](nowhere.md)\n~~~\n"
    )
    problems = broken_links(pack_documents(tmp_path), tmp_path)
    assert problems == [
        "README.md:15: #settings-2: no heading with that anchor in README.md",
        "README.md:16: docs/missing.md: no such file",
        "README.md:17: docs/page.md#no-such-heading: no heading with that anchor in docs/page.md",
        "README.md:21: docs/gone.md: no such file",
        "README.md:22: docs/none.png: no such file",
        "README.md:23: ../elsewhere.md: points outside the repository",
        "README.md:24: docs/image.png#x: an anchor into a file that is not Markdown",
        "docs/page.md:5: ../README.md#front_door: no heading with that anchor in README.md",
    ]


def test_a_docs_page_the_readme_does_not_link_is_reported(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "linked.md").write_text("# Linked\n")
    (tmp_path / "docs" / "orphan.md").write_text("# Orphan\n")
    (tmp_path / "README.md").write_text("# Door\n\n[linked](docs/linked.md#linked)\n")
    assert unlinked_docs(tmp_path) == ["docs/orphan.md"]
