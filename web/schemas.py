"""JSON Schemas of every request body and response, by name (OpenAPI components).

Request bodies are validated against these (web.declare) and responses are
checked against them in the tests, so they are the contract, not commentary.
Column lengths come from the models, so a widened column widens the schema.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import String

from models import Customer
from models.alert_rule import PARAMS, SCOPE_MAX, SCOPE_PATTERN
from models.enums import (
    ActualState,
    AlertEventType,
    AlertKind,
    AlertState,
    CustomerStatus,
    DeliveryState,
    ServiceType,
    WebhookFormat,
)
from models.session_report import VERDICTS
from models.webhook import SECRET_MAX, SECRET_MIN, URL_MAX, URL_PATTERN
from settings import TlsMode

Schema = dict[str, Any]


def ref(name: str) -> Schema:
    assert name in SCHEMAS, f"no schema named {name!r}"
    return {"$ref": f"#/components/schemas/{name}"}


def _ref(name: str) -> Schema:
    # For use while SCHEMAS is being built (the assertion in ref() needs it finished).
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Schema) -> Schema:
    kind = schema["type"]
    return {**schema, "type": [*(kind if isinstance(kind, list) else [kind]), "null"]}


def _obj(properties: dict[str, Schema], required: list[str] | None = None, *, closed: bool = True) -> Schema:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
        "additionalProperties": not closed,
    }


def _length(column: str) -> int:
    kind = Customer.__table__.c[column].type
    assert isinstance(kind, String) and kind.length is not None, column
    return kind.length


def _secret_length(column: str) -> int:
    length = getattr(Customer.__table__.c[column].type, "length", None)
    assert isinstance(length, int), column
    return length


UUID: Schema = {"type": "string", "format": "uuid"}
DATETIME: Schema = {"type": "string", "format": "date-time"}
TEXT: Schema = {"type": "string"}
INT: Schema = {"type": "integer"}
STATE: Schema = {"type": "string", "enum": [s.value for s in ActualState]}
NUMBER: Schema = {"type": "number"}


def _text(column: str) -> Schema:
    return {"type": "string", "maxLength": _length(column)}


# What the data layer accepts (models.validation), said as patterns so that a request the
# schema allows is never refused by the model, and one it forbids is refused up front.
# Not only whitespace, in the data layer's sense (str.strip): the characters are listed
# because regex engines disagree on what \s means (ECMA-262's and Python's differ).
_WHITESPACE = "".join(f"\\u{code:04x}" for code in range(0x10000) if chr(code).isspace())
NOT_BLANK = f"[^{_WHITESPACE}]"
_HEX2 = "[0-9A-Fa-f]{2}"
MAC_PATTERN = "|".join(
    (
        rf"^(?:{_HEX2}:){{5}}{_HEX2}$",
        rf"^(?:{_HEX2}-){{5}}{_HEX2}$",
        r"^[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}$",
        r"^[0-9A-Fa-f]{6}[:-][0-9A-Fa-f]{6}$",
        r"^[0-9A-Fa-f]{12}$",
    )
)
_OCTET = "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
IPV4_PATTERN = rf"^(?:{_OCTET}\.){{3}}{_OCTET}(?:/(?:3[0-2]|[12]?[0-9]))?$"


def _required_text(column: str) -> Schema:
    return {**_text(column), "minLength": 1, "pattern": NOT_BLANK, "description": "not blank"}


def _mac() -> Schema:
    return {
        "type": ["string", "null"],
        "pattern": MAC_PATTERN,
        "description": "a MAC address: aa:bb:cc:dd:ee:ff, aa-bb-..., aabb.ccdd.eeff or aabbccddeeff",
    }


def _ip() -> Schema:
    return {
        "anyOf": [
            {"type": "string", "pattern": IPV4_PATTERN},
            {"type": "string", "format": "ipv6"},
            {"type": "null"},
        ],
        "description": "an IPv4 address (optionally with a /prefix) or an IPv6 address",
    }


_CUSTOMER_WRITABLE: dict[str, Schema] = {
    "mikrotik_id": _required_text("mikrotik_id"),
    "username": _required_text("username"),
    "name": _required_text("name"),
    "service_type": {"type": "string", "enum": [s.value for s in ServiceType]},
    "status": {"type": "string", "enum": [s.value for s in CustomerStatus]},
    "phone": nullable(_text("phone")),
    "email": nullable(_text("email")),
    "pppoe_username": nullable(_text("pppoe_username")),
    "pppoe_password": {
        **nullable({"type": "string", "maxLength": _secret_length("pppoe_password")}),
        "writeOnly": True,
    },
    "pppoe_profile": nullable(_text("pppoe_profile")),
    "hotspot_username": nullable(_text("hotspot_username")),
    "hotspot_password": {
        **nullable({"type": "string", "maxLength": _secret_length("hotspot_password")}),
        "writeOnly": True,
    },
    "hotspot_mac_address": _mac(),
    "static_ip": _ip(),
    "assigned_ip": _ip(),
    "mac_address": _mac(),
    "package_id": nullable({"type": "integer", "minimum": 1, "maximum": 2**31 - 1}),
    "interface_name": nullable(_text("interface_name")),
    "queue_name": nullable(_text("queue_name")),
}

_CUSTOMER_REQUIRED = ["mikrotik_id", "username", "name", "service_type"]

# What a customer looks like in answers: passwords replaced by has_* flags, addresses as
# the database prints them.
_CUSTOMER_READ: dict[str, Schema] = {
    "id": UUID,
    **{k: v for k, v in _CUSTOMER_WRITABLE.items() if not k.endswith("_password")},
    **{k: nullable(TEXT) for k in ("hotspot_mac_address", "static_ip", "assigned_ip", "mac_address")},
    "has_pppoe_password": {"type": "boolean"},
    "has_hotspot_password": {"type": "boolean"},
    "last_online": nullable(DATETIME),
    "package": {"oneOf": [_ref("Package"), {"type": "null"}]},
    "monitored": {"type": "boolean", "description": "the customer has an open monitor session"},
    "monitor_state": {**nullable(STATE), "enum": [*STATE["enum"], None]},
    "created_at": DATETIME,
    "updated_at": DATETIME,
}

_CHECK = _obj(
    {
        "ok": {"type": "boolean"},
        "detail": TEXT,
    },
    ["ok", "detail"],
    closed=False,
)

_NUMBER_OR_NULL: Schema = {"type": ["number", "null"]}

# What every router-view answer starts with (web/queries/router_view.py).
_ROUTER_VIEW_HEAD: dict[str, Schema] = {
    "status": {"const": "ok"},
    "router": {**TEXT, "description": "the router's id"},
    "router_name": TEXT,
    "available": {"type": "boolean", "description": "the router's watch has a current view"},
    "reason": {**nullable(TEXT), "description": "why not, when not available"},
    "timestamp": {**nullable(DATETIME), "description": "when the watch wrote the view (Redis clock)"},
    "age_s": {**nullable({"type": "number"}), "description": "seconds since then"},
}

_SESSION_FIELDS: dict[str, Schema] = {
    "session": {"type": "string", "enum": ["pppoe", "hotspot"]},
    "name": {**TEXT, "description": "the login the router shows"},
    "address": nullable(TEXT),
    "caller_id": {**nullable(TEXT), "description": "PPPoE caller-id or hotspot MAC address"},
    "uptime_s": nullable(INT),
    "download_bps": {**nullable(INT), "description": "this cycle's rate; null before the second cycle"},
    "upload_bps": nullable(INT),
}

# -- alerts (models/alert_rule.py, models/webhook.py, models/alert_delivery.py) -----------------


def _param_schema(shape: Any) -> Schema:
    if isinstance(shape, tuple):
        return {"type": "string", "enum": list(shape)}
    bound = "exclusiveMinimum" if shape.low_exclusive else "minimum"
    words = (
        f"must be {'above' if shape.low_exclusive else 'at least'} {shape.low:g} and at most {shape.high:g}"
    )
    return {
        "type": "integer" if shape.integer else "number",
        bound: shape.low if not shape.integer else int(shape.low),
        "maximum": shape.high if not shape.integer else int(shape.high),
        "description": words,
    }


def _params_schema(kind: AlertKind) -> Schema:
    declared = PARAMS[kind]
    schema = _obj(
        {name: _param_schema(shape) for name, (shape, _) in declared.items()},
        [name for name, (_, required) in declared.items() if required],
    )
    if kind is AlertKind.RTT:
        schema["anyOf"] = [{"required": ["p95_ms"]}, {"required": ["loss_pct"]}]
        schema["description"] = "p95_ms, loss_pct or both, and window_s"
    return schema


# Each kind's parameters, checked as `params` when the body names the kind; the data
# layer checks them again against the stored kind (a PATCH may change either alone).
_PARAMS_BY_KIND: list[Schema] = [
    {
        "if": {"properties": {"kind": {"const": kind.value}}, "required": ["kind"]},
        "then": {"properties": {"params": _params_schema(kind)}},
    }
    for kind in AlertKind
]

_SCOPE: Schema = {
    "type": "string",
    "maxLength": SCOPE_MAX,
    "pattern": SCOPE_PATTERN,
    "description": "all, router:<router id>, package:<package id> or customer:<customer uuid>",
}

_RULE_WRITABLE: dict[str, Schema] = {
    "name": {
        "type": "string",
        "minLength": 1,
        "maxLength": 100,
        "pattern": NOT_BLANK,
        "description": "not blank",
    },
    "kind": {"type": "string", "enum": [k.value for k in AlertKind]},
    "scope": _SCOPE,
    "params": {"type": "object", "description": "the kind's parameters (README, Alerts)"},
    "enabled": {"type": "boolean"},
}

_WEBHOOK_WRITABLE: dict[str, Schema] = {
    "name": _RULE_WRITABLE["name"],
    "url": {
        "type": "string",
        "maxLength": URL_MAX,
        "pattern": URL_PATTERN,
        "description": "an http:// or https:// URL with a host name or IPv4 address (no user name)",
    },
    "format": {"type": "string", "enum": [f.value for f in WebhookFormat]},
    "secret": {
        "type": "string",
        "minLength": SECRET_MIN,
        "maxLength": SECRET_MAX,
        "writeOnly": True,
        "description": "signs every delivery (X-Mtmon-Signature); never returned",
    },
    "enabled": {"type": "boolean"},
}

_ALERT_SCHEMAS: dict[str, Schema] = {
    "AlertRule": _obj(
        {
            "id": INT,
            **{k: v for k, v in _RULE_WRITABLE.items() if k != "params"},
            "params": {"type": "object"},
            "created_at": DATETIME,
            "updated_at": DATETIME,
        }
    ),
    "AlertRuleCreate": {**_obj(_RULE_WRITABLE, ["name", "kind", "params"]), "allOf": _PARAMS_BY_KIND},
    "AlertRuleUpdate": {
        **_obj(_RULE_WRITABLE, []),
        "minProperties": 1,
        "allOf": _PARAMS_BY_KIND,
        # Kind and parameters change together, so the body alone says whether they fit.
        "dependentRequired": {"kind": ["params"], "params": ["kind"]},
    },
    "AlertRuleList": _obj(
        {"status": {"const": "ok"}, "rules": {"type": "array", "items": _ref("AlertRule")}}
    ),
    "AlertRuleReply": _obj({"status": {"const": "ok"}, "rule": _ref("AlertRule")}),
    "AlertRuleWritten": _obj(
        {
            "status": {"const": "success"},
            "message": {"type": "string", "enum": ["Alert rule created", "Alert rule updated"]},
            "rule": _ref("AlertRule"),
        }
    ),
    "AlertRuleDeleted": _obj(
        {"status": {"const": "success"}, "message": {"const": "Alert rule deleted"}, "rule_id": INT}
    ),
    "Webhook": _obj(
        {
            "id": INT,
            **{k: v for k, v in _WEBHOOK_WRITABLE.items() if k not in ("secret", "url")},
            "url": TEXT,
            "has_secret": {"type": "boolean"},
            "created_at": DATETIME,
            "updated_at": DATETIME,
        }
    ),
    "WebhookCreate": _obj(_WEBHOOK_WRITABLE, ["name", "url", "secret"]),
    "WebhookUpdate": {**_obj(_WEBHOOK_WRITABLE, []), "minProperties": 1},
    "WebhookList": _obj({"status": {"const": "ok"}, "webhooks": {"type": "array", "items": _ref("Webhook")}}),
    "WebhookReply": _obj({"status": {"const": "ok"}, "webhook": _ref("Webhook")}),
    "WebhookWritten": _obj(
        {
            "status": {"const": "success"},
            "message": {"type": "string", "enum": ["Webhook created", "Webhook updated"]},
            "webhook": _ref("Webhook"),
        }
    ),
    "WebhookDeleted": _obj(
        {"status": {"const": "success"}, "message": {"const": "Webhook deleted"}, "webhook_id": INT}
    ),
    "WebhookDelivery": _obj(
        {
            "id": {**UUID, "description": "the Idempotency-Key of every attempt"},
            "event_id": TEXT,
            "event": {"type": "string", "enum": [e.value for e in AlertEventType]},
            "webhook_id": INT,
            "webhook_name": TEXT,
            "state": {"type": "string", "enum": [s.value for s in DeliveryState]},
            "attempts": INT,
            "next_attempt_at": DATETIME,
            "expires_at": {**DATETIME, "description": "a failed attempt after this makes the delivery dead"},
            "last_error": nullable(TEXT),
            "last_status": {**nullable(INT), "description": "the receiver's last HTTP status"},
            "delivered_at": nullable(DATETIME),
            "dead_at": nullable(DATETIME),
            "created_at": DATETIME,
            "payload": {"type": "object", "description": "the alert event (README, Webhooks)"},
        }
    ),
    "WebhookDeliveryList": _obj(
        {
            "status": {"const": "ok"},
            "deliveries": {"type": "array", "items": _ref("WebhookDelivery")},
            "total": INT,
            "limit": INT,
            "offset": INT,
        }
    ),
    "Alert": _obj(
        {
            "id": UUID,
            "rule_id": INT,
            "rule_name": TEXT,
            "kind": {"type": "string", "enum": [k.value for k in AlertKind]},
            "subject": {**TEXT, "description": "customer:<uuid> or router:<id>"},
            "customer_id": nullable(UUID),
            "customer_name": nullable(TEXT),
            "username": nullable(TEXT),
            "router": nullable(TEXT),
            "state": {"type": "string", "enum": [s.value for s in AlertState]},
            "started_at": DATETIME,
            "resolved_at": nullable(DATETIME),
            "acknowledged_at": nullable(DATETIME),
            "acknowledged_by": nullable(TEXT),
            "summary": TEXT,
            "values": {"type": "object", "description": "the numbers behind the alert (README, Alerts)"},
        }
    ),
    "AlertList": _obj(
        {
            "status": {"const": "ok"},
            "alerts": {"type": "array", "items": _ref("Alert")},
            "total": INT,
            "limit": INT,
            "offset": INT,
        }
    ),
    "AlertAcknowledged": _obj(
        {"status": {"const": "success"}, "message": {"const": "Alert acknowledged"}, "alert": _ref("Alert")}
    ),
    "WebhookDeliveryRetried": _obj(
        {
            "status": {"const": "success"},
            "message": {"const": "Delivery queued"},
            "delivery": _ref("WebhookDelivery"),
        }
    ),
}

SCHEMAS: dict[str, Schema] = {
    "Error": _obj(
        {
            "status": {"const": "error"},
            "code": TEXT,
            "message": TEXT,
            "parameter": {**TEXT, "description": "the malformed query or path parameter"},
            "field": {**TEXT, "description": "the refused body field"},
            "customer_status": TEXT,
            "scope": {"type": "string", "enum": ["global", "router"]},
            "cap": INT,
            "in_use": INT,
            "retry_after": INT,
            "router_id": TEXT,
            "router_name": TEXT,
            "delivery_state": TEXT,
        },
        ["status", "code", "message"],
    ),
    "MonitorStarted": _obj(
        {
            "status": {"const": "success"},
            "message": {"type": "string", "enum": ["Monitoring started", "Already monitoring"]},
            "customer_id": UUID,
            "session_id": UUID,
            "task_id": nullable(TEXT),
            "router": {**TEXT, "description": "the router's id (customers.mikrotik_id)"},
            "state": STATE,
        }
    ),
    "MonitorStartMany": _obj(
        {
            "customer_ids": {
                "type": "array",
                "items": UUID,
                "minItems": 1,
                "maxItems": 1000,
                "description": "customers to start (customers.id); each gets its own result",
            },
            "ping": {
                "type": "boolean",
                "default": True,
                "description": "false: the sessions started now run without the router-side ping",
            },
        },
        required=["customer_ids"],
    ),
    "MonitorStartManyResult": _obj(
        {
            "status": {"const": "success"},
            "started": INT,
            "already": INT,
            "refused": INT,
            "results": {
                "type": "array",
                "items": _obj(
                    {
                        "customer_id": TEXT,
                        "status": {"type": "string", "enum": ["started", "already", "refused"]},
                        "session_id": UUID,
                        "task_id": nullable(TEXT),
                        "router": TEXT,
                        "state": STATE,
                        "http_status": INT,
                        "code": TEXT,
                        "message": TEXT,
                    },
                    ["customer_id", "status"],
                    closed=False,
                ),
                "description": "one per customer asked, in the order asked; a refused one carries "
                "the status, code and message a single start would have answered",
            },
        }
    ),
    "MonitorStopped": _obj(
        {
            "status": {"const": "success"},
            "message": {"const": "Monitoring stopped"},
            "customer_id": UUID,
            "session_id": UUID,
            "state": STATE,
        }
    ),
    "Monitor": _obj(
        {
            "customer_id": UUID,
            "customer_name": TEXT,
            "username": TEXT,
            "router": TEXT,
            "interface": nullable(TEXT),
            "state": STATE,
            "started_at": nullable(DATETIME),
            "last_sample_at": {
                **nullable(DATETIME),
                "description": "timestamp of the customer's newest stream entry",
            },
            "live": {"type": "boolean", "description": "a monitor holds the lease right now"},
            "session_id": UUID,
            "task_id": nullable(TEXT),
            "attempt": INT,
            "requested_by": nullable(TEXT),
            "created_at": nullable(DATETIME),
            "lease_expires_in": nullable({"type": "number"}),
            "worker": {**nullable(TEXT), "description": "the Celery node name of the worker that runs it"},
        }
    ),
    "MonitorStatus": _obj(
        {
            "status": {"const": "ok"},
            "active_monitors": {"type": "array", "items": UUID},
            "monitor_count": INT,
            "max_concurrent": INT,
            "slots_available": INT,
            "monitors": {"type": "array", "items": _ref("Monitor")},
        }
    ),
    "Package": _obj(
        {"id": INT, "name": TEXT, "download_bps": INT, "upload_bps": INT},
    ),
    "Customer": _obj(_CUSTOMER_READ),
    "CustomerCreate": _obj(_CUSTOMER_WRITABLE, _CUSTOMER_REQUIRED),
    "CustomerUpdate": {**_obj(_CUSTOMER_WRITABLE, []), "minProperties": 1},
    "CustomerList": _obj(
        {
            "status": {"const": "ok"},
            "customers": {"type": "array", "items": _ref("Customer")},
            "total": {
                **INT,
                "description": "customers matching the filters, over all pages: exact unless "
                "`total_capped`, then a lower bound (the count stopped 1,000 matches past the page's end; "
                "`exact_total=true` counts all)",
            },
            "total_capped": {
                "type": "boolean",
                "description": "true: more customers match than `total` (there are further pages)",
            },
            "limit": INT,
            "offset": INT,
        }
    ),
    "CustomerReply": _obj({"status": {"const": "ok"}, "customer": _ref("Customer")}),
    "CustomerWritten": _obj(
        {
            "status": {"const": "success"},
            "message": {"type": "string", "enum": ["Customer created", "Customer updated"]},
            "customer": _ref("Customer"),
        }
    ),
    "CustomerDeleted": _obj(
        {
            "status": {"const": "success"},
            "message": {"const": "Customer deleted"},
            "customer_id": UUID,
            "monitor_stopped": {"type": "boolean", "description": "a running monitor was stopped first"},
        }
    ),
    "TrafficEntry": {
        "type": "object",
        "description": "one stream entry as tasks.message.decode_entry gives it (README, message format)",
        "properties": {
            "id": TEXT,
            "type": {
                "type": "string",
                "enum": ["traffic", "started", "offline", "reconnecting", "resumed", "stopped", "latency"],
            },
            "customer_id": TEXT,
            "timestamp": TEXT,
            "download_bps": INT,
            "upload_bps": INT,
            "download_utilization": nullable({"type": "number"}),
            "upload_utilization": nullable({"type": "number"}),
            "seq": INT,
        },
        "required": ["id", "type"],
        "additionalProperties": True,
    },
    "Gap": _obj(
        {
            "from": {**TEXT, "description": "the id asked to continue from"},
            "to": {**TEXT, "description": "the oldest entry still retained"},
        }
    ),
    "Traffic": _obj(
        {
            "status": {"const": "ok"},
            "customer_id": UUID,
            "entries": {"type": "array", "items": _ref("TrafficEntry")},
            "next": {**nullable(TEXT), "description": "pass as `since` to continue after these entries"},
            "more": {"type": "boolean", "description": "the limit cut the answer short"},
            "retention_seconds": INT,
            "gap": {
                "oneOf": [_ref("Gap"), {"type": "null"}],
                "description": "entries after `since` were trimmed before they could be read",
            },
        }
    ),
    "PingProbe": _obj(
        {
            "seq": {**nullable(INT), "description": "the router's probe number"},
            "rtt_ms": {**nullable({"type": "number"}), "description": "round trip; null when lost"},
            "status": {
                **nullable(TEXT),
                "description": "null when answered, else the router's words (timeout, host unreachable)",
            },
        }
    ),
    "Ping": _obj(
        {
            "customer_id": UUID,
            "username": TEXT,
            "router": TEXT,
            "address": {**TEXT, "description": "the address pinged: static_ip, or the session's now"},
            "count": INT,
            "replies": {"type": "array", "items": _ref("PingProbe")},
            "sent": INT,
            "received": INT,
            "loss_pct": {**nullable({"type": "number"}), "description": "percent of probes lost"},
            "min_ms": nullable({"type": "number"}),
            "avg_ms": nullable({"type": "number"}),
            "max_ms": nullable({"type": "number"}),
        }
    ),
    "Router": _obj(
        {
            "id": TEXT,
            "name": TEXT,
            "host": TEXT,
            "port": INT,
            "tls": {"type": "boolean"},
            "tls_mode": {"type": "string", "enum": [m.value for m in TlsMode]},
            "max_monitors": nullable(INT),
            "max_api_sessions": {
                **INT,
                "description": "API sessions from all monitors workers (router affinity)",
            },
            "source": {
                "type": "string",
                "enum": ["table", "settings"],
                "description": "a routers row, or MIKROTIK_* for a mikrotik_id with no row",
            },
            "customers": INT,
            "monitors_open": {**INT, "description": "open monitor sessions"},
            "monitors_running": {**INT, "description": "open sessions whose monitor holds its lease"},
        }
    ),
    "Routers": _obj({"status": {"const": "ok"}, "routers": {"type": "array", "items": _ref("Router")}}),
    "TopRow": _obj(
        {
            "customer_id": UUID,
            "customer_name": TEXT,
            "username": TEXT,
            "service_type": {"type": "string", "enum": [s.value for s in ServiceType]},
            "download_bps": INT,
            "upload_bps": INT,
            "download_utilization": {**_NUMBER_OR_NULL, "description": "percent of the package's download"},
            "upload_utilization": _NUMBER_OR_NULL,
            "package_download_bps": nullable(INT),
            "package_upload_bps": nullable(INT),
            "monitored": {"type": "boolean", "description": "a monitor owns the customer now"},
        }
    ),
    "RouterTop": _obj(
        {
            **_ROUTER_VIEW_HEAD,
            "frame_id": {**nullable(TEXT), "description": "the stream id of the cycle's top frame"},
            "interval_ms": nullable(INT),
            "cycle_ms": {**nullable(INT), "description": "how long the router took to answer the cycle"},
            "online": {**nullable(INT), "description": "sessions online, known and unknown"},
            "unknown": {**nullable(INT), "description": "sessions whose login no customer has"},
            "customers": {**nullable(INT), "description": "customers with a rate this cycle"},
            "download_bps": {**nullable(INT), "description": "all customers' and unknown sessions' download"},
            "upload_bps": nullable(INT),
            "by": {"type": "string", "enum": ["download", "upload", "utilization"]},
            "limit": INT,
            "top": {"type": "array", "items": _ref("TopRow")},
        }
    ),
    "SessionCustomer": _obj(
        {
            "id": UUID,
            "name": TEXT,
            "username": TEXT,
            "service_type": {"type": "string", "enum": [s.value for s in ServiceType]},
        }
    ),
    "RouterSession": _obj(
        {
            **_SESSION_FIELDS,
            "customer": {
                "oneOf": [_ref("SessionCustomer"), {"type": "null"}],
                "description": "null: no customer of this router has the login",
            },
        }
    ),
    "RouterSessions": _obj(
        {
            **_ROUTER_VIEW_HEAD,
            "total": {**INT, "description": "sessions matching `q`, over all pages"},
            "limit": INT,
            "offset": INT,
            "sessions": {"type": "array", "items": _ref("RouterSession")},
        }
    ),
    "UnknownSession": _obj(_SESSION_FIELDS),
    "RouterUnknownSessions": _obj(
        {
            **_ROUTER_VIEW_HEAD,
            "count": INT,
            "sessions": {"type": "array", "items": _ref("UnknownSession")},
        }
    ),
    "Health": _obj({"status": {"const": "ok"}}),
    "Check": _CHECK,
    "Ready": _obj(
        {
            "status": {"type": "string", "enum": ["ok", "error"]},
            "code": {"const": "not_ready"},
            "message": TEXT,
            "checks": _obj(
                {name: _ref("Check") for name in ("database", "redis", "workers", "beat")},
            ),
            "auth": {"type": "string", "enum": ["enabled", "disabled"]},
        },
        ["status", "checks", "auth"],
    ),
    "OpenApi": {"type": "object", "description": "this document"},
    "SessionStatus": _obj(
        {
            "status": {"const": "ok"},
            "auth": {"type": "string", "enum": ["enabled", "disabled"]},
            "authenticated": {"type": "boolean"},
            "diagnosis": _obj({"rtt_rise_ms": INT, "min_probes": INT}),
        }
    ),
    "Login": _obj({"token": {"type": "string", "minLength": 1, "maxLength": 1024}}, ["token"]),
    "LoggedIn": _obj({"status": {"const": "success"}, "message": {"const": "Logged in"}, "expires_in": INT}),
    "LoggedOut": _obj({"status": {"const": "success"}, "message": {"const": "Logged out"}}),
    # Session reports (web/routes/reports.py; README, Session reports).
    "SessionReport": _obj(
        {
            "session_id": UUID,
            "customer_id": UUID,
            "username": TEXT,
            "customer_name": TEXT,
            "router": TEXT,
            "interface": TEXT,
            "started_at": DATETIME,
            "ended_at": DATETIME,
            "duration_s": NUMBER,
            "interval_s": NUMBER,
            "samples": INT,
            "missing_s": {**INT, "description": "seconds of the session without a sample"},
            "stop_reason": TEXT,
            "partial": {"type": "boolean", "description": "entries had expired before the report was made"},
            "package": nullable(TEXT),
            "package_download_bps": nullable(INT),
            "package_upload_bps": nullable(INT),
            "download": _ref("ReportDirection"),
            "upload": _ref("ReportDirection"),
            "rtt": _ref("ReportRtt"),
            "verdict": {"enum": [*VERDICTS, None]},
        }
    ),
    "ReportDirection": _obj(
        {
            "peak_bps": nullable(INT),
            "avg_bps": nullable(INT),
            "p95_bps": nullable(INT),
            "bytes": INT,
            "at_plan_s": {
                **nullable(NUMBER),
                "description": "seconds at 90 % of plan or more; null without plan",
            },
        }
    ),
    "ReportRtt": _obj(
        {
            "probes": INT,
            "answered": INT,
            **{
                name: nullable(NUMBER)
                for name in (
                    "loss_pct",
                    "median_ms",
                    "p95_ms",
                    "idle_median_ms",
                    "idle_p95_ms",
                    "load_median_ms",
                    "load_p95_ms",
                )
            },
        }
    ),
    "SessionReports": _obj(
        {
            "items": {"type": "array", "items": _ref("SessionReport")},
            "total": {**INT, "description": "the customer's reports, over all pages"},
            "limit": INT,
            "offset": INT,
        }
    ),
    **_ALERT_SCHEMAS,
}
