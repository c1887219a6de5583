"""A throw-away Redis Sentinel deployment: one master, one replica, three sentinels.

Debian's `redis-server` plays every part (`redis-server <conf> --sentinel` is what the
`redis-sentinel` command runs), each on a free localhost port, without persistence, each
logging to a file of its own. Sentinels declare the master down after
`down_after_ms` (small here, so a failover takes seconds) and agree on it with a quorum
of two. `kill_master()` is the fault; `wait_promoted()` waits for the replica to be
the master the sentinels name; `restart_old_master()` brings the killed server back,
which the sentinels turn into a replica of the new master.

The settings every process of a test or bench gets from `env()`: REDIS_SENTINELS and
REDIS_SENTINEL_MASTER (common/redis_clients.py), with REDIS_URL emptied.
"""

from __future__ import annotations

from pathlib import Path

import redis

from harness.polling import wait_for
from harness.process import LoggedProcess, free_port, spawn_logged
from harness.redis_server import answers, server_args

MASTER_NAME = "mymaster"


class RedisNode(LoggedProcess):
    """One data server of the deployment (no persistence: a restart comes back empty)."""

    def __init__(self, workdir: Path, name: str, replica_of: int | None = None) -> None:
        super().__init__(name, workdir / f"{name}.log")
        self.dir = workdir
        self.port = free_port()
        self.replica_of = replica_of

    def start(self, timeout: float = 10.0) -> RedisNode:
        assert not self.alive(), "already running"
        args = [*server_args(self.port, self.dir), "--dbfilename", f"{self.name}.rdb"]
        if self.replica_of is not None:
            args += ["--replicaof", "127.0.0.1", str(self.replica_of)]
        self.proc = spawn_logged(args, self.log_path, cwd=self.dir)
        wait_for(self._answers, timeout, what=f"{self.name} on port {self.port}")
        return self

    def _answers(self) -> bool:
        self.check_running()
        return answers(self.port)

    def client(self) -> redis.Redis:
        """A direct client of this server (not through Sentinel); the caller closes it."""
        return redis.Redis(port=self.port, socket_connect_timeout=1, socket_timeout=5)

    def role(self) -> str:
        """ "master" or "slave" (as ROLE says), "down" when it does not answer."""
        try:
            with self.client() as client:
                return str(client.execute_command("ROLE")[0], "ascii")
        except redis.RedisError:
            return "down"


class SentinelProcess(LoggedProcess):
    """One sentinel, monitoring the deployment's master under MASTER_NAME."""

    def __init__(
        self, workdir: Path, name: str, master_port: int, down_after_ms: int, failover_ms: int
    ) -> None:
        super().__init__(name, workdir / f"{name}.log")
        self.port = free_port()
        self.conf = workdir / f"{name}.conf"
        # A sentinel rewrites its configuration file (what it learnt): one file each.
        self.conf.write_text(
            "\n".join(
                [
                    f"port {self.port}",
                    "bind 127.0.0.1",
                    f"dir {workdir}",
                    f"sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} 2",
                    f"sentinel down-after-milliseconds {MASTER_NAME} {down_after_ms}",
                    f"sentinel failover-timeout {MASTER_NAME} {failover_ms}",
                    f"sentinel parallel-syncs {MASTER_NAME} 1",
                    "",
                ]
            )
        )
        self.dir = workdir

    def start(self, timeout: float = 10.0) -> SentinelProcess:
        self.proc = spawn_logged(["redis-server", str(self.conf), "--sentinel"], self.log_path, cwd=self.dir)
        wait_for(self._answers, timeout, what=f"{self.name} on port {self.port}")
        return self

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_connect_timeout=1, socket_timeout=2, decode_responses=True)

    def _answers(self) -> bool:
        self.check_running()
        return answers(self.port)

    def master_state(self) -> dict[str, object]:
        """What this sentinel knows of the master (SENTINEL MASTER), {} when it does not answer."""
        try:
            with self.client() as client:
                return dict(client.sentinel_master(MASTER_NAME))
        except redis.RedisError:
            return {}


