"""The dev outbox with bytes carried in the rows: Slack file uploads and inline email images."""

from __future__ import annotations

import base64
import email
import email.policy
import json

from auxeng.delivery import deliver
from tests.delivery.conftest import NOW, email_message, make_settings, queue, rows, slack_message

# A 1×1 PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYPj/HwADAgH/eL9GtQAAAABJRU5ErkJggg=="
)
CHART = base64.b64encode(PNG).decode()


def test_a_slack_file_row_writes_the_file_next_to_its_json(store, tmp_path):
    outbox = tmp_path / "dev-outbox"
    file_spec = {"filename": "nps trend/2026-W48.png", "title": "NPS, last 13 weeks", "data": CHART}
    queue(
        store,
        slack_message(1, "C0DIGEST", kind="nps_digest_chart", body_text="", payload={"file": file_spec}),
        slack_message(2, "C0DIGEST"),
        slack_message(3, "C0DIGEST", payload={"file": {"filename": "bad.png", "data": "%%%"}}),
    )

    report = deliver(store, now=NOW, settings=make_settings(dev_outbox=outbox), channels=["slack"])

    assert report.sent == {"slack": 2} and report.failed == {"slack": 1}
    state = rows(store)
    row = state["test:1:slack"]
    stem = f"{row.id:06d}-nps_digest_chart-C0DIGEST"
    post = json.loads((outbox / "slack" / f"{stem}.json").read_text())
    assert post["file"] == {
        "filename": "nps trend/2026-W48.png",
        "title": "NPS, last 13 weeks",
        "path": f"slack/{stem}-nps_trend_2026-W48.png",
    }
    assert (outbox / post["file"]["path"]).read_bytes() == PNG
    assert CHART not in json.dumps(post)  # the JSON names the file, never carries it
    assert row.external_id == f"slack/{stem}.json"

    plain = json.loads(next((outbox / "slack").glob(f"{state['test:2:slack'].id:06d}-*.json")).read_text())
    assert "file" not in plain
    assert state["test:3:slack"].reason.startswith("slack: file 'bad.png': data is not valid base64")
    assert sorted(p.name for p in (outbox / "slack").iterdir()) == sorted(
        [
            f"{stem}.json",
            f"{stem}-nps_trend_2026-W48.png",
            f"{state['test:2:slack'].id:06d}-survey_invite-C0DIGEST.json",
        ]
    )


def test_an_email_keeps_its_inline_image_in_the_eml(store, tmp_path):
    outbox = tmp_path / "dev-outbox"
    payload = {"inline_images": [{"cid": "chart", "filename": "nps-trend.png", "data": CHART}]}
    queue(store, email_message(1, body_html="<img src='cid:chart'>", payload=payload))

    deliver(store, now=NOW, settings=make_settings(dev_outbox=outbox), channels=["email"])

    (eml,) = (outbox / "email").iterdir()
    parsed = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    image = next(p for p in parsed.walk() if p.get_content_type() == "image/png")
    assert image["Content-ID"] == "<chart>" and image.get_content() == PNG
