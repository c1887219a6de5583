"""The simulated ISP: customers JSON, seeded traffic shape, CLI."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import librouteros
import pytest

from routeros.simulator import Simulator, SimulatorConfig
from routeros.simulator.customers import generate_customers
from routeros.simulator.traffic import Traffic

REPO = Path(__file__).resolve().parents[2]
CUSTOMER_KEYS = {
    "service_type",
    "username",
    "name",
    "phone",
    "email",
    "pppoe_username",
    "pppoe_password",
    "pppoe_profile",
    "hotspot_username",
    "hotspot_password",
    "hotspot_mac_address",
    "static_ip",
    "mac_address",
    "package",
    "target",
}


def test_customers_json_matches_the_contract_schema() -> None:
    with Simulator(SimulatorConfig(pppoe=4, hotspot=3, static=2, seed=9)) as sim:
        data = sim.customers()
    assert data["router"] == {
        "identity": "sim-router",
        "host": "127.0.0.1",
        "port": sim.port,
        "ssl_port": None,
        "version": "7.24",
    }
    assert {p["name"] for p in data["packages"]} >= {"home-10M"}
    assert all(set(p) == {"name", "download_bps", "upload_bps"} for p in data["packages"])
    customers = data["customers"]
    assert [c["service_type"] for c in customers] == ["pppoe"] * 4 + ["hotspot"] * 3 + ["static_ip"] * 2
    assert all(set(c) == CUSTOMER_KEYS for c in customers)
    assert len({c["username"] for c in customers}) == 9
    for c in customers:
        if c["service_type"] == "pppoe":
            assert c["target"] == f"<pppoe-{c['pppoe_username']}>" and c["pppoe_password"]
            assert c["pppoe_profile"] == c["package"] and c["static_ip"] is None
        elif c["service_type"] == "hotspot":
            assert c["target"] == f"<hotspot-{c['hotspot_username']}>" and c["hotspot_mac_address"]
        else:
            assert c["target"].startswith("static-") and re.fullmatch(r"10\.\d+\.\d+\.\d+", c["static_ip"])


def test_customers_same_seed_same_customers_other_seed_differs() -> None:
    a = [c.to_json() for c in generate_customers(1, 20, 5, 5)]
    b = [c.to_json() for c in generate_customers(1, 20, 5, 5)]
    c = [c.to_json() for c in generate_customers(2, 20, 5, 5)]
    assert a == b and a != c


def test_traffic_same_seed_gives_same_series() -> None:
    def series(seed: int) -> list[tuple[int, int]]:
        t = Traffic(seed, 20_000_000, 10_000_000)
        out = []
        for sec in range(1, 200):
            t.advance(sec)
            out.append((t.down_bps, t.up_bps))
        return out

    assert series(4) == series(4)
    assert series(4) != series(5)


def test_traffic_download_exceeds_upload_most_of_the_time_with_bursts_and_idle() -> None:
    down_gt_up = total = idle = burst = 0
    for seed in range(20):
        t = Traffic(seed, 20_000_000, 10_000_000)
        for sec in range(1, 1801):
            t.advance(sec)
            total += 1
            down_gt_up += t.down_bps > t.up_bps
            idle += t.down_bps < 100_000
            burst += t.down_bps > 0.8 * t.down_cap
            assert 0 <= t.down_bps <= t.down_cap and 0 <= t.up_bps <= t.up_cap
    assert down_gt_up / total > 0.8
    assert idle / total > 0.1  # idle periods exist
    assert burst / total > 0.05  # and so do bursts near the package speed


def test_traffic_counters_only_grow() -> None:
    t = Traffic(1, 10_000_000, 5_000_000)
    last = t.counters(0)
    for ms in (1, 999, 1000, 2500, 5000, 100_000, 101_000, 5_000_123):
        now = t.counters(ms)
        assert all(a >= b for a, b in zip(now, last))
        last = now


@pytest.mark.parametrize("phase_ms", [0, 1, 499, 999])
def test_traffic_rate_is_what_the_counters_grew_by_over_the_second_before(phase_ms: int) -> None:
    t = Traffic(7, 50_000_000, 20_000_000)
    # Read every second at this phase, with a gap long enough for the catch-up in between.
    times = [phase_ms + 1000 * k for k in (*range(1, 200), *range(260, 300))]
    last = t.counters(times[0])
    for ms in times[1:]:
        now = t.counters(ms)
        if ms - 1000 in times:
            rates = t.rates(ms)
            for grown, rate in zip((b - a for a, b in zip(last, now)), rates):
                assert abs(grown - rate) <= 1  # bits (or packets) over one second, within rounding
        last = now


def _env(**extra: str) -> dict[str, str]:
    """This process's environment without MIKROTIK_PASS (the simulator's default source), plus extra."""
    env = {k: v for k, v in os.environ.items() if k != "MIKROTIK_PASS"}
    env.update(extra)
    return env


def _run_cli(*args: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "routeros.simulator", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env=_env(),
    )


def _start_cli(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "routeros.simulator", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=env,
    )


def _api_port(proc: subprocess.Popen[str]) -> int:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    found = re.search(r"api://127\.0\.0\.1:(\d+)", line)
    assert found, line
    return int(found.group(1))


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--port", "70000"], "--port"),
        (["--pppoe", "-3"], "--pppoe"),
        (["--version", "seven"], "--version"),
        (["--customers-json", "/nonexistent-dir/x.json"], "--customers-json"),
        (["--password-env", "SIM_TEST_UNSET_PASSWORD_VAR"], "--password-env"),
        # Removed: a password on the command line is visible in `ps`.
        (["--password", "visible-in-ps"], "MIKROTIK_PASS"),
    ],
)
def test_cli_bad_input_exits_nonzero_with_message(args: list[str], needle: str) -> None:
    result = _run_cli(*args)
    assert result.returncode != 0
    assert needle in result.stderr and "Traceback" not in result.stderr
    assert "visible-in-ps" not in result.stderr


def test_cli_prints_one_line_serves_and_writes_customers_json(tmp_path: Path) -> None:
    out = tmp_path / "customers.json"
    args = ["--port", "0", "--pppoe", "3", "--hotspot", "1", "--static", "1", "--user", "admin"]
    proc = _start_cli(
        *args, "--seed", "1", "--customers-json", str(out), env=_env(MIKROTIK_PASS="pw-not-printed")
    )
    try:
        port = _api_port(proc)
        data = json.loads(out.read_text())
        assert data["router"]["port"] == port and len(data["customers"]) == 5
        api = librouteros.connect(
            host="127.0.0.1", port=port, username="admin", password="pw-not-printed", timeout=5
        )
        try:
            assert len([r for r in api.path("interface") if r["type"] == "pppoe-in"]) == 3
        finally:
            api.close()
    finally:
        proc.terminate()
        stdout, stderr = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert stdout == "" and "pw-not-printed" not in stderr


def test_cli_password_env_names_the_variable_holding_the_password() -> None:
    args = ["--port", "0", "--pppoe", "1", "--hotspot", "0", "--static", "0"]
    proc = _start_cli(*args, "--password-env", "SIM_TEST_PASSWORD", env=_env(SIM_TEST_PASSWORD="from-env-pw"))
    try:
        port = _api_port(proc)
        api = librouteros.connect(
            host="127.0.0.1", port=port, username="admin", password="from-env-pw", timeout=5
        )
        api.close()
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=10)
    assert "from-env-pw" not in stderr


def test_cli_without_mikrotik_pass_uses_admin_and_says_so() -> None:
    proc = _start_cli("--port", "0", "--pppoe", "1", "--hotspot", "0", "--static", "0", env=_env())
    try:
        port = _api_port(proc)
        api = librouteros.connect(host="127.0.0.1", port=port, username="admin", password="admin", timeout=5)
        api.close()
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=10)
    assert "MIKROTIK_PASS is not set" in stderr and "'admin'" in stderr


def test_cli_port_in_use_exits_nonzero_with_message() -> None:
    with Simulator(SimulatorConfig(pppoe=1, hotspot=0, static=0)) as sim:
        result = _run_cli("--port", str(sim.port), "--pppoe", "1")
    assert result.returncode != 0 and f"{sim.port}" in result.stderr and "Traceback" not in result.stderr


def test_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="drop_mode"):
        SimulatorConfig(drop_mode="boom")
    with pytest.raises(ValueError, match="version"):
        SimulatorConfig(version="latest")


def test_simulator_start_twice_raises_and_stop_is_idempotent() -> None:
    sim = Simulator(SimulatorConfig(pppoe=1, hotspot=0, static=0))
    sim.start()
    try:
        with pytest.raises(RuntimeError):
            sim.start()
    finally:
        sim.stop()
        sim.stop()


def test_customers_json_advertises_a_dialable_host_for_wildcard_listen() -> None:
    with Simulator(SimulatorConfig(pppoe=1, hotspot=0, static=0, host="0.0.0.0")) as sim:
        assert sim.customers()["router"]["host"] == "127.0.0.1"
    with Simulator(
        SimulatorConfig(pppoe=1, hotspot=0, static=0, host="0.0.0.0", advertise_host="simulator")
    ) as sim:
        assert sim.customers()["router"]["host"] == "simulator"
