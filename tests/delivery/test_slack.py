"""Slack delivery through the slack provider's hooks to a local Slack stand-in, as received there."""

from __future__ import annotations

import base64

import pytest

from auxeng.delivery import DeliveryIncomplete, SlackApiTransport, deliver
from tests.delivery.conftest import NOW, make_settings, queue, rows, slack_message
from tests.support.slack_standin import SlackStandIn


def send_slack(store, transport=None, **kwargs):
    transports = {"slack": transport} if transport is not None else None
    return deliver(
        store,
        now=NOW,
        settings=kwargs.pop("settings", make_settings()),
        channels=["slack"],
        transports=transports,
        **kwargs,
    )


def fast(**overrides):
    """The API transport with small waits, as tests want them."""
    options = {"backoff_seconds": 0.01, "max_retry_after": 5.0, **overrides}
    return SlackApiTransport("slack_api_default", **options)


def test_dms_by_id_and_by_email_and_channel_posts(store, slack_api_connection, slack_standin):
    slack_standin.add_user("U0BEA", "bea@example.com")
    queue(
        store,
        slack_message(1, "U0ONE"),
        slack_message(2, "email:Bea@Example.com"),
        slack_message(3, "email:bea@example.com"),
        slack_message(4, "C0DIGEST"),
        slack_message(5, "#auxeng-team"),
    )

    report = send_slack(store)

    assert report.sent == {"slack": 5} and report.transports == {"slack": "slack_api"}
    landed = [(p.channel, p.conversation, p.text) for p in slack_standin.posts]
    assert [c for c, _, _ in landed] == ["U0ONE", "U0BEA", "U0BEA", "C0DIGEST", "#auxeng-team"]
    assert landed[0][1] == "DU0ONE"  # a DM
    assert landed[0][2].startswith("Hello person 1")
    assert slack_standin.posts[0].blocks == [
        {"type": "section", "text": {"type": "mrkdwn", "text": "*Survey* 1"}}
    ]
    assert len(slack_standin.calls_of("users.lookupByEmail")) == 1  # cached within the batch
    state = rows(store)
    assert [state[f"test:{n}:slack"].external_id for n in range(1, 6)] == [p.ts for p in slack_standin.posts]
    assert all(r.transport == "slack_api" for r in state.values())


def test_only_a_webhook_posts_to_channels_and_leaves_dms_waiting(
    store, slack_webhook_connection, slack_standin
):
    queue(
        store,
        slack_message(1, "C0DIGEST"),
        slack_message(2, "U0TWO"),
        slack_message(3, "email:x@example.com"),
    )

    report = send_slack(store)

    assert report.transports == {"slack": "slack_webhook"}
    assert [(p.method, p.text) for p in slack_standin.posts] == [
        ("webhook", rows(store)["test:1:slack"].body_text)
    ]
    assert report.sent == {"slack": 1} and report.waiting == {"slack": 2}
    assert (
        "webhooks cannot DM" in report.missing["slack"] and "'slack_api_default'" in report.missing["slack"]
    )
    state = rows(store)
    assert state["test:1:slack"].transport == "slack_webhook"
    assert state["test:2:slack"].status == state["test:3:slack"].status == "pending"
    with pytest.raises(
        DeliveryIncomplete, match=r"slack: 2 due message\(s\) cannot be sent: direct messages"
    ):
        report.raise_for_problems()


def test_a_429_waits_retry_after_then_sends_once(store, slack_api_connection, slack_standin):
    queue(store, slack_message(1, "U0ONE"), slack_message(2, "U0TWO"))
    slack_standin.fail_next(1, retry_after=1, method="chat.postMessage")

    report = send_slack(store, fast())

    assert report.sent == {"slack": 2}
    calls = slack_standin.calls_of("chat.postMessage")
    assert [c.status for c in calls] == [429, 200, 200]
    assert calls[1].at - calls[0].at >= 1.0  # Retry-After honoured
    assert [p.channel for p in slack_standin.posts] == ["U0ONE", "U0TWO"]


def test_retry_after_is_capped(store, slack_api_connection, slack_standin):
    queue(store, slack_message(1, "U0ONE"))
    slack_standin.fail_next(1, retry_after=30)

    report = send_slack(store, fast(max_retry_after=0.2))

    assert report.sent == {"slack": 1}
    calls = slack_standin.calls_of("chat.postMessage")
    assert calls[1].at - calls[0].at >= 0.2
    assert calls[1].at - calls[0].at < 30


