"""Seeded generation of the simulated ISP's packages and customers."""

from __future__ import annotations

import random
import string
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["Package", "Customer", "PACKAGES", "generate_customers"]


@dataclass(frozen=True)
class Package:
    name: str
    download_bps: int
    upload_bps: int

    @property
    def rate_limit(self) -> str:
        """RouterOS rate-limit "rx/tx" from the router's view = customer upload/download."""
        return f"{_si(self.upload_bps)}/{_si(self.download_bps)}"

    def to_json(self) -> dict[str, str | int]:
        return {"name": self.name, "download_bps": self.download_bps, "upload_bps": self.upload_bps}


PACKAGES = (
    Package("home-10M", 10_000_000, 5_000_000),
    Package("home-20M", 20_000_000, 10_000_000),
    Package("home-50M", 50_000_000, 20_000_000),
    Package("biz-100M", 100_000_000, 50_000_000),
)
_PACKAGE_WEIGHTS = (0.35, 0.35, 0.2, 0.1)

_FIRST = (
    "alice",
    "bob",
    "carol",
    "dave",
    "erin",
    "frank",
    "grace",
    "heidi",
    "ivan",
    "judy",
    "mallory",
    "nina",
    "oscar",
    "peggy",
    "rupert",
    "sybil",
    "trent",
    "victor",
    "walter",
    "amara",
    "bilal",
    "chen",
    "dara",
    "emeka",
    "fatima",
    "goran",
    "hana",
    "ines",
    "jamal",
    "kofi",
    "lena",
    "mateo",
    "noor",
    "olga",
    "priya",
    "quinn",
    "rosa",
    "sanjay",
    "tariq",
    "uma",
    "yusuf",
    "zara",
)
_LAST = (
    "smith",
    "okafor",
    "garcia",
    "nguyen",
    "kowalski",
    "haddad",
    "silva",
    "mensah",
    "ivanova",
    "tanaka",
    "murphy",
    "rossi",
    "novak",
    "khan",
    "dubois",
    "larsen",
    "moreno",
    "otieno",
    "pereira",
    "schmidt",
    "yilmaz",
    "zhou",
    "banda",
    "costa",
    "fischer",
)


def _si(bps: int) -> str:
    for div, unit in ((1_000_000_000, "G"), (1_000_000, "M"), (1_000, "k")):
        if bps >= div and bps % div == 0:
            return f"{bps // div}{unit}"
    return str(bps)


@dataclass
class Customer:
    index: int
    service_type: str  # "pppoe" | "hotspot" | "static_ip"
    username: str
    name: str
    phone: str
    email: str
    package: Package
    address: str  # the customer's IPv4 address
    mac_address: str
    password: str = field(repr=False)

    @property
    def target(self) -> str:
        if self.service_type == "pppoe":
            return f"<pppoe-{self.username}>"
        if self.service_type == "hotspot":
            return f"<hotspot-{self.username}>"
        return f"static-{self.username}"

    def to_json(self) -> dict[str, str | None]:
        pppoe = self.service_type == "pppoe"
        hotspot = self.service_type == "hotspot"
        static = self.service_type == "static_ip"
        return {
            "service_type": self.service_type,
            "username": self.username,
            "name": self.name,
            "phone": self.phone,
            "email": self.email,
            "pppoe_username": self.username if pppoe else None,
            "pppoe_password": self.password if pppoe else None,
            "pppoe_profile": self.package.name if pppoe else None,
            "hotspot_username": self.username if hotspot else None,
            "hotspot_password": self.password if hotspot else None,
            "hotspot_mac_address": self.mac_address if hotspot else None,
            "static_ip": self.address if static else None,
            "mac_address": self.mac_address,
            "package": self.package.name,
            "target": self.target,
        }


def _address(second_octet: int, i: int) -> str:
    n = i + 2  # skip .0 and the gateway .1
    return f"10.{second_octet + n // 65536}.{(n // 256) % 256}.{n % 256}"


def generate_customers(
    seed: int, pppoe: int, hotspot: int, static: int, pppoe_names: Sequence[tuple[str, str]] = ()
) -> list[Customer]:
    """`pppoe_names`: extra PPPoE customers (username, full name), after the generated
    ones; the generated ones are the same with or without them."""
    rng = random.Random(f"customers-{seed}")
    used: set[str] = set()
    customers: list[Customer] = []
    alphabet = string.ascii_letters + string.digits

    def one(kind: str, i: int, second_octet: int) -> Customer:
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        username = f"{first}.{last}"
        n = 2
        while username in used:
            username = f"{first}.{last}{n}"
            n += 1
        used.add(username)
        mac = "02:" + ":".join(f"{rng.randrange(256):02X}" for _ in range(5))
        return Customer(
            index=len(customers),
            service_type=kind,
            username=username,
            name=f"{first.title()} {last.title()}",
            phone="+2547" + "".join(rng.choice(string.digits) for _ in range(8)),
            email=f"{username}@example.net",
            package=rng.choices(PACKAGES, _PACKAGE_WEIGHTS)[0],
            address=_address(second_octet, i),
            mac_address=mac,
            password="".join(rng.choice(alphabet) for _ in range(12)),
        )

    for i in range(pppoe):
        customers.append(one("pppoe", i, 64))
    for i in range(hotspot):
        customers.append(one("hotspot", i, 5))
    for i in range(static):
        customers.append(one("static_ip", i, 20))
    for i, (username, name) in enumerate(pppoe_names):
        if username in used:
            raise ValueError(f"pppoe_names: username {username!r} is already taken")
        used.add(username)
        index = len(customers)
        customers.append(
            Customer(
                index=index,
                service_type="pppoe",
                username=username,
                name=name,
                phone="+2547" + "".join(rng.choice(string.digits) for _ in range(8)),
                email=f"customer{index}@example.net",  # the name may not be an address
                package=rng.choices(PACKAGES, _PACKAGE_WEIGHTS)[0],
                address=_address(64, pppoe + i),
                mac_address="02:" + ":".join(f"{rng.randrange(256):02X}" for _ in range(5)),
                password="".join(rng.choice(alphabet) for _ in range(12)),
            )
        )
    return customers