class SentinelDeployment:
    """Master + replica + three sentinels. `start()` returns once the replica is in sync
    and every sentinel knows the replica and the two other sentinels (a failover needs a
    majority of them to elect a leader)."""

    def __init__(self, workdir: Path, *, down_after_ms: int = 1000, failover_ms: int = 5000) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.dir = workdir
        self.nodes = [RedisNode(workdir, "redis-a")]
        self.nodes.append(RedisNode(workdir, "redis-b", replica_of=self.nodes[0].port))
        self.sentinels = [
            SentinelProcess(workdir, f"sentinel-{i}", self.nodes[0].port, down_after_ms, failover_ms)
            for i in range(3)
        ]
        self.killed: RedisNode | None = None

    def start(self, timeout: float = 30.0) -> SentinelDeployment:
        for node in self.nodes:
            node.start()
        for sentinel in self.sentinels:
            sentinel.start()
        wait_for(self._in_sync, timeout, what="the replica to be in sync", step=0.1)
        wait_for(self._sentinels_ready, timeout, what="the sentinels to know each other", step=0.2)
        return self

    @property
    def sentinel_addresses(self) -> str:
        """REDIS_SENTINELS for this deployment."""
        return ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)

    def env(self, db: int = 0) -> dict[str, str]:
        """The settings that point a process at this deployment through Sentinel."""
        return {
            "REDIS_URL": "",
            "REDIS_SENTINELS": self.sentinel_addresses,
            "REDIS_SENTINEL_MASTER": MASTER_NAME,
            "REDIS_DB": str(db),
        }

    def master(self) -> RedisNode:
        """The node the sentinels name as master (by the first that answers)."""
        port = self.master_port()
        return next(n for n in self.nodes if n.port == port)

    def master_port(self) -> int:
        for sentinel in self.sentinels:
            try:
                with sentinel.client() as client:
                    addr = client.sentinel_get_master_addr_by_name(MASTER_NAME)
            except redis.RedisError:
                continue
            if addr:
                return int(addr[1])
        raise AssertionError("no sentinel names a master")

    def replica(self) -> RedisNode:
        port = self.master_port()
        return next(n for n in self.nodes if n.port != port)

    def _in_sync(self) -> bool:
        try:
            with self.master().client() as client:
                info = client.info("replication")
        except redis.RedisError:
            return False
        replica = info.get("slave0")
        return isinstance(replica, dict) and replica.get("state") == "online"

    def _sentinels_ready(self) -> bool:
        for sentinel in self.sentinels:
            state = sentinel.master_state()
            if int(str(state.get("num-slaves", 0))) < 1 or int(str(state.get("num-other-sentinels", 0))) < 2:
                return False
        return True

    def kill_master(self) -> RedisNode:
        """kill -9 the current master (no shutdown, nothing saved); returns it."""
        node = self.master()
        node.kill9()
        self.killed = node
        return node

    def wait_promoted(self, timeout: float = 30.0) -> RedisNode:
        """Wait until every sentinel names the surviving node and it answers as master."""
        assert self.killed is not None, "kill_master first"
        survivor = next(n for n in self.nodes if n is not self.killed)

        def promoted() -> bool:
            for sentinel in self.sentinels:
                try:
                    with sentinel.client() as client:
                        addr = client.sentinel_get_master_addr_by_name(MASTER_NAME)
                except redis.RedisError:
                    return False
                if not addr or int(addr[1]) != survivor.port:
                    return False
            return survivor.role() == "master"

        wait_for(promoted, timeout, what="the replica's promotion", step=0.1)
        return survivor

    def restart_old_master(self) -> RedisNode:
        """Start the killed node again (empty: no persistence), as a crashed master comes
        back: with its own configuration, a master until the sentinels say otherwise.
        Call it from the thread that started the deployment: a child dies with the thread
        that spawned it (harness.process.die_with_parent)."""
        node = self.killed
        assert node is not None, "kill_master first"
        node.replica_of = None
        node.start()
        return node

    def wait_old_master_replica(self, timeout: float = 45.0) -> RedisNode:
        """Wait until the sentinels have made the restarted node a replica, in sync."""
        node = self.killed
        assert node is not None, "kill_master and restart_old_master first"
        wait_for(lambda: node.role() == "slave", timeout, what=f"{node.name} to become a replica", step=0.2)
        wait_for(self._in_sync, timeout, what=f"{node.name} to be in sync", step=0.2)
        self.killed = None
        return node

    def stop(self) -> None:
        for proc in [*self.sentinels, *self.nodes]:
            proc.kill9()
