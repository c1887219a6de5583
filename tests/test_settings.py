"""settings.py: environment > .env > defaults, seed names, clear errors, masked secrets."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

import settings as settings_module
from settings import Secret, Settings, SettingsError, load_settings, unknown_variables


def _load(tmp_path: Path, env: dict[str, str], dotenv: str = "") -> Settings:
    env_file = tmp_path / ".env"
    env_file.write_text(dotenv)
    return load_settings(env, env_file)


def test_settings_defaults_without_environment(tmp_path: Path) -> None:
    s = _load(tmp_path, {})
    assert s.mikrotik_host == "127.0.0.1"
    assert s.mikrotik_port == 8728
    assert s.max_concurrent_monitors == 50
    assert s.enable_traffic_monitor is True
    assert s.redis_url == "redis://127.0.0.1:6379/0"
    assert s.database_url.startswith("sqlite:///")


def test_settings_environment_wins_over_dotenv(tmp_path: Path) -> None:
    s = _load(tmp_path, {"MAX_CONCURRENT_MONITORS": "7"}, "MAX_CONCURRENT_MONITORS=3\nMIKROTIK_PORT=8729\n")
    assert s.max_concurrent_monitors == 7
    assert s.mikrotik_port == 8729


def test_settings_dotenv_accepts_export_comments_and_quotes(tmp_path: Path) -> None:
    dotenv = "# seed file\nexport MIKROTIK_HOST=\"10.0.0.1\"\nMIKROTIK_USER='api'\n\nREDIS_ADDR=redis:6380\n"
    s = _load(tmp_path, {}, dotenv)
    assert (s.mikrotik_host, s.mikrotik_user) == ("10.0.0.1", "api")
    assert s.redis_url == "redis://redis:6380/0"


def test_settings_seed_db_names_build_postgres_url(tmp_path: Path) -> None:
    env = {"DB_HOST": "db", "DB_PORT": "5433", "DB_USER": "isp", "DB_PASSWORD": "p@ss:w", "DB_NAME": "noc"}
    s = _load(tmp_path, env)
    assert s.database_url == "postgresql+psycopg2://isp:p%40ss%3Aw@db:5433/noc"


def test_settings_urls_win_over_pieces(tmp_path: Path) -> None:
    env = {
        "DB_HOST": "db",
        "DATABASE_URL": "postgresql://u@h/x",
        "REDIS_ADDR": "a:1",
        "REDIS_URL": "redis://b:2/3",
    }
    s = _load(tmp_path, env)
    assert s.database_url == "postgresql://u@h/x"
    assert s.redis_url == "redis://b:2/3"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MAX_CONCURRENT_MONITORS", "many"),
        ("MAX_CONCURRENT_MONITORS", "0"),
        ("MIKROTIK_PORT", "70000"),
        ("ENABLE_TRAFFIC_MONITOR", "perhaps"),
        ("REDIS_ADDR", "nohost"),
        ("MIKROTIK_TLS_MODE", "maybe"),
        ("MONITOR_LEASE_TTL", "soon"),
        ("DATABASE_URL", "mysql://u@h/x"),
        ("MIKROTIK_ENCODING", "utf-16"),
        ("MONITOR_DENIED_STOP_AFTER", "never"),
    ],
)
def test_settings_malformed_value_names_the_variable(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        _load(tmp_path, {name: value})


def test_settings_malformed_url_does_not_echo_password(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as info:
        _load(tmp_path, {"DATABASE_URL": "mysql://u:hunter2@h/x"})
    assert "hunter2" not in str(info.value)


def test_settings_secrets_never_printed(tmp_path: Path) -> None:
    env = {"MIKROTIK_PASS": "hunter2", "DB_PASSWORD": "pgsecret", "DB_HOST": "db"}
    s = _load(tmp_path, env)
    assert s.mikrotik_pass.get() == "hunter2"
    text = repr(s) + str(s)
    for secret in ("hunter2", "pgsecret"):
        assert secret not in text
    assert str(Secret("x")) == "Secret('**********')"


def test_settings_malformed_dotenv_line_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="expected KEY=VALUE"):
        _load(tmp_path, {}, "this is not a setting\n")


def test_settings_dotenv_reads_escapes_and_inline_comments(tmp_path: Path) -> None:
    dotenv = 'MIKROTIK_PASS="pa\\"ss word"\nMIKROTIK_USER=api # the API user\n'
    s = _load(tmp_path, {}, dotenv)
    assert s.mikrotik_pass.get() == 'pa"ss word'
    assert s.mikrotik_user == "api"


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"MONITOR_LEASE_TTL": "4"}, ("MONITOR_RENEW_INTERVAL", "MONITOR_LEASE_TTL")),
        (
            {"MONITOR_LEASE_TTL": "6", "MONITOR_RENEW_INTERVAL": "1", "RECONCILE_INTERVAL": "6"},
            ("RECONCILE_INTERVAL", "MONITOR_LEASE_TTL"),
        ),
        ({"DB_MAX_IDLE_CONNS": "20", "DB_MAX_OPEN_CONNS": "5"}, ("DB_MAX_IDLE_CONNS", "DB_MAX_OPEN_CONNS")),
    ],
)
def test_settings_contradicting_pair_names_both_variables(
    tmp_path: Path, env: dict[str, str], names: tuple[str, str]
) -> None:
    with pytest.raises(SettingsError) as info:
        _load(tmp_path, env)
    for name in names:
        assert name in str(info.value)


def test_settings_seed_variable_set_builds_urls_and_pools(tmp_path: Path) -> None:
    seed_env = {
        "MIKROTIK_HOST": "192.168.1.1",
        "MIKROTIK_PORT": "8728",
        "MIKROTIK_USER": "admin",
        "MIKROTIK_PASS": "yourpassword",
        "REDIS_ADDR": "redis.local:6380",
        "REDIS_PASS": "r3d!s",
        "REDIS_DB": "3",
        "WS_PORT": "9090",
        "DB_HOST": "db.local",
        "DB_PORT": "5433",
        "DB_USER": "postgres",
        "DB_PASSWORD": "yourpassword",
        "DB_NAME": "mikrobill_traffic",
        "DB_SSLMODE": "require",
        "DB_MAX_IDLE_CONNS": "4",
        "DB_MAX_OPEN_CONNS": "12",
        "ENABLE_TRAFFIC_MONITOR": "true",
        "MAX_CONCURRENT_MONITORS": "50",
    }
    s = _load(tmp_path, {}, "".join(f"{k}={v}\n" for k, v in seed_env.items()))
    assert s.redis_url == "redis://:r3d%21s@redis.local:6380/3"
    assert (
        s.database_url
        == "postgresql+psycopg2://postgres:yourpassword@db.local:5433/mikrobill_traffic?sslmode=require"
    )
    assert (s.db_max_open_conns, s.db_max_idle_conns) == (12, 4)
    assert s.http_port == 9090
    assert (s.mikrotik_host, s.mikrotik_port, s.mikrotik_user) == ("192.168.1.1", 8728, "admin")
    assert s.mikrotik_pass.get() == "yourpassword"
    assert s.max_concurrent_monitors == 50 and s.enable_traffic_monitor is True
    assert unknown_variables({}, tmp_path / ".env") == []


def test_settings_web_port_wins_over_seed_ws_port(tmp_path: Path) -> None:
    assert _load(tmp_path, {}).http_port == 8081
    assert _load(tmp_path, {"WS_PORT": "9090", "WEB_PORT": "8000"}).http_port == 8000


def test_settings_unknown_lookalike_variable_is_named(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("MIKROTIK_USE_TLS=true\nREDIS_POOL_SIZE=5\nPATH_EXTRA=x\n")
    assert unknown_variables({"DB_TIMEZONE": "UTC"}, env_file) == [
        "DB_TIMEZONE",
        "MIKROTIK_USE_TLS",
        "REDIS_POOL_SIZE",
    ]


def test_settings_every_variable_is_in_the_readme_table() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    table = readme.split("## Settings", 1)[1].split("\n## ", 1)[0]
    missing = [spec.var for spec in settings_module.SPECS if f"`{spec.var}`" not in table]
    assert not missing, f"README's settings table lacks {missing}"


def test_settings_each_variable_is_declared_once() -> None:
    names = [spec.var for spec in settings_module.SPECS]
    assert len(names) == len(set(names)) == len(fields(Settings))


def test_settings_short_api_token_is_refused_naming_it(tmp_path: Path) -> None:
    with pytest.raises(
        SettingsError, match=r"API_TOKEN must be at least 32 characters \(got 5\).*mtmon token"
    ):
        _load(tmp_path, {"API_TOKEN": "s3cr3"})
    with pytest.raises(SettingsError) as refused:
        _load(tmp_path, {}, "API_TOKEN=short-but-in-dotenv\n")
    assert "short-but-in-dotenv" not in str(refused.value)
    assert _load(tmp_path, {"API_TOKEN": "x" * 32}).api_token.get() == "x" * 32


def test_settings_wildcard_origins_with_a_token_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="ALLOWED_ORIGINS=\\* cannot be combined with API_TOKEN"):
        _load(tmp_path, {"API_TOKEN": "t" * 40, "ALLOWED_ORIGINS": "https://noc.example.net,*"})
    assert _load(tmp_path, {"ALLOWED_ORIGINS": "*"}).allowed_origins == ("*",)  # open mode: nothing to steal


def test_settings_origins_accept_null_and_hosts_are_names_only(tmp_path: Path) -> None:
    s = _load(
        tmp_path,
        {
            "ALLOWED_ORIGINS": "null, https://noc.example.net/",
            "TRUSTED_HOSTS": "NOC.example.net,*.isp.example",
        },
    )
    assert s.allowed_origins == ("null", "https://noc.example.net")
    assert s.trusted_hosts == ("noc.example.net", "*.isp.example")
    for bad in ("https://noc.example.net", "noc.example.net:8081", "*", "a.*.example"):
        with pytest.raises(SettingsError, match="TRUSTED_HOSTS"):
            _load(tmp_path, {"TRUSTED_HOSTS": bad})


def test_settings_safe_defaults(tmp_path: Path) -> None:
    s = _load(tmp_path, {})
    assert (s.web_host, s.web_allow_open, s.api_token.get(), s.allowed_origins) == (
        "127.0.0.1",
        False,
        "",
        (),
    )
    assert (s.auth_max_failures, s.auth_failure_window, s.ws_max_connections) == (10, 60.0, 1000)
    assert s.cookie_secure is False and s.trusted_hosts == ()


def test_settings_router_watch_is_on_every_two_seconds_by_default(tmp_path: Path) -> None:
    s = _load(tmp_path, {})
    assert (s.router_watch, s.router_watch_interval, s.router_top_n) == (True, 2.0, 50)
    s = _load(tmp_path, {"ROUTER_WATCH": "false", "ROUTER_WATCH_INTERVAL": "1", "ROUTER_TOP_N": "20"})
    assert (s.router_watch, s.router_watch_interval, s.router_top_n) == (False, 1.0, 20)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ROUTER_WATCH_INTERVAL", "0.5"),
        ("ROUTER_WATCH_INTERVAL", "fast"),
        ("ROUTER_TOP_N", "0"),
        ("ROUTER_WATCH", "maybe"),
    ],
)
def test_settings_router_watch_refuses_values_naming_them(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        _load(tmp_path, {name: value})
