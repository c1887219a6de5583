"""The data layer: routers, packages, customers, monitor sessions, alert rules, webhooks
and their deliveries.

Imports settings only (never routeros, tasks or web); the import command in
models.importer is the one module that also talks to a router.
"""

from models.alert import Alert
from models.alert_delivery import AlertDelivery
from models.alert_rule import AlertRule
from models.base import Base
from models.customer import Customer
from models.enums import ActualState, CustomerStatus, DesiredState, ServiceType, TlsMode
from models.errors import DataError, DuplicateCustomerError, InvalidFieldError
from models.monitor_session import MonitorSession
from models.package import Package
from models.router import Router
from models.session_report import SessionReport
from models.webhook import Webhook

__all__ = [
    "Alert",
    "AlertDelivery",
    "AlertRule",
    "ActualState",
    "Base",
    "Customer",
    "CustomerStatus",
    "DataError",
    "DesiredState",
    "DuplicateCustomerError",
    "InvalidFieldError",
    "MonitorSession",
    "Package",
    "Router",
    "ServiceType",
    "SessionReport",
    "TlsMode",
    "Webhook",
]
