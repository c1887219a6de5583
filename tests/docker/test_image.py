"""docker/: what can be checked without a Docker engine (none runs on these machines).

The compose file parses and describes the deployment (every role, Redis that never
evicts, secrets only from the environment, start order by health), and every command it
gives the image, and `mtmon`, runs from a fresh virtualenv where the project was
installed from its wheel, as the image installs it (the locked dependencies, then the
project with `--no-deps`), outside the checkout. What is NOT run here: `docker build`
and `docker compose up` themselves (README says so).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from common import redis_clients
from harness.process import ROOT
from settings import load_settings

COMPOSE = ROOT / "docker" / "compose.yaml"
COMPOSE_SENTINEL = ROOT / "docker" / "compose.sentinel.yaml"
DOCKERFILE = ROOT / "docker" / "Dockerfile"
RUNTIME_LOCK = "requirements/runtime.lock"
DEV_LOCK = ROOT / "requirements" / "dev.lock"
APP_SERVICES = {"migrate", "web", "worker", "control", "alerts", "beat", "flower", "simulator", "seed"}
# The override's services that reach Redis (all but the simulator), and its second host.
SENTINEL_APP_SERVICES = (APP_SERVICES - {"simulator"}) | {"worker-host2"}


def _dockerfile_copies() -> list[str]:
    """The project's sources the Dockerfile's COPY lines take (all but the destination and
    the lock, which is installed before the project is built)."""
    names: list[str] = []
    for line in DOCKERFILE.read_text().splitlines():
        if line.startswith("COPY "):
            names += [n for n in line.split()[1:-1] if n != RUNTIME_LOCK]
    return names


DOCKERFILE_COPIES = _dockerfile_copies()


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def _merged(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Compose's merge of one service: mappings merged key by key, anything else replaced."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out


def _compose_sentinel() -> dict[str, dict[str, Any]]:
    """The services of `-f compose.yaml -f compose.sentinel.yaml`, merged as compose does
    (`extends` of the base file's services included)."""
    base = _compose()["services"]
    override: dict[str, Any] = yaml.safe_load(COMPOSE_SENTINEL.read_text())["services"]
    services = dict(base)
    for name, spec in override.items():
        spec = dict(spec)
        extends = spec.pop("extends", None)
        if extends is not None:
            assert extends["file"] == COMPOSE.name
            spec = _merged({k: v for k, v in base[extends["service"]].items() if k != "depends_on"}, spec)
        services[name] = _merged(services.get(name, {}), spec)
    return services


def test_image_compose_sentinel_override_reaches_redis_through_sentinels_only() -> None:
    services = _compose_sentinel()
    assert {"redis", "redis-replica", "sentinel-1", "sentinel-2", "sentinel-3", "worker-host2"} <= set(
        services
    )
    for name in ("redis", "redis-replica"):
        assert "noeviction" in services[name]["command"], name
    assert services["redis-replica"]["command"][1:4] == ["--replicaof", "redis", "6379"]
    for name in ("sentinel-1", "sentinel-2", "sentinel-3"):
        script = " ".join(services[name]["command"])
        assert "sentinel monitor mymaster redis 6379 2" in script and "--sentinel" in script, name
    hosts = {name: services[name]["command"][-1] for name in ("worker", "worker-host2")}
    assert hosts == {"worker": "monitors@host1", "worker-host2": "monitors@host2"}
    assert services["worker-host2"]["image"] == services["worker"]["image"]
    for name in SENTINEL_APP_SERVICES:
        env = {k: str(v) for k, v in services[name]["environment"].items()}
        assert env["REDIS_URL"] == "" and env["REDIS_SENTINEL_MASTER"] == "mymaster", name
        # What every process then builds from it (placeholders left to compose).
        settings = load_settings(
            {k: v for k, v in env.items() if k.startswith("REDIS_") and "${" not in v},
            env_file="/nonexistent",
        )
        url, options = redis_clients.celery_broker(settings)
        assert url == ";".join(f"sentinel://sentinel-{i}:26379/0" for i in (1, 2, 3)), name
        assert options == {"master_name": "mymaster"} and redis_clients.uses_sentinel(settings)


def test_image_compose_describes_every_role_and_keeps_secrets_out() -> None:
    services = _compose()["services"]
    assert set(services) == APP_SERVICES | {"postgres", "redis"}
    assert {name for name, s in services.items() if s.get("profiles") == ["demo"]} == {"simulator", "seed"}
    assert "noeviction" in services["redis"]["command"]
    assert services["web"]["ports"] == ["127.0.0.1:8081:8081"]
    assert "/health" in " ".join(services["web"]["healthcheck"]["test"])
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["worker"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["beat"]["depends_on"]["web"]["condition"] == "service_healthy"
    for name in APP_SERVICES:
        command = " ".join(services[name]["command"])
        assert "password" not in command.lower() and "basic-auth" not in command, (name, command)
    text = COMPOSE.read_text()
    for secret in ("POSTGRES_PASSWORD", "MIKROTIK_PASS", "FLOWER_BASIC_AUTH", "API_TOKEN"):
        assert f"${{{secret}:?" in text  # required from the environment, never defaulted
    dockerfile = DOCKERFILE.read_text()
    assert "USER monitor" in dockerfile and "PASS" not in dockerfile and "TOKEN" not in dockerfile


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project installed from its wheel into a new virtualenv, as the image does."""
    where = tmp_path_factory.mktemp("image")
    # Exactly what the Dockerfile copies, built away from the checkout (a build leaves
    # build/ and *.egg-info behind in its source directory).
    source = where / "src"
    source.mkdir()
    for name in DOCKERFILE_COPIES:
        origin = ROOT / name
        if origin.is_dir():
            shutil.copytree(origin, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(origin, source / name)
    wheels = where / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(source)],
        check=True,
        capture_output=True,
    )
    (wheel,) = wheels.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    # The dashboard's assets travel with the package (no build step, no CDN).
    assert "web/static/vendor/uplot/uPlot.iife.min.js" in names and "web/static/vendor/uplot/LICENSE" in names
    venv = where / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    lock = str(ROOT / RUNTIME_LOCK)
    subprocess.run([*pip, "--require-hashes", "-r", lock], check=True, capture_output=True)
    subprocess.run([*pip, "--no-deps", str(wheel)], check=True, capture_output=True)
    # The lock holds every dependency: nothing is missing once the project is in.
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "check"], check=True, capture_output=True)
    return venv


def _pins(lock: Path) -> dict[str, tuple[str, int]]:
    """name -> (version, number of hashes) for each entry of a uv/pip-compile lock."""
    pins: dict[str, tuple[str, int]] = {}
    name = ""
    for line in lock.read_text().splitlines():
        if line and not line[0].isspace() and not line.startswith("#"):
            name, _, rest = line.partition("==")
            pins[name.lower()] = (rest.split()[0].strip(), 0)
        elif "--hash=sha256:" in line and name:
            version, hashes = pins[name.lower()]
            pins[name.lower()] = (version, hashes + 1)
    return pins


def test_image_runtime_lock_is_the_dev_lock_subset_at_the_same_versions() -> None:
    """The image runs the versions CI tested: every pin of the runtime lock is in the dev
    lock at the same version, and every entry of both carries a hash."""
    runtime, dev = _pins(ROOT / RUNTIME_LOCK), _pins(DEV_LOCK)
    assert {"celery", "redis", "starlette", "librouteros", "setuptools", "pip"} <= set(runtime)
    assert {"pytest", "mypy", "ruff", "uv"} <= set(dev) - set(runtime)
    assert {name: dev[name][0] for name in runtime if name in dev} == {n: v for n, (v, _) in runtime.items()}
    for pins in (runtime, dev):
        assert all(version and hashes for version, hashes in pins.values()), pins


def test_image_every_compose_command_runs_from_a_fresh_virtualenv(fresh_venv: Path, tmp_path: Path) -> None:
    services = _compose()["services"]
    env = {"PATH": f"{fresh_venv / 'bin'}:/usr/bin:/bin", "ENV_FILE": "/nonexistent", "HOME": str(tmp_path)}
    commands = {name: list(services[name]["command"]) for name in APP_SERVICES}
    sentinel_services = _compose_sentinel()
    commands |= {
        f"{name} (compose.sentinel.yaml)": list(sentinel_services[name]["command"])
        for name in SENTINEL_APP_SERVICES
    }
    commands["image default (CMD)"] = ["python", "-m", "web"]
    commands["mtmon (the console script)"] = ["mtmon"]
    for name, command in commands.items():
        if command[0] == "celery":
            command = [*command[:4], "--help"]  # celery -A tasks <role> --help
        else:
            command = [*command[:3], "--help"]  # python -m <module> --help
        executable = fresh_venv / "bin" / command[0]
        done = subprocess.run(
            [str(executable), *command[1:]], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, (name, command, done.stderr[-2000:])
        assert "usage" in done.stdout.lower(), (name, done.stdout[:500])