def test_server_errors_are_retried_with_backoff(store, slack_api_connection, slack_standin):
    queue(store, slack_message(1, "U0ONE"))
    slack_standin.fail_next(2, status=500)

    report = send_slack(store, fast())

    assert report.sent == {"slack": 1}
    assert [c.status for c in slack_standin.calls_of("chat.postMessage")] == [500, 500, 200]
    assert len(slack_standin.posts) == 1


def test_server_errors_that_persist_leave_the_message_pending(store, slack_api_connection, slack_standin):
    queue(store, slack_message(1, "U0ONE"))
    slack_standin.fail_next(10, status=503)

    report = send_slack(store, fast(retries=2))

    row = rows(store)["test:1:slack"]
    assert (row.status, row.attempts) == ("pending", 1)
    assert row.reason == "slack: HTTP 503 (tried 3 times)"
    assert len(slack_standin.calls_of("chat.postMessage")) == 3
    with pytest.raises(DeliveryIncomplete, match="slack: 1 due message"):
        report.raise_for_problems()


def test_slack_errors_fail_that_message_and_the_batch_goes_on(store, slack_api_connection, slack_standin):
    slack_standin.missing_channels.add("C0GONE")
    queue(
        store,
        slack_message(1, "U0ONE"),  # answered with invalid_auth (injected)
        slack_message(2, "C0GONE"),
        slack_message(3, "email:nobody@example.com"),
        slack_message(4, "U0FOUR"),
    )
    slack_standin.fail_next(1, error="invalid_auth", method="chat.postMessage")

    report = send_slack(store, fast())

    state = rows(store)
    assert {k: (r.status, r.reason) for k, r in state.items()} == {
        "test:1:slack": ("failed", "slack: invalid_auth"),
        "test:2:slack": ("failed", "slack: channel_not_found"),
        "test:3:slack": ("failed", "slack: users_not_found (nobody@example.com)"),
        "test:4:slack": ("sent", None),
    }
    assert [p.channel for p in slack_standin.posts] == ["U0FOUR"]
    assert report.failed == {"slack": 3} and report.sent == {"slack": 1}
    # Rejected credentials are a problem for the run even though retrying the row cannot help.
    with pytest.raises(DeliveryIncomplete, match="slack: failed on credentials: slack: invalid_auth"):
        report.raise_for_problems()


def test_lookup_by_email_can_be_switched_off(store, slack_api_connection, slack_standin):
    slack_standin.add_user("U0BEA", "bea@example.com")
    queue(store, slack_message(1, "email:bea@example.com"))

    send_slack(store, settings=make_settings(slack_lookup_by_email=False))

    row = rows(store)["test:1:slack"]
    assert (row.status, row.reason) == ("failed", "no slack_id and lookup by email disabled")
    assert slack_standin.calls == []


def test_a_wrong_token_is_reported_by_the_stand_in(store, monkeypatch, slack_standin):
    monkeypatch.setenv(
        "AIRFLOW_CONN_SLACK_API_DEFAULT",
        f'{{"conn_type": "slack", "password": "xoxb-wrong", "extra": {{"base_url": "{slack_standin.api_url}"}}}}',
    )
    queue(store, slack_message(1, "U0ONE"))
    report = send_slack(store)
    assert rows(store)["test:1:slack"].reason == "slack: invalid_auth"
    assert report.credential_errors == {"slack": "slack: invalid_auth"}


def test_webhook_rate_limits_and_errors(store, slack_webhook_connection, slack_standin):
    from auxeng.delivery import SlackWebhookTransport

    queue(store, slack_message(1, "C0ONE"), slack_message(2, "C0TWO"))
    slack_standin.fail_next(1, retry_after=0, method="webhook")
    slack_standin.fail_next(1, status=500, method="webhook")
    slack_standin.fail_next(1, status=410, error="channel_is_archived", method="webhook")

    report = send_slack(store, SlackWebhookTransport("slack_default", backoff_seconds=0.01))

    assert [c.status for c in slack_standin.calls_of("webhook")] == [429, 500, 410, 200]
    state = rows(store)
    assert (state["test:1:slack"].status, state["test:1:slack"].reason) == (
        "failed",
        "slack webhook: HTTP 410 channel_is_archived",
    )
    assert state["test:2:slack"].status == "sent"
    assert report.sent == {"slack": 1} and report.failed == {"slack": 1}


# -- file uploads (payload["file"]: a row of its own)

# A 1×1 PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYPj/HwADAgH/eL9GtQAAAABJRU5ErkJggg=="
)


