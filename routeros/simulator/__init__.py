"""A RouterOS API router simulator speaking the real wire protocol (see shared/routeros-facts.md).

    with Simulator(SimulatorConfig(pppoe=50, hotspot=5, static=5)) as sim:
        librouteros.connect(host=sim.host, port=sim.port, username="admin", password="admin")

Behaviour the facts sheet marks UNVERIFIED is a SimulatorConfig option (defaults first):
- over_limit: the (max_sessions+1)-th connection per service is accepted then closed with no
  byte ("close"), reset ("reset"), or sent `!fatal too many sessions` ("fatal").
- drop_mode (also per drop_pppoe call): a monitor-traffic on a vanished <pppoe-…> interface gets
  `!trap =category=0 =message=no such item` + `!done` ("trap"), a bare `!done` ("done"), rows of
  zeros ("zeros") or silence ("stall"); zeros/stall streams follow the interface name and carry
  the new session's traffic once restore_pppoe() brings it back.
- failed_login: the socket stays open and a new /login may follow ("keep") or is closed ("close").
- pre_login: a non-/login command before login gets `!fatal not logged in` ("fatal") or
  `!trap =message=not logged in` until prelogin_max_commands ("trap").
- cancel_unknown: /cancel of an unknown tag gets `!done` ("done") or a trap first ("trap").
- queue_rate_unit: /queue/simple `rate` in bits/s ("bps") or bytes/s ("Bps").
- default_interval: monitor-traffic without =interval= streams once per second.
Other choices: every `!re` of one monitor cycle carries the same `.section`; `once` rows carry no
`.section`; `print =interval=` ends every cycle with `!done`; `!empty` from 7.18 on (also before
the `!done` of a cancelled listen that produced nothing); `/login` without arguments hands out a
challenge on every version, but a challenge response is only accepted before 6.45.1.
"""

from .config import SimulatorConfig
from .server import Simulator

__all__ = ["Simulator", "SimulatorConfig"]
