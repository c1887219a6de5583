"""settings.py: environment > .env > defaults, seed names, clear errors, masked secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from settings import Secret, SettingsError, load_settings


def _load(tmp_path: Path, env: dict[str, str], dotenv: str = "") -> object:
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