def file_message(n, recipient="C0DIGEST", *, data=None, body_text="This week's NPS trend", **file):
    spec = {"filename": "nps-trend.png", "title": "NPS, last 13 weeks", **file}
    spec["data"] = base64.b64encode(PNG).decode() if data is None else data
    return slack_message(n, recipient, kind="nps_digest_chart", body_text=body_text, payload={"file": spec})


def test_a_file_row_is_uploaded_to_its_channel_with_the_text_as_comment(
    store, slack_api_connection, slack_standin
):
    queue(
        store,
        file_message(1),
        file_message(2, "G0PRIVATE", body_text="", title=None),
        slack_message(3, "C0DIGEST"),
    )

    report = send_slack(store)

    assert report.sent == {"slack": 3}
    (upload,) = slack_standin.posts_to("C0DIGEST")[:1]
    assert (upload.method, upload.channel, upload.text) == (
        "files.completeUploadExternal",
        "C0DIGEST",
        "This week's NPS trend",
    )
    (uploaded,) = upload.files
    assert uploaded["data"] == PNG
    assert (uploaded["filename"], uploaded["title"]) == ("nps-trend.png", "NPS, last 13 weeks")
    (untitled,) = slack_standin.posts_to("G0PRIVATE")
    assert untitled.text is None and "initial_comment" not in untitled.params  # no empty comment
    assert untitled.files[0]["title"] == "nps-trend.png"  # Slack's default: the file name
    state = rows(store)
    assert state["test:1:slack"].external_id == uploaded["id"]
    assert state["test:2:slack"].external_id == untitled.files[0]["id"]
    assert all(r.transport == "slack_api" for r in state.values())
    assert [p.method for p in slack_standin.posts_to("C0DIGEST")] == [
        "files.completeUploadExternal",
        "chat.postMessage",
    ]


@pytest.mark.parametrize("method", ["files.getUploadURLExternal", "upload", "files.completeUploadExternal"])
def test_an_upload_rate_limited_at_any_step_waits_retry_after_then_shares_the_file_once(
    store, slack_api_connection, slack_standin, method
):
    queue(store, file_message(1))
    slack_standin.fail_next(1, retry_after=7, method=method)
    slept = []

    report = send_slack(store, fast(max_retry_after=30, sleep=slept.append))

    assert report.sent == {"slack": 1}
    assert slept == [7.0]  # Retry-After honoured (through the injected sleep, so no real wait)
    assert [c.status for c in slack_standin.calls_of(method)] == [429, 200]
    (upload,) = slack_standin.posts
    assert upload.files[0]["data"] == PNG and upload.channel == "C0DIGEST"
    assert rows(store)["test:1:slack"].external_id == upload.files[0]["id"]


def test_upload_server_errors_are_retried_and_refusals_fail(store, slack_api_connection, slack_standin):
    queue(store, file_message(1))
    slack_standin.fail_next(1, status=503, method="upload")
    slack_standin.fail_next(1, status=500, method="files.completeUploadExternal")
    slept = []

    report = send_slack(store, fast(backoff_seconds=0.5, sleep=slept.append))

    assert report.sent == {"slack": 1}
    assert slept == [0.5, 1.0]  # exponential backoff, once per failure; each retry redoes all three steps
    assert [c.status for c in slack_standin.calls_of("upload")] == [503, 200, 200]
    assert [c.status for c in slack_standin.calls_of("files.completeUploadExternal")] == [500, 200]
    (upload,) = slack_standin.posts  # shared once
    assert upload.files[0]["data"] == PNG

    queue(store, file_message(2))
    slack_standin.fail_next(1, status=403, error="forbidden", method="upload")
    report = send_slack(store, fast(sleep=slept.append))

    row = rows(store)["test:2:slack"]
    assert (row.status, row.reason) == ("failed", "slack: file upload HTTP 403 Forbidden")
    assert report.failed == {"slack": 1} and len(slack_standin.posts) == 1


