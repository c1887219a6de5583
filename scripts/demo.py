"""`make demo` (`python -m scripts.demo`): the whole product here, one command; Ctrl-C stops it.

With nothing configured it brings its own parts: a private redis-server on a free port
(data under var/demo/, gone on exit), an embedded SQLite database, and a simulated
router with 50 customers of all three service types. Then the schema and customers,
the web app (dashboard + API + /ws) on 127.0.0.1:8081, a monitors worker, a control
worker, an alerts worker (webhook deliveries), beat and a read-only Flower with
generated credentials, and a handful of monitors started so the dashboard moves at once.

With DATABASE_URL (or DB_HOST), REDIS_URL (or REDIS_ADDR) or MIKROTIK_HOST set (in the
environment or .env) it uses those instead: a real router and a real PostgreSQL work
the same way, no simulator is started, nothing it did not create is flushed, and the
monitors it started are stopped on exit.

Every child process dies with this one (also on kill -9 of the launcher).
DEMO_SECONDS=N runs for N seconds and exits (the smoke test does); DEMO_MONITORS
sets how many monitors start (default 6).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from harness.process import ROOT, free_port, spawn_logged

PYTHON = sys.executable
BIN = Path(PYTHON).parent
ROUTER_ID = "mikrotik-001"
# The simulated ISP (seed 1): its first PPPoE customer is driven to its plan for the last
# SATURATE_SECONDS of every SATURATE_EVERY, so the panel's RTT climbs and the verdict turns
# to "saturated by own traffic" (README, Quick start).
SIM_SEED, SIM_PPPOE, SIM_HOTSPOT, SIM_STATIC = 1, 40, 5, 5
SATURATE_SECONDS, SATURATE_EVERY = 40, 120
# The demo's one enabled alert rule: the saturated customer at 90 % of plan for 20 s
# fires within each saturation (README, Alerts); the shipped rules stay disabled.
DEMO_RULE_FOR_S, DEMO_RULE_PCT = 20, 90


def demo_rule(customer_id: str, username: str) -> dict[str, Any]:
    return {
        "name": f"Demo: {username} at {DEMO_RULE_PCT}% of plan (download) for {DEMO_RULE_FOR_S} s",
        "kind": "utilization",
        "scope": f"customer:{customer_id}",
        "params": {"direction": "download", "threshold_pct": DEMO_RULE_PCT, "for_s": DEMO_RULE_FOR_S},
        "enabled": True,
    }


def saturated_customer() -> str:
    from routeros.simulator.customers import generate_customers

    return generate_customers(SIM_SEED, SIM_PPPOE, SIM_HOTSPOT, SIM_STATIC)[0].username


def port_or_free(preferred: int) -> int:
    """`preferred` when nothing listens there (8081, 5555 for the printed URLs), else any."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", preferred))
        except OSError:
            return free_port()
        return preferred


def configured(*names: str) -> bool:
    """Set in the environment or in .env (the settings' own sources)."""
    from settings import read_env_file

    file_values = read_env_file(Path(os.environ.get("ENV_FILE", ".env")))
    return any(os.environ.get(n) or file_values.get(n) for n in names)


