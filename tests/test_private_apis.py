"""The package reaches other libraries and other modules through their public APIs only.

A private name is one with a single leading underscore. Reading one on anything but
``self``/``cls``, assigning one there, or importing one from another module is a
finding, except for the reads listed in ``ALLOWED`` with the reason no public API exists.
"""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "plugins" / "auxeng"

# (module, attribute) → how many reads are allowed there, and why.
ALLOWED = {
    # SQLAlchemy documents Row._mapping as public; the underscore only avoids clashing with column names.
    ("delivery/drain.py", "_mapping"): 1,
    # SmtpHook (smtp provider 3.2) exposes no client, and send_email_smtp cannot send our own MIME message.
    ("delivery/mail.py", "_smtp_client"): 1,
}


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def private_uses(source: str) -> list[tuple[str, str]]:
    """(kind, name) of every use of another object's or module's private name in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            owner = node.value
            if isinstance(owner, ast.Name) and owner.id in {"self", "cls"}:
                continue
            kind = "read" if isinstance(node.ctx, ast.Load) else "write"
            found.append((kind, node.attr))
        elif isinstance(node, ast.ImportFrom):
            found += [("import", alias.name) for alias in node.names if _private(alias.name)]
    return found


def test_the_check_finds_private_reads_writes_and_imports():
    source = (
        "from x import _hidden\n"
        "policy._call(client.method)\n"
        "hook._smtp_client = None\n"
        "self._own = self._hook.public\n"
    )
    assert private_uses(source) == [("import", "_hidden"), ("write", "_smtp_client"), ("read", "_call")]


def test_no_private_api_of_another_library_or_module_is_used():
    uses: Counter[tuple[str, str, str]] = Counter()
    for path in sorted(PACKAGE.rglob("*.py")):
        module = path.relative_to(PACKAGE).as_posix()
        uses.update((module, kind, name) for kind, name in private_uses(path.read_text()))
    reads = {(module, name): count for (module, kind, name), count in uses.items() if kind == "read"}
    assert {key: count for key, count in reads.items() if count > ALLOWED.get(key, 0)} == {}
    assert [use for use in uses if use[1] != "read"] == []
