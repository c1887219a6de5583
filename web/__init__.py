"""The HTTP layer: a Starlette app (web.app) over the engine's service functions.

app.py       create_app(): routes and middleware assembled in one place each, lifespan
state.py     what the lifespan opens (Redis client, the process's database engine, thread limiter)
declare.py   endpoint declarations -> request parsing (4xx) and the OpenAPI document
schemas.py   the JSON Schemas of bodies and answers
errors.py    the one table: exception -> HTTP status and code
routes/      one module per resource; queries/ their database work and JSON (cli/ too)
readiness.py the /ready checks
page.py      the dashboard: its page at / and static/ (plain JS modules, vendored uPlot)
"""
