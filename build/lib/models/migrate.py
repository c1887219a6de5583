"""Schema migrations without remembering Alembic's flags.

`python -m models.migrate` = `alembic upgrade head` from the repository root;
`--sql` prints the script instead (for operators who apply SQL by hand),
`--downgrade REV` goes back, `--stamp 0001` adopts a database built from the
seed's 001_create_customers.sql (then run it again without --stamp). Tests and
the demo call upgrade(url) / stamp(url, rev) directly.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from alembic import command
from alembic.config import Config

ALEMBIC_INI = Path(__file__).resolve().parent.parent / "alembic.ini"
# What PostgreSQL says when revision 0001 runs on a database the seed's script built.
SEED_BUILT = 'type "service_type" already exists'


def find_alembic_ini() -> Path:
    """The checkout's alembic.ini; when models is pip-installed (an image), the one in
    the working directory, which is where the Dockerfile copies it."""
    for candidate in (ALEMBIC_INI, Path.cwd() / "alembic.ini"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"alembic.ini not found next to the models package ({ALEMBIC_INI.parent}) "
        "or in the current directory; run from the repository root"
    )


def alembic_config(url: str | None = None, *, quiet: bool = True) -> Config:
    """Config for the repository's migrations; `url` wins over settings when given."""
    config = Config(str(find_alembic_ini()))
    if url is not None:
        config.attributes["url"] = url
    # In-process callers (tests, workers) own their logging; leave it alone.
    config.attributes["skip_logging_config"] = quiet
    return config


def upgrade(url: str | None = None, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str | None = None, revision: str = "base") -> None:
    command.downgrade(alembic_config(url), revision)


def stamp(url: str | None = None, revision: str = "0001") -> None:
    """Record `revision` as applied without running it: a seed-built database is at 0001."""
    command.stamp(alembic_config(url), revision)


def main(argv: list[str] | None = None, *, own_logging: bool = False) -> int:
    """The command; `own_logging` (the real command line) lets alembic.ini configure
    logging. Called in-process (tests), the caller's logging is left alone: alembic's
    handlers would keep writing to whatever stderr was when they were made."""
    parser = argparse.ArgumentParser(
        prog="python -m models.migrate",
        description="Bring the database schema to the latest revision (alembic upgrade head).",
    )
    parser.add_argument("--database-url", help="default: settings (DATABASE_URL or DB_*)")
    parser.add_argument("--sql", action="store_true", help="print the SQL instead of running it")
    parser.add_argument("--revision", default="head", help="target revision (default head)")
    parser.add_argument("--downgrade", metavar="REV", help="downgrade to REV (e.g. base) instead")
    parser.add_argument(
        "--stamp",
        metavar="REV",
        help="record REV as applied without running it (0001 for a database built from the seed's SQL)",
    )
    args = parser.parse_args(argv)
    try:
        config = alembic_config(args.database_url, quiet=not own_logging)
        if args.stamp:
            command.stamp(config, args.stamp, sql=args.sql)
        elif args.downgrade:
            target = f"{args.revision}:{args.downgrade}" if args.sql else args.downgrade
            command.downgrade(config, target, sql=args.sql)
        else:
            command.upgrade(config, args.revision, sql=args.sql)
    except Exception as exc:
        # The URL may hold a password; name the failure, not the connection string.
        detail = _first_line(exc)
        print(f"error: migration failed: {type(exc).__name__}: {detail}", file=sys.stderr)
        if SEED_BUILT in detail:
            print(
                "hint: this database was built from the seed's 001_create_customers.sql; adopt it with "
                "`python -m models.migrate --stamp 0001`, then run `python -m models.migrate` again",
                file=sys.stderr,
            )
        return 1
    return 0


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else ""


if __name__ == "__main__":
    raise SystemExit(main(own_logging=True))
