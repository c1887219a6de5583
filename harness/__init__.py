"""Real processes and services for the tests and the benchmarks (never shipped).

Both `tests/` and `bench/` start the same things: Celery workers and beat, uvicorn
serving web.app:app, private redis-servers, a throw-away migrated PostgreSQL schema,
customers seeded from the RouterOS simulator. They live here so that neither imports
the other (a bench must not pull in pytest fixtures or a conftest that changes the
environment on import). Nothing in this package changes os.environ when imported.

    process        die_with_parent (children die with the run), free_port, ROOT
    polling        wait_for (poll with a deadline)
    workers        CeleryProcess, worker(), beat()
    web            Uvicorn (web.app:app as web/__main__.py runs it)
    redis_server   PrivateRedis (a redis-server that may be killed, frozen or filled)
    receiver       Receiver (a webhook endpoint in a thread: every request, each key once)
    pg             migrated_schema (a throw-away schema migrated to head)
    seed           seed_customers from the simulator, apply_env, parse_ts
"""
