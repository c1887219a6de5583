"""Router rows to packages and customer records: directions, units, what counts as a customer."""

from __future__ import annotations

import pytest

from models.router_tables import RouterSnapshot, parse_up_down, plan_import


@pytest.mark.parametrize(
    ("text_value", "expected"),
    [
        ("5M/10M", (5_000_000, 10_000_000)),
        ("512k/1M 1M/2M 384k/768k 8/8", (512_000, 1_000_000)),
        ("10M", (10_000_000, 10_000_000)),
        ("1.5M/3M", (1_500_000, 3_000_000)),
        ("5000000/10000000", (5_000_000, 10_000_000)),
        ("0/0", None),
        ("", None),
        ("fast/slow", None),
    ],
)
def test_router_tables_rate_limit_read_as_upload_download(
    text_value: str, expected: tuple[int, int] | None
) -> None:
    assert parse_up_down(text_value) == expected


def test_router_tables_only_single_host_static_queues_are_customers() -> None:
    snapshot = RouterSnapshot(
        simple_queues=[
            {"name": "lan-total", "target": "10.0.0.0/24", "dynamic": "false", "max-limit": "0/0"},
            {"name": "two-hosts", "target": "10.0.0.5/32,10.0.0.6/32", "dynamic": "false"},
            {"name": "<hotspot-sari>", "target": "10.5.0.9/32", "dynamic": "true"},
            {
                "name": "toko",
                "target": "10.0.0.7/32",
                "dynamic": "false",
                "max-limit": "2M/8M",
                "comment": "Toko Maju",
            },
        ]
    )
    plan = plan_import(snapshot, known={})
    assert [(r.username, r.name, r.static_ip, r.package) for r in plan.records] == [
        ("toko", "Toko Maju", "10.0.0.7", "queue-2M/8M")
    ]
    assert [(p.name, p.download_bps, p.upload_bps) for p in plan.packages] == [
        ("queue-2M/8M", 8_000_000, 2_000_000)
    ]
    assert plan.skipped == 2 and len(plan.warnings) == 2


def test_router_tables_profiles_become_packages_and_secrets_pppoe_customers() -> None:
    snapshot = RouterSnapshot(
        ppp_profiles=[
            {"name": "default"},
            {"name": "home-10M", "rate-limit": "5M/10M"},
        ],
        ppp_secrets=[
            {
                "name": "budi",
                "password": "pw",
                "profile": "home-10M",
                "service": "pppoe",
                "disabled": "false",
                "comment": "Budi Santoso",
            },
            {"name": "ani", "password": "pw2", "profile": "default", "service": "any", "disabled": "true"},
            {"name": "vpn-office", "password": "pw3", "profile": "default", "service": "l2tp"},
        ],
        hotspot_users=[
            {"name": "default-trial", "profile": "default", "default": "true"},
            {"name": "sari", "password": "hs", "profile": "home-10M", "mac-address": "02:AA:BB:CC:DD:EE"},
        ],
    )
    plan = plan_import(snapshot, known={})
    assert [(p.name, p.download_bps, p.upload_bps) for p in plan.packages] == [
        ("home-10M", 10_000_000, 5_000_000)
    ]
    assert [(r.username, r.name, r.service_type, r.package, r.status) for r in plan.records] == [
        ("budi", "Budi Santoso", "pppoe", "home-10M", "active"),
        ("ani", "ani", "pppoe", None, "inactive"),
        ("sari", "sari", "hotspot", None, "active"),
    ]
    assert plan.skipped == 1  # the l2tp secret is not a PPPoE customer
    assert plan.records[2].hotspot_mac_address == "02:AA:BB:CC:DD:EE"