def test_files_are_only_uploaded_to_conversation_ids_and_bad_data_fails(
    store, slack_api_connection, slack_standin
):
    slack_standin.add_user("U0BEA", "bea@example.com")
    slack_standin.missing_channels.add("C0GONE")
    queue(
        store,
        file_message(1, "U0ONE"),
        file_message(2, "#auxeng-team"),
        file_message(3, "email:bea@example.com"),
        file_message(4, data="not base64!", filename="broken.png"),
        file_message(5, data="", filename="empty.png"),
        file_message(6, "C0GONE"),
        file_message(7, "D0BEA"),
    )

    report = send_slack(store)

    state = rows(store)
    assert {
        n: (state[f"test:{n}:slack"].status, state[f"test:{n}:slack"].reason) for n in (1, 2, 3, 6, 7)
    } == {
        1: ("failed", "slack: files can only be uploaded to a channel id (C…/G…), not 'U0ONE'"),
        2: ("failed", "slack: files can only be uploaded to a channel id (C…/G…), not '#auxeng-team'"),
        3: (
            "failed",
            "slack: files can only be uploaded to a channel id (C…/G…), not 'email:bea@example.com'",
        ),
        6: ("failed", "slack: channel_not_found"),
        7: ("sent", None),
    }
    assert state["test:4:slack"].reason.startswith("slack: file 'broken.png': data is not valid base64")
    assert state["test:5:slack"].reason == "slack: file 'empty.png': data is empty"
    assert [p.channel for p in slack_standin.posts] == ["D0BEA"]
    assert slack_standin.calls_of("users.lookupByEmail") == []
    assert report.failed == {"slack": 6} and report.sent == {"slack": 1}


def test_a_webhook_refuses_file_rows_and_still_posts_the_others(
    store, slack_webhook_connection, slack_standin
):
    queue(store, file_message(1), slack_message(2, "C0DIGEST"))

    report = send_slack(store)

    assert report.transports == {"slack": "slack_webhook"}
    row = rows(store)["test:1:slack"]
    assert row.status == "failed"
    assert row.reason.startswith(
        "slack webhook cannot upload files: create the Slack API connection 'slack_api_default'"
    )
    assert "'nps-trend.png'" in row.reason
    assert [p.method for p in slack_standin.posts] == ["webhook"]
    assert report.sent == {"slack": 1} and report.failed == {"slack": 1}


# -- the stand-in itself (later features read history and upload files through it)


def test_the_stand_in_pages_history_and_takes_file_uploads(slack_standin: SlackStandIn):
    from slack_sdk import WebClient

    client = WebClient(token="xoxb-test", base_url=slack_standin.api_url)
    assert client.auth_test()["user_id"] == "U0AUXENG"
    slack_standin.seed_history("C0DIGEST", [{"text": f"message {n}", "user": "U0X"} for n in range(5)])
    client.chat_postMessage(channel="C0DIGEST", text="newest")

    seen, cursor = [], None
    while True:
        page = client.conversations_history(channel="C0DIGEST", limit=2, cursor=cursor)
        seen += [m["text"] for m in page["messages"]]
        cursor = page["response_metadata"]["next_cursor"]
        if not page["has_more"]:
            break
    assert seen == ["newest", "message 4", "message 3", "message 2", "message 1", "message 0"]

    client.files_upload_v2(channel="C0DIGEST", content=b"\x89PNG fake", filename="chart.png", title="Chart")
    (upload,) = slack_standin.posts_to("C0DIGEST")[1:]
    assert upload.method == "files.completeUploadExternal"
    assert upload.files[0]["data"] == b"\x89PNG fake" and upload.files[0]["title"] == "Chart"


def test_the_stand_in_can_fail_a_seeded_fraction_of_calls(slack_standin: SlackStandIn):
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError

    slack_standin.fail_randomly(0.5, status=429, retry_after=0, seed=7)
    client = WebClient(token="xoxb-test", base_url=slack_standin.api_url, retry_handlers=[])
    outcomes = []
    for n in range(40):
        try:
            client.chat_postMessage(channel="C0X", text=str(n))
            outcomes.append(200)
        except SlackApiError as exc:
            outcomes.append(exc.response.status_code)
    assert set(outcomes) == {200, 429}
    assert 8 <= outcomes.count(429) <= 32
    assert len(slack_standin.posts) == outcomes.count(200)


@pytest.mark.parametrize("connection", ["slack_api_connection", "slack_webhook_connection"])
def test_blocks_slack_refuses_fail_the_message_with_invalid_blocks(store, slack_standin, connection, request):
    request.getfixturevalue(connection)
    too_long = {"blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}]}
    queue(store, slack_message(1, "C0DIGEST", payload=too_long), slack_message(2, "C0DIGEST"))

    report = send_slack(store)

    state = rows(store)
    assert state["test:1:slack"].status == "failed" and "invalid_blocks" in state["test:1:slack"].reason
    assert state["test:2:slack"].status == "sent"
    assert report.failed == {"slack": 1} and [p.text for p in slack_standin.posts] == [
        state["test:2:slack"].body_text
    ]
