"""The notifier's configuration in Alertmanager's format (``alertmanager.yml``)."""

from notifier.config.load import NotifierConfig, check_loaded, load_file, load_from, parse
from notifier.config.models import AlertmanagerConfig, InhibitRuleConfig, RouteConfig
from notifier.config.receivers import Receiver, WebhookConfig

__all__ = [
    "AlertmanagerConfig",
    "InhibitRuleConfig",
    "NotifierConfig",
    "Receiver",
    "RouteConfig",
    "WebhookConfig",
    "check_loaded",
    "load_file",
    "load_from",
    "parse",
]
