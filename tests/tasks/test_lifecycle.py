"""tasks.lifecycle: the names and rules of one monitor's life."""

from __future__ import annotations

import pytest

from settings import load_settings
from tasks.lifecycle import Token, message_expired, new_claimant, stop_key_ttl


def test_lifecycle_token_round_trips_through_its_text() -> None:
    token = Token("d345ece8-e46b-498b-abbb-983da4c11c07", 3)
    assert str(token) == "d345ece8-e46b-498b-abbb-983da4c11c07:3"
    assert Token.parse(str(token)) == token
    assert token.task_id == "monitor-d345ece8-e46b-498b-abbb-983da4c11c07-3"
    assert token.next() == Token(token.session_id, 4)


@pytest.mark.parametrize("text", ["", "s1", "s1:", ":3", "s1:x", "s1:-1"])
def test_lifecycle_token_refuses_what_is_not_a_token(text: str) -> None:
    with pytest.raises(ValueError, match="not a monitor lease token"):
        Token.parse(text)


def test_lifecycle_claimants_are_unique_per_run() -> None:
    claimants = {new_claimant() for _ in range(1000)}
    assert len(claimants) == 1000


def test_lifecycle_stop_key_outlives_a_database_outage_and_a_few_lease_ttls() -> None:
    env = {"MONITOR_LEASE_TTL": "3", "MONITOR_RENEW_INTERVAL": "0.5", "RECONCILE_INTERVAL": "1"}
    assert stop_key_ttl(load_settings(env, "/nonexistent")) == 86400.0
    huge = {"MONITOR_LEASE_TTL": "30000", "MONITOR_RENEW_INTERVAL": "5"}
    assert stop_key_ttl(load_settings(huge, "/nonexistent")) == 120000.0


def test_lifecycle_message_age_is_judged_on_one_clock() -> None:
    settings = load_settings({"MONITOR_LEASE_TTL": "30"}, "/nonexistent")  # expiry 120 s
    sent = 1_800_000_000_000
    assert not message_expired(sent, sent + 119_000, settings)
    assert message_expired(sent, sent + 121_000, settings)
    assert not message_expired(None, sent, settings)  # a message from before the stamp existed
