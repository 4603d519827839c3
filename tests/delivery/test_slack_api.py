"""The one retrying Slack client (delivery and help channels) against the local Slack stand-in."""

from __future__ import annotations

import pytest

from auxeng.delivery import PermanentDeliveryError, SlackApiTransport, TransientDeliveryError
from auxeng.delivery.slack_api import RetryPolicy, SlackApi, SlackRefused
from tests.support.slack_standin import SlackStandIn


def connect(sleeps: list[float], **policy) -> SlackApi:
    return SlackApi.connect("slack_api_default", RetryPolicy(sleep=sleeps.append, **policy))


def test_a_rate_limit_waits_retry_after_capped_then_the_call_goes_through(
    slack_api_connection, slack_standin: SlackStandIn
):
    slack_standin.fail_next(1, retry_after=90, method="chat.postMessage")
    slack_standin.fail_next(1, retry_after=2, method="chat.postMessage")
    sleeps: list[float] = []

    ts = connect(sleeps, max_retry_after=30).post_message("C0DIGEST", "hello")

    assert sleeps == [30.0, 2.0]
    assert [c.status for c in slack_standin.calls_of("chat.postMessage")] == [429, 429, 200]
    (post,) = slack_standin.posts
    assert (post.channel, post.text, post.ts) == ("C0DIGEST", "hello", ts)


def test_server_errors_back_off_then_give_up_as_transient(slack_api_connection, slack_standin: SlackStandIn):
    slack_standin.fail_next(4, status=503, method="users.lookupByEmail")
    sleeps: list[float] = []

    with pytest.raises(TransientDeliveryError, match=r"slack: HTTP 503 \(tried 4 times\)") as raised:
        connect(sleeps, backoff_seconds=0.5, retries=3).user_id_by_email("bea@example.com")

    assert sleeps == [0.5, 1.0, 2.0]
    assert raised.value.transport_down is False
    assert len(slack_standin.calls_of("users.lookupByEmail")) == 4


def test_refusals_carry_slacks_error_code_and_say_when_the_token_is_refused(
    slack_api_connection, slack_standin: SlackStandIn
):
    slack_standin.add_user("U0BEA", "bea@example.com")
    api = connect([])
    assert api.user_id_by_email("bea@example.com") == "U0BEA"

    with pytest.raises(SlackRefused) as unknown:
        api.user_id_by_email("nobody@example.com")
    assert (unknown.value.error, unknown.value.reason, unknown.value.credentials) == (
        "users_not_found",
        "slack: users_not_found",
        False,
    )

    slack_standin.fail_next(1, error="invalid_auth")
    with pytest.raises(SlackRefused) as refused:
        api.post_message("C0DIGEST", "hello")
    assert (refused.value.error, refused.value.credentials) == ("invalid_auth", True)
    assert isinstance(refused.value, PermanentDeliveryError)
    assert slack_standin.posts == []


def test_history_pages_with_a_cursor_and_an_expired_cursor_is_refused(
    slack_api_connection, slack_standin: SlackStandIn
):
    slack_standin.seed_history("C0HELP", [{"text": f"ask {n}", "user": "U0DAN"} for n in range(3)])
    api = connect([])
    window = {"oldest": "0", "latest": "9999999999.000000", "limit": 2}

    first = api.conversation_history("C0HELP", **window)
    cursor = first["response_metadata"]["next_cursor"]
    second = api.conversation_history("C0HELP", cursor=cursor, **window)

    assert [m["text"] for m in first["messages"] + second["messages"]] == ["ask 2", "ask 1", "ask 0"]
    slack_standin.expire_cursors()
    with pytest.raises(SlackRefused) as refused:
        api.conversation_history("C0HELP", cursor=cursor, **window)
    assert refused.value.error == "invalid_cursor"


def test_slack_unreachable_is_transient_and_marks_the_transport_down(slack_api_connection, slack_standin):
    api = connect([], backoff_seconds=0.01, retries=1)
    slack_standin.stop()

    with pytest.raises(TransientDeliveryError, match="cannot reach Slack") as raised:
        api.post_message("C0DIGEST", "hello")

    assert raised.value.transport_down is True


def test_without_the_connection_connect_raises_and_the_transport_is_down(slack_standin):
    from airflow.sdk.exceptions import AirflowNotFoundException

    with pytest.raises(AirflowNotFoundException):
        SlackApi.connect("slack_api_default")
    with pytest.raises(TransientDeliveryError, match="'slack_api_default' is not usable") as raised:
        SlackApiTransport("slack_api_default").__enter__()
    assert raised.value.transport_down is True
