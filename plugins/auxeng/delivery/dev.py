"""The dev outbox: messages written as files instead of sent (``AUXENG_DEV_OUTBOX``, local runs only).

``<root>/email/<id>-<kind>-<recipient>.eml`` is the MIME message SMTP would send
(open it with any mail client, inline images included); ``<root>/slack/<id>-<kind>-<recipient>.json``
holds the Slack post (recipient, text, blocks). A Slack file upload (``payload["file"]``)
also writes the file itself next to it, as ``<id>-<kind>-<recipient>-<file name>``,
and its JSON has ``"file": {"filename", "title", "path"}`` (``path`` relative to ``<root>``).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from auxeng.delivery.base import BaseTransport, PermanentDeliveryError, QueuedMessage
from auxeng.delivery.slack import slack_file
from auxeng.messaging.mime import build_email
from auxeng.messaging.outbox import CHANNELS, EMAIL

DEV_EMAIL_FROM = "AuxEng (dev outbox) <auxeng@localhost>"
_UNSAFE = re.compile(r"[^A-Za-z0-9._@+-]+")


def safe_name(text: str, limit: int = 80) -> str:
    """A file-name-safe rendering of ``text`` (letters, digits, ``._@+-``; the rest becomes ``_``)."""
    return _UNSAFE.sub("_", text).strip("._")[:limit] or "_"


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class DevFileTransport(BaseTransport):
    """Writes each message of ``channel`` as a readable file under ``root``."""

    name = "dev"

    def __init__(self, root: Path | str, channel: str, *, email_from: str | None = None) -> None:
        if channel not in CHANNELS:
            raise ValueError(f"unknown channel {channel!r}")
        self.root = Path(root)
        self.channel = channel
        self.email_from = email_from or DEV_EMAIL_FROM

    def path_for(self, message: QueuedMessage) -> Path:
        suffix = "eml" if message.channel == EMAIL else "json"
        return self.root / message.channel / f"{self._stem(message)}.{suffix}"

    def _stem(self, message: QueuedMessage) -> str:
        return f"{message.id:06d}-{safe_name(message.kind, 40)}-{safe_name(message.recipient)}"

    def send(self, message: QueuedMessage) -> str | None:
        path = self.path_for(message)
        if message.channel == EMAIL:
            try:
                msg = build_email(message, email_from=self.email_from)
            except ValueError as exc:
                raise PermanentDeliveryError(f"cannot build the email: {exc}") from exc
            _write_atomically(path, msg.as_bytes())
            return msg["Message-ID"]
        post = {
            "recipient": message.recipient,
            "kind": message.kind,
            "dedupe_key": message.dedupe_key,
            "text": message.body_text,
            "blocks": (message.payload or {}).get("blocks"),
        }
        file = slack_file(message)
        if file is not None:
            file_path = path.with_name(f"{self._stem(message)}-{safe_name(file.filename)}")
            _write_atomically(file_path, file.data)  # before the JSON that names it
            post["file"] = {
                "filename": file.filename,
                "title": file.title,
                "path": file_path.relative_to(self.root).as_posix(),
            }
        _write_atomically(path, json.dumps(post, indent=2, ensure_ascii=False).encode())
        return str(path.relative_to(self.root))
