"""A RouterOS API router simulator speaking the real wire protocol (docs/routeros.md).

    with Simulator(SimulatorConfig(pppoe=50, hotspot=5, static=5)) as sim:
        librouteros.connect(host=sim.host, port=sim.port, username="admin", password="admin")

Behaviour that docs/routeros.md marks unverified is a SimulatorConfig option or a runtime
switch; the full table is in its section "Unverified behaviour and simulator options":
tag_position, over_limit, failed_login, pre_login, drop_mode, cancel_unknown,
queue_rate_unit, default_interval, ping_summary_row, denied_commands; and on the Simulator, for
reliability tests: deny_commands(), refuse_logins(), refuse_connections(),
hold_foreign_sessions(), besides drop_pppoe()/restore_pppoe(),
drop_hotspot()/restore_hotspot(), close_connections(), send_fatal(), stall() and
set_latency(); saturate()/unsaturate() drive a customer to its plan (the RTT of its
/ping rises with it). command_counts() tells what clients cost the router, command by command.
"""

from .config import SimulatorConfig
from .server import Simulator

__all__ = ["Simulator", "SimulatorConfig"]
