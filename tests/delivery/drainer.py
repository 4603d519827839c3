"""A drainer process for the fault-injection tests (run as a script, not collected by pytest).

``python tests/delivery/drainer.py --url URL --now ISO [--kill-after K] [--lease S]``
delivers the outbox's email through the Airflow connection ``smtp_default``.
With ``--kill-after K`` it SIGKILLs itself right after the SMTP server accepted
the K-th message and before that message is marked sent: the worst moment to die.
Prints the report's summary as JSON when it finishes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
from datetime import datetime

from auxeng.delivery import SmtpTransport, deliver, resolve_transports
from auxeng.delivery.drain import MARK_EVERY
from auxeng.settings import load_settings
from auxeng.store.db import get_engine


class KillingSmtpTransport(SmtpTransport):
    """SmtpTransport that dies (SIGKILL) after ``kill_after`` confirmed sends, before returning."""

    def __init__(self, conn_id: str, *, email_from: str, kill_after: int) -> None:
        super().__init__(conn_id, email_from=email_from)
        self.kill_after = kill_after
        self.confirmed = 0

    def send(self, message):
        external_id = super().send(message)
        self.confirmed += 1
        if self.confirmed == self.kill_after:
            os.kill(os.getpid(), signal.SIGKILL)
        return external_id


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--now", required=True)
    parser.add_argument("--kill-after", type=int, default=0)
    parser.add_argument("--lease", type=int, default=600)
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--mark-every", type=int, default=MARK_EVERY)
    args = parser.parse_args()

    settings = dataclasses.replace(load_settings(), outbox_lease_seconds=args.lease)
    transports, missing = resolve_transports(settings, channels=["email"])
    email = transports["email"]
    assert isinstance(email, SmtpTransport), missing
    if args.kill_after:
        email = KillingSmtpTransport(email.conn_id, email_from=email.email_from, kill_after=args.kill_after)
    report = deliver(
        get_engine(args.url),
        now=datetime.fromisoformat(args.now),
        settings=settings,
        channels=["email"],
        transports={"email": email},
        batch_size=args.batch_size,
        mark_every=args.mark_every,
    )
    print(json.dumps(report.summary()))


if __name__ == "__main__":
    main()
