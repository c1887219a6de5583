"""The whole deployment a bench measures, on one machine, from harness/ parts.

    simulator (bench.engine_sim, its own process) -- PostgreSQL (a throw-away migrated
    schema) -- Redis (a database of the shared server, or a private redis-server) --
    control worker + beat -- monitors workers -- web (uvicorn web.app:app, wsproto)
    -- WebSocket clients (bench.ws_clients, their own process)

Everything is started by `Stack` and stopped when it exits (also on failure and
Ctrl-C); worker, beat and web logs stay in the log directory. Redis:
BENCH_REDIS_URL, else database BENCH_REDIS_DB (default 4) of 127.0.0.1:6379, flushed
before and after; BENCH_PRIVATE_REDIS=1 (and every chaos run) uses a private
redis-server on a free port instead, which faults may kill without touching anyone
else's Redis, and whose CPU is then only ours. `sentinel=True` (the chaos bench's
sentinel-failover) runs a private master, replica and three sentinels instead
(harness/sentinel.py), and every process reaches Redis through Sentinel only.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import httpx2 as httpx
import psutil
import redis

from bench.sim_process import SimProcess, cpu_seconds
from common import redis_clients
from harness.pg import migrated_schema
from harness.redis_server import PrivateRedis
from harness.seed import ROUTER_PASSWORD, apply_env, seed_customers
from harness.sentinel import SentinelDeployment
from harness.web import Uvicorn
from harness.workers import CeleryProcess, beat, worker
from settings import get_settings
from tasks import keys

REDIS_URL = os.environ.get(
    "BENCH_REDIS_URL", f"redis://127.0.0.1:6379/{os.environ.get('BENCH_REDIS_DB', '4')}"
)
PRIVATE_REDIS = os.environ.get("BENCH_PRIVATE_REDIS", "") not in ("", "0", "false")
API_TOKEN = "bench-token-not-secret-8Kq2Wz5Xv3Nm7Tp"
PASSWORD_VAR = "BENCH_ROUTER_PASSWORD"

# What every process (workers, beat, web, this one) carries: celeryconfig reads it at the
# first `import tasks`, so these are set before anything imports tasks.
BASE_ENV = {
    "CELERY_VISIBILITY_TIMEOUT": "43200",
    "RECONCILE_INTERVAL": "5",
    "MONITOR_LEASE_TTL": "30",
    "MONITOR_RENEW_INTERVAL": "5",
    "MONITOR_INTERVAL": "1",
    "MONITOR_MAX_DURATION": "14400",
    "MIKROTIK_TIMEOUT": "10",
    "ROUTER_CONNECTIONS_PER_PROCESS": "1",
    # One simulated router stands for the many routers a deployment of this size has:
    # router affinity (tasks/affinity.py) would otherwise confine every monitor to the 2
    # processes the default cap allows, and a "3000x3" row would run on 2 of its 3.
    # The simulator's max-sessions is 20 (bench/affinity.py measures the cap itself).
    "ROUTER_MAX_API_SESSIONS": "20",
    "ENABLE_TRAFFIC_MONITOR": "true",
    # The per-customer benches measure monitors alone (their figures stay comparable with
    # earlier runs); bench/router.py turns the watch on where it measures it.
    "ROUTER_WATCH": "false",
    # Likewise the monitors' router-side ping: bench/ping.py measures it against this.
    "MONITOR_PING": "false",
    "API_TOKEN": API_TOKEN,
    "LOG_LEVEL": "INFO",
    "ENV_FILE": "/nonexistent/.env",
}


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set (VmHWM, its whole life) in MiB; 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return 0.0


def rss_mb(pid: int) -> float:
    try:
        return round(psutil.Process(pid).memory_info().rss / 2**20, 1)
    except psutil.Error:
        return 0.0


def _cpu(pid: int) -> float:
    try:
        return cpu_seconds(pid)
    except psutil.Error:
        return 0.0


@dataclass
class Meter:
    """CPU % and peak RSS of named processes over a window: `Meter(stack.pids())`, then `.read()`."""

    pids: dict[str, int]
    redis: redis.Redis | None = None
    wall0: float = field(default_factory=time.monotonic)
    cpu0: dict[str, float] = field(default_factory=dict)
    redis_cpu0: float = 0.0

    def __post_init__(self) -> None:
        self.cpu0 = {name: _cpu(pid) for name, pid in self.pids.items()}
        self.redis_cpu0 = self._redis_cpu()

    def _redis_cpu(self) -> float:
        if self.redis is None:
            return 0.0
        try:
            info = self.redis.info("cpu")
            return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])
        except redis.RedisError:
            return 0.0

    def read(self) -> list[dict[str, Any]]:
        wall = max(1e-6, time.monotonic() - self.wall0)
        out = [
            {
                "process": name,
                "pid": pid,
                "cpu_percent": round((_cpu(pid) - self.cpu0[name]) / wall * 100, 1),
                "peak_rss_mb": peak_rss_mb(pid),
            }
            for name, pid in self.pids.items()
        ]
        if self.redis is not None:
            try:
                info = self.redis.info()
                out.append(
                    {
                        "process": "redis",
                        "pid": int(info["process_id"]),
                        "cpu_percent": round((self._redis_cpu() - self.redis_cpu0) / wall * 100, 1),
                        "peak_rss_mb": peak_rss_mb(int(info["process_id"]))
                        or round(int(info["used_memory_rss"]) / 2**20, 1),
                    }
                )
            except redis.RedisError:
                pass
        return out


class Stack:
    """Start with `with Stack(...) as stack:`; see the module docstring."""

    def __init__(
        self,
        *,
        pppoe: int,
        log_dir: Path,
        hotspot: int = 0,
        static: int = 0,
        env: Mapping[str, str] | None = None,
        private_redis: bool = PRIVATE_REDIS,
        redis_args: Sequence[str] = (),
        web_env: Mapping[str, str] | None = None,
        sentinel: bool = False,
    ) -> None:
        self.pppoe = pppoe
        self.hotspot = hotspot
        self.static = static
        self.log_dir = log_dir
        self.extra_env = dict(env or {})
        self.use_private_redis = private_redis
        self.redis_args = list(redis_args)
        self.web_env = dict(web_env or {})
        self._stack = ExitStack()
        self.private: PrivateRedis | None = None
        self.use_sentinel = sentinel
        self.sentinel: SentinelDeployment | None = None
        self.redis_url = REDIS_URL
        self.env: dict[str, str] = {}
        self.sim: SimProcess
        self.customers: list[dict[str, Any]] = []  # PPPoE customers ("id", "target", ...)
        self.queue_customers: list[dict[str, Any]] = []  # hotspot and static-IP customers
        self.control: CeleryProcess
        self.beat: CeleryProcess
        self.web: Uvicorn
        self.monitors: list[CeleryProcess] = []
        self.redis: redis.Redis
        self.http: httpx.Client

    def __enter__(self) -> Stack:
        try:
            self._start()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def _start(self) -> None:
        stack = self._stack
        self.log_dir.mkdir(parents=True, exist_ok=True)
        redis_env = {"REDIS_URL": self.redis_url}
        if self.use_sentinel:
            self.sentinel = SentinelDeployment(self.log_dir / "sentinel").start()
            stack.callback(self.sentinel.stop)
            redis_env = self.sentinel.env()
        elif self.use_private_redis:
            self.private = PrivateRedis(self.log_dir, extra_args=self.redis_args).start()
            stack.callback(self.private.stop)
            self.redis_url = self.private.url
            redis_env = {"REDIS_URL": self.redis_url}
        self.sim = SimProcess(
            "bench.engine_sim",
            ["--pppoe", str(self.pppoe), "--hotspot", str(self.hotspot), "--static", str(self.static)]
            + ["--password-env", PASSWORD_VAR],
            env={**os.environ, PASSWORD_VAR: ROUTER_PASSWORD},
        )
        stack.callback(self.sim.stop)
        url = stack.enter_context(migrated_schema(prefix="bench"))
        apply_env({**BASE_ENV, **self.extra_env, **redis_env, "DATABASE_URL": url})
        self.env = dict(os.environ)

        from tasks import runtime, sessions
        from tasks.hub import close_hub

        self.redis = self.client(socket_timeout=10)
        self.redis.flushdb()
        stack.callback(self._flush)
        stack.callback(sessions.dispose)  # before the schema drop (callbacks run in reverse)
        stack.callback(close_hub)
        stack.callback(runtime.close)
        seeded = seed_customers(url, self.sim)
        self.customers = [c for c in seeded.values() if c["service_type"] == "pppoe"]
        self.queue_customers = [c for c in seeded.values() if c["service_type"] in ("hotspot", "static_ip")]
        self.control = worker(self.env, self.log_dir, queues="default", concurrency=2, name="bench-control")
        stack.callback(self.control.stop)
        self.beat = beat(self.env, self.log_dir)
        stack.callback(self.beat.stop)
        self.web = Uvicorn({**self.env, **self.web_env}, self.log_dir / "web.log")
        stack.callback(self.web.stop)
        self.control.start()
        self.beat.start()
        self.web.start()
        self.control.wait_ready(timeout=60)
        self.beat.wait_ready(timeout=60)
        self.web.wait_ready(timeout=60)
        self.http = httpx.Client(
            base_url=self.web.url, headers={"Authorization": f"Bearer {API_TOKEN}"}, timeout=120
        )
        stack.callback(self.http.close)
        stack.callback(self.stop_monitors)

    def client(self, socket_timeout: float = 5.0, socket_connect_timeout: float = 2.0) -> redis.Redis:
        """A new client of the stack's Redis, as its processes reach it (plain or Sentinel)."""
        return redis_clients.sync_client(
            redis_clients.ClientOptions(
                socket_timeout=socket_timeout, socket_connect_timeout=socket_connect_timeout
            ),
            get_settings(),
        )

    def _flush(self) -> None:
        try:
            self.redis.flushdb()
        except redis.RedisError:
            pass  # a private server already gone: nothing left to clean

    # -- monitors workers ----------------------------------------------------------------

    def start_monitors(self, k: int, workers: int, extra: int = 0, tag: str = "") -> list[CeleryProcess]:
        """`workers` monitors workers sized for k monitors (README: 1.25 x, plus `extra`)."""
        share = math.ceil(k / workers)
        concurrency = share + max(extra + 8, share // 4)
        procs = [
            worker(
                self.env, self.log_dir, queues="monitors", concurrency=concurrency, name=f"bench-mon{tag}-{i}"
            )
            for i in range(workers)
        ]
        for proc in procs:
            proc.start()
        self.monitors.extend(procs)
        for proc in procs:
            proc.wait_ready(timeout=120)
        return procs

    def stop_monitors(self) -> None:
        for proc in self.monitors:
            proc.stop(timeout=30)
        self.monitors = []

    # -- reading the processes -----------------------------------------------------------

    def pids(self) -> dict[str, int]:
        out = {"web": self.web.proc.pid if self.web.proc else 0}
        for proc in self.monitors:
            if proc.alive():
                out[proc.name] = proc.pid
        out["control"] = self.control.pid
        out["beat"] = self.beat.pid
        out["simulator"] = self.sim.proc.pid
        return {k: v for k, v in out.items() if v}

    def meter(self, more: Mapping[str, int] | None = None) -> Meter:
        return Meter({**self.pids(), **(more or {})}, redis=self.redis)

    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.web.port}/ws"

    def ws_clients(self, filters: Sequence[Sequence[str] | Mapping[str, str] | None]) -> SimProcess:
        """The bench's WebSocket clients (bench.ws_clients) on this stack's web process:
        per client None (every customer), customer ids, or the query itself."""
        return SimProcess(
            "bench.ws_clients", config={"url": self.ws_url(), "token": API_TOKEN, "clients": list(filters)}
        )

    def clear_streams(self) -> None:
        """Drop the streams and stop keys (never the Celery keys: workers still run)."""
        for pattern in (keys.TRAFFIC_STREAMS_PATTERN, keys.SESSION_KEYS_PATTERN, keys.ROUTER_KEYS_PATTERN):
            batch = list(self.redis.scan_iter(match=pattern, count=1000))
            for i in range(0, len(batch), 500):
                self.redis.delete(*batch[i : i + 500])


@contextmanager
def interrupt_once() -> Iterator[None]:
    """SIGTERM or Ctrl-C interrupts once; a second one must not cut the clean-up short."""

    def handler(*_: object) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise KeyboardInterrupt

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, previous in old.items():
            signal.signal(sig, previous)


def base_settings() -> dict[str, Any]:
    """BASE_ENV as a results file records it: without the token and the env file's path."""
    return {k: v for k, v in BASE_ENV.items() if k not in ("ENV_FILE", "API_TOKEN")}


def run_main(main: Callable[[], int]) -> NoReturn:
    """A bench's `if __name__ == "__main__":`: exit with main()'s code; interrupted, with
    130 (everything it started was stopped on the way out)."""
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted: everything started was stopped", file=sys.stderr)
        sys.exit(130)