class Demo:
    def __init__(self) -> None:
        self.dir = Path(os.environ.get("DATA_DIR", "var")) / "demo"
        self.logs = self.dir / "logs"
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.env = dict(os.environ)
        self.own_redis: subprocess.Popen[bytes] | None = None
        self.started: list[str] = []
        self.external = False
        self.saturated = ""  # the customer the simulator drives to its plan ("" with a real router)

    # -- processes ----------------------------------------------------------------------

    def spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        proc = spawn_logged(args, self.logs / f"{name}.log", self.env)
        self.procs.append((name, proc))
        return proc

    def run(self, what: str, *args: str) -> None:
        done = subprocess.run(list(args), cwd=ROOT, env=self.env, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"error: {what} failed:\n{done.stderr.strip() or done.stdout.strip()}")

    def wait_log(self, name: str, marker: str, timeout: float = 60.0) -> None:
        path = self.logs / f"{name}.log"
        proc = dict(self.procs)[name]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SystemExit(f"error: {name} exited early; see {path}:\n{path.read_text()[-2000:]}")
            if path.exists() and marker in path.read_text(errors="replace"):
                return
            time.sleep(0.1)
        raise SystemExit(f"error: {name} did not start within {timeout:g}s; see {path}")

    # -- the parts ----------------------------------------------------------------------

    def prepare(self) -> None:
        if self.dir.exists():
            shutil.rmtree(self.dir)  # a previous run's private data: start clean
        self.logs.mkdir(parents=True)

    def redis(self) -> None:
        if configured("REDIS_URL", "REDIS_ADDR", "REDIS_SENTINELS"):
            self.external = True
            print("Redis: as configured (REDIS_URL / REDIS_ADDR / REDIS_SENTINELS); nothing will be flushed")
            return
        server = shutil.which("redis-server")
        if server is None:
            subprocess.run(
                ["bash", str(ROOT / "scripts/ensure-system-packages.sh"), "redis-server"], check=True
            )
            server = shutil.which("redis-server") or "/usr/bin/redis-server"
        port = free_port()
        data = self.dir / "redis"
        data.mkdir()
        self.own_redis = self.spawn(
            "redis",
            server,
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--dir",
            str(data),
            "--save",
            "",
            "--appendonly",
            "no",
            "--maxmemory",
            "512mb",
            "--maxmemory-policy",
            "noeviction",
        )
        self.env["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
        self.wait_log("redis", "Ready to accept connections", 20)
        print(f"Redis: a private redis-server on 127.0.0.1:{port} (data in {data}, removed on exit)")

    def database(self) -> None:
        if configured("DATABASE_URL", "DB_HOST"):
            self.external = True
            print("Database: as configured (DATABASE_URL / DB_*)")
        else:
            self.env["DATABASE_URL"] = f"sqlite:///{(self.dir / 'monitor.db').resolve()}"
            print(f"Database: embedded SQLite ({self.dir / 'monitor.db'})")
        self.run("the schema migration", PYTHON, "-m", "models.migrate")

    def router(self) -> None:
        if configured("MIKROTIK_HOST"):
            self.external = True
            print(
                "Router: as configured (MIKROTIK_*); no simulator. Import its customers with `mtmon import`."
            )
            return
        self.env.setdefault("MIKROTIK_PASS", f"demo-{secrets.token_hex(6)}")
        self.saturated = saturated_customer()
        port = free_port()
        customers = self.dir / "customers.json"
        self.spawn(
            "simulator",
            PYTHON,
            "-m",
            "routeros.simulator",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--pppoe",
            str(SIM_PPPOE),
            "--hotspot",
            str(SIM_HOTSPOT),
            "--static",
            str(SIM_STATIC),
            "--user",
            "admin",
            "--seed",
            str(SIM_SEED),
            "--saturate",
            self.saturated,
            "--saturate-seconds",
            str(SATURATE_SECONDS),
            "--saturate-every",
            str(SATURATE_EVERY),
            "--customers-json",
            str(customers),
        )
        self.wait_log("simulator", "listening", 30)
        self.env.update(MIKROTIK_HOST="127.0.0.1", MIKROTIK_PORT=str(port), MIKROTIK_USER="admin")
        self.run(
            "seeding customers",
            PYTHON,
            "-m",
            "models.seed",
            "--customers-json",
            str(customers),
            "--mikrotik-id",
            ROUTER_ID,
            "--router-host",
            "127.0.0.1",
            "--router-port",
            str(port),
            "--router-user",
            "admin",
        )
        print(f"Router: a simulated RouterOS on 127.0.0.1:{port} with 50 customers (pppoe, hotspot, static)")
        print(
            f"  {self.saturated} is driven to its plan for {SATURATE_SECONDS} s of every "
            f"{SATURATE_EVERY} s (watch its RTT and verdict)"
        )

    def services(self) -> tuple[str, str]:
        web_port = port_or_free(int(self.env.get("WEB_PORT") or 8081))
        self.env.update(WEB_HOST="127.0.0.1", WEB_PORT=str(web_port))
        self.env.setdefault("MAX_CONCURRENT_MONITORS", "50")
        celery = [str(BIN / "celery"), "-A", "tasks"]
        self.spawn("web", PYTHON, "-m", "web")
        self.spawn(
            "monitors",
            *celery,
            "worker",
            "-Q",
            "monitors",
            "-c",
            "64",
            "--disable-prefetch",
            "-n",
            "monitors@%h",
            "-l",
            "INFO",
        )
        self.spawn("control", *celery, "worker", "-Q", "default", "-c", "2", "-n", "control@%h", "-l", "INFO")
        # Webhook deliveries of alerts: a queue of their own (celeryconfig).
        self.spawn("alerts", *celery, "worker", "-Q", "alerts", "-c", "4", "-n", "alerts@%h", "-l", "INFO")
        self.spawn("beat", *celery, "beat", "--schedule", str(self.dir / "celerybeat-schedule"), "-l", "INFO")
        flower_port = port_or_free(5555)
        flower_auth = f"demo:{secrets.token_urlsafe(9)}"
        self.env["FLOWER_BASIC_AUTH"] = flower_auth
        self.spawn(
            "flower", *celery, "flower", "--address=127.0.0.1", f"--port={flower_port}", "--read_only=True"
        )
        self.env.pop("FLOWER_BASIC_AUTH")  # Flower's own; nothing else needs it
        self.wait_log("web", "Application startup complete", 60)
        self.wait_log("monitors", " ready.", 60)
        self.wait_log("control", " ready.", 60)
        self.wait_log("alerts", " ready.", 60)
        self.wait_log("flower", "Visit me", 60)
        return (
            f"http://127.0.0.1:{web_port}",
            f"http://127.0.0.1:{flower_port}  user {flower_auth.replace(':', '  password ', 1)}",
        )

    # -- monitors -----------------------------------------------------------------------

    def api(self, base: str, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(f"{base}{path}", data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        token = self.env.get("API_TOKEN")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        with urllib.request.urlopen(request, timeout=15) as response:
            answer: dict[str, Any] = json.loads(response.read())
            return answer

    def start_monitors(self, base: str) -> None:
        wanted = int(self.env.get("DEMO_MONITORS", "6"))
        picked: list[dict[str, Any]] = []
        if self.saturated:
            # The customer the simulator saturates is always among them (it shows the verdict).
            picked += self.api(base, "GET", f"/api/customers?q={self.saturated}&limit=1")["customers"]
        for kind, count in (("pppoe", wanted - 2 - len(picked)), ("hotspot", 1), ("static_ip", 1)):
            page = self.api(
                base, "GET", f"/api/customers?service_type={kind}&status=active&limit={max(count, 0) + 1}"
            )
            others = [c for c in page["customers"] if c["username"] != self.saturated]
            picked += others[: max(count, 0)]
        for customer in picked:
            try:
                self.api(base, "POST", f"/api/monitor/start?customer_id={customer['id']}")
                self.started.append(customer["id"])
            except OSError as exc:
                print(f"  could not start {customer['username']}: {exc}")
        names = ", ".join(c["username"] for c in picked)
        print(f"Monitoring {len(self.started)} customers: {names}")
        if self.saturated and picked and picked[0]["username"] == self.saturated:
            self.alert_rule(base, picked[0])

    def alert_rule(self, base: str, customer: dict[str, Any]) -> None:
        """Enable the demo's rule (once: a database that outlives the demo keeps it)."""
        rule = demo_rule(customer["id"], customer["username"])
        try:
            self.api(base, "POST", "/api/alert-rules", rule)
        except urllib.error.HTTPError as exc:
            if exc.code != 409:  # 409: the rule is there from an earlier run
                print(f"  could not create the demo alert rule: {exc}")
                return
        except OSError as exc:
            print(f"  could not create the demo alert rule: {exc}")
            return
        print(f"Alert rule enabled: {rule['name']} (see the dashboard's alerts)")

    # -- the end ------------------------------------------------------------------------

    def stop(self, base: str | None) -> None:
        if self.external and base is not None:
            # Sessions in a database that outlives the demo would be "already running"
            # next time: stop what we started.
            for customer_id in self.started:
                try:
                    self.api(base, "POST", f"/api/monitor/stop?customer_id={customer_id}")
                except OSError:
                    pass
        for _, proc in reversed(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for name, proc in reversed(self.procs):
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                print(f"  {name} did not stop in time: killed")
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        if self.own_redis is not None:
            shutil.rmtree(self.dir / "redis", ignore_errors=True)
        database = self.dir / "monitor.db"
        if database.exists() and "sqlite" in self.env.get("DATABASE_URL", ""):
            database.unlink()


def main() -> int:
    os.chdir(ROOT)
    demo = Demo()
    base: str | None = None
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        if stopping:
            return  # a second Ctrl-C must not cut the clean-up short
        stopping = True
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        demo.prepare()
        demo.redis()
        demo.database()
        demo.router()
        base, flower = demo.services()
        demo.start_monitors(base)
        print()
        print(f"  Dashboard: {base}")
        if demo.env.get("API_TOKEN"):
            print("  Log in with your API_TOKEN (it is in your environment; it is not printed).")
        else:
            print("  No API_TOKEN set: the dashboard and API are open to this machine (127.0.0.1 only).")
        print(f"  Flower (read-only): {flower}")
        print(f"  Logs: {demo.logs}/")
        print("  Ctrl-C stops everything.", flush=True)
        seconds = float(demo.env.get("DEMO_SECONDS") or 0)
        deadline = time.monotonic() + seconds if seconds else None
        while deadline is None or time.monotonic() < deadline:
            for name, proc in demo.procs:
                if proc.poll() is not None:
                    print(f"error: {name} exited; see {demo.logs / (name + '.log')}", file=sys.stderr)
                    return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\nstopping...", flush=True)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        demo.stop(base)
        print("demo stopped: no process, port or Redis data left behind", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
