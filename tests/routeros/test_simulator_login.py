"""Login: plain, the legacy challenge (docs/routeros.md, Login), failures, and nothing before login."""

from __future__ import annotations

import logging
from typing import Any

import librouteros
import pytest
from librouteros.exceptions import TrapError
from librouteros.login import token

from harness.polling import wait_for
from routeros.simulator import Simulator, SimulatorConfig
from routeros.simulator.session import challenge_response
from tests.routeros.wire import WireClient, attrs

logging.getLogger("librouteros").setLevel(logging.INFO)


def small(**kw: Any) -> Simulator:
    return Simulator(SimulatorConfig(pppoe=1, hotspot=0, static=0, **kw))


@pytest.mark.parametrize(
    ("password", "challenge", "response"),
    [
        ("", "93b438ec9b80057c06dd9fe67d56aa9a", "00e134102a9d330dd7b1849fedfea3cb57"),
        ("passTest", "abc123", "0021277bff9ac7caf06aa608e46616d47f"),
    ],
)
def test_challenge_response_matches_documented_vectors(password: str, challenge: str, response: str) -> None:
    assert challenge_response(password, challenge) == response


def test_legacy_login_pre_643_accepts_challenge_response() -> None:
    with small(version="6.40", password="s3cret") as sim, WireClient(sim.host, sim.port) as c:
        # Pre-6.43 ignores name/password on the first /login and answers with a challenge.
        first = c.command("/login", "=name=admin", "=password=s3cret")
        assert first[0][0] == "!done"
        challenge = attrs(first[0])["ret"]
        assert len(challenge) == 32 and int(challenge, 16) >= 0
        assert c.command("/login", "=name=admin", f"=response={challenge_response('s3cret', challenge)}") == [
            ["!done"]
        ]
        assert c.command("/system/identity/print")[-1] == ["!done"]


def test_legacy_login_pre_643_failure_says_cannot_log_in() -> None:
    with small(version="6.40") as sim, WireClient(sim.host, sim.port) as c:
        challenge = attrs(c.command("/login")[0])["ret"]
        assert c.command("/login", "=name=admin", f"=response={challenge_response('wrong', challenge)}") == [
            ["!trap", "=message=cannot log in"],
            ["!done"],
        ]


def test_legacy_login_librouteros_token_method_logs_in_to_old_router() -> None:
    with small(version="6.42") as sim:
        api = librouteros.connect(
            host=sim.host, port=sim.port, username="admin", password="admin", login_method=token, timeout=5
        )
        try:
            assert list(api.path("system", "identity")) == [{"name": "sim-router"}]
        finally:
            api.close()


def test_legacy_login_between_643_and_6451_accepts_both_methods() -> None:
    with small(version="6.44") as sim:
        with WireClient(sim.host, sim.port) as c:
            assert c.login() == [["!done"]]
        with WireClient(sim.host, sim.port) as c:
            challenge = attrs(c.command("/login")[0])["ret"]
            assert c.command(
                "/login", "=name=admin", f"=response={challenge_response('admin', challenge)}"
            ) == [["!done"]]


def test_legacy_login_on_v7_hands_out_challenge_but_refuses_response() -> None:
    with small() as sim, WireClient(sim.host, sim.port) as c:
        challenge = attrs(c.command("/login")[0])["ret"]
        assert c.command("/login", "=name=admin", f"=response={challenge_response('admin', challenge)}") == [
            ["!trap", "=message=invalid user name or password (6)"],
            ["!done"],
        ]


def test_login_failure_is_counted_and_retry_on_same_socket_works() -> None:
    with small() as sim, WireClient(sim.host, sim.port) as c:
        assert c.login(password="nope") == [
            ["!trap", "=message=invalid user name or password (6)"],
            ["!done"],
        ]
        assert c.login(user="root", password="admin")[0][0] == "!trap"
        assert c.login() == [["!done"]]
        stats = sim.stats()
        assert (stats["failed_logins"], stats["logins"]) == (2, 1)


def test_login_failure_close_option_closes_the_socket() -> None:
    with small(failed_login="close") as sim, WireClient(sim.host, sim.port) as c:
        assert c.login(password="nope")[0][0] == "!trap"
        assert c.wait_closed()


def test_login_librouteros_wrong_password_counts_failure() -> None:
    with small() as sim:
        with pytest.raises(TrapError):
            librouteros.connect(host=sim.host, port=sim.port, username="admin", password="bad", timeout=5)
        wait_for(lambda: sim.stats()["failed_logins"] == 1, 5, "the failed login to be counted")


def test_prelogin_command_gets_fatal_and_connection_closes() -> None:
    with small() as sim, WireClient(sim.host, sim.port) as c:
        c.send("/interface/print")
        assert c.read() == ["!fatal", "not logged in"]
        assert c.wait_closed()
        assert sim.stats()["commands_total"] == 0


def test_prelogin_trap_option_refuses_each_command_then_fatal_after_limit() -> None:
    with small(pre_login="trap", prelogin_max_commands=2) as sim, WireClient(sim.host, sim.port) as c:
        for _ in range(2):
            assert c.command("/interface/print", ".tag=x") == [
                ["!trap", ".tag=x", "=message=not logged in"],
                ["!done", ".tag=x"],
            ]
        c.send("/interface/print")
        assert c.read() == ["!fatal", "too many commands before login"]
        assert c.wait_closed()


def test_prelogin_oversized_sentence_closes_connection() -> None:
    with small() as sim, WireClient(sim.host, sim.port) as c:
        c.send_raw(b"\x06/login" + b"\x80\xff" + b"=" * 255 + (b"\x80\xff" + b"=" * 255) * 80)
        assert c.wait_closed()


def test_login_password_never_appears_in_config_repr() -> None:
    assert "topsecret" not in repr(SimulatorConfig(password="topsecret"))
