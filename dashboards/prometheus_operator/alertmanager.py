"""deploy/alertmanager/alertmanager.yml as an AlertmanagerConfig (monitoring.coreos.com/v1alpha1):
the same route tree, inhibit rules and receivers in the CRD's camelCase fields."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from .resources import JOB, Document, Untranslatable, metadata

#: where non-placeholder webhook URLs come from (the Secret is not generated: it holds secrets)
WEBHOOK_SECRET = "message-send-service-alertmanager-webhooks"
#: hosts reserved for examples (RFC 2606, RFC 6761): such URLs are placeholders, copied as-is
_PLACEHOLDER_SUFFIXES = (".invalid", ".example", ".test", ".localhost")
_PLACEHOLDER_HOSTS = {"localhost", "example.com", "example.net", "example.org"}

_MATCHER = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$")


def parse_matcher(text: str) -> Document:
    """One Alertmanager matcher string (`name op value`, the value bare or double-quoted) as
    the CRD's {name, matchType, value}."""
    found = _MATCHER.match(text)
    if found is None:
        raise Untranslatable(f"matcher {text!r}: expected `name op value`")
    name, op, value = found.groups()
    if value.startswith('"'):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as error:
            raise Untranslatable(f"matcher {text!r}: bad quoted value") from error
        if not isinstance(value, str):
            raise Untranslatable(f"matcher {text!r}: bad quoted value")
    elif any(c in value for c in '",{}'):
        raise Untranslatable(f"matcher {text!r}: one matcher per list item, please")
    return {"name": name, "matchType": op, "value": value}


def _matchers(node: Mapping[str, Any], matchers: str, match: str, match_re: str) -> list[Document]:
    """A route's (or inhibit rule side's) matchers, the deprecated match/match_re maps too."""
    found = [parse_matcher(text) for text in node.get(matchers, [])]
    found += [{"name": k, "matchType": "=", "value": v} for k, v in node.get(match, {}).items()]
    found += [{"name": k, "matchType": "=~", "value": v} for k, v in node.get(match_re, {}).items()]
    return found


#: Alertmanager route key -> AlertmanagerConfig route key (values copied as they are)
_ROUTE_KEYS = {
    "receiver": "receiver",
    "group_by": "groupBy",
    "group_wait": "groupWait",
    "group_interval": "groupInterval",
    "repeat_interval": "repeatInterval",
    "continue": "continue",
}


def _route(route: Mapping[str, Any]) -> Document:
    extra = set(route) - set(_ROUTE_KEYS) - {"matchers", "match", "match_re", "routes"}
    if extra:
        raise Untranslatable(f"route: no translation for {sorted(extra)}")
    translated: Document = {}
    if "receiver" in route:
        translated["receiver"] = route["receiver"]
    matchers = _matchers(route, "matchers", "match", "match_re")
    if matchers:
        translated["matchers"] = matchers
    for key, camel in _ROUTE_KEYS.items():
        if key != "receiver" and key in route:
            translated[camel] = route[key]
    if route.get("routes"):
        translated["routes"] = [_route(child) for child in route["routes"]]
    return translated


def _inhibit_rule(rule: Mapping[str, Any]) -> Document:
    known = {"equal"} | {
        f"{side}_{suffix}"
        for side in ("source", "target")
        for suffix in ("matchers", "match", "match_re")
    }
    extra = set(rule) - known
    if extra:
        raise Untranslatable(f"inhibit rule: no translation for {sorted(extra)}")
    translated: Document = {
        "sourceMatch": _matchers(rule, "source_matchers", "source_match", "source_match_re"),
        "targetMatch": _matchers(rule, "target_matchers", "target_match", "target_match_re"),
    }
    if "equal" in rule:
        translated["equal"] = rule["equal"]
    return translated


def is_placeholder(url: str) -> bool:
    """A URL on a host reserved for examples: not a secret, nothing real behind it."""
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    reserved = (*_PLACEHOLDER_SUFFIXES, *(f".{name}" for name in _PLACEHOLDER_HOSTS))
    return host in _PLACEHOLDER_HOSTS or host.endswith(reserved)


#: Alertmanager webhook_config key -> AlertmanagerConfig webhookConfig key
_WEBHOOK_KEYS = {
    "url": "url",
    "send_resolved": "sendResolved",
    "max_alerts": "maxAlerts",
    "timeout": "timeout",
}


def _receiver(receiver: Mapping[str, Any]) -> Document:
    extra = set(receiver) - {"name", "webhook_configs"}
    if extra:
        raise Untranslatable(f"receiver {receiver.get('name')}: no translation for {sorted(extra)}")
    translated: Document = {"name": receiver["name"]}
    webhooks = []
    for index, webhook in enumerate(receiver.get("webhook_configs", [])):
        unknown = set(webhook) - set(_WEBHOOK_KEYS)
        if unknown:
            raise Untranslatable(
                f"receiver {receiver['name']} webhook: no translation for {sorted(unknown)}"
            )
        config: Document = {}
        for key, camel in _WEBHOOK_KEYS.items():
            if key == "url" and not is_placeholder(webhook["url"]):
                # a real endpoint (chat webhooks carry their token in the URL) never lands in a
                # manifest: the Secret WEBHOOK_SECRET must hold it under this key
                config["urlSecret"] = {
                    "name": WEBHOOK_SECRET,
                    "key": webhook_secret_key(receiver["name"], index),
                }
            elif key in webhook:
                config[camel] = webhook[key]
        webhooks.append(config)
    if webhooks:
        translated["webhookConfigs"] = webhooks
    return translated


def webhook_secret_key(receiver: str, index: int) -> str:
    """The key of WEBHOOK_SECRET that holds the URL of a receiver's `index`th webhook."""
    return f"{receiver}-{index}"


def alertmanager_config(config: Mapping[str, Any]) -> Document:
    """alertmanager.yml's route tree, inhibit rules and receivers as an AlertmanagerConfig."""
    extra = set(config) - {"route", "receivers", "inhibit_rules"}
    if extra:
        raise Untranslatable(f"alertmanager.yml: no translation for {sorted(extra)}")
    spec: Document = {"route": _route(config["route"])}
    spec["receivers"] = [_receiver(receiver) for receiver in config.get("receivers", [])]
    if config.get("inhibit_rules"):
        spec["inhibitRules"] = [_inhibit_rule(rule) for rule in config["inhibit_rules"]]
    return {
        "apiVersion": "monitoring.coreos.com/v1alpha1",
        "kind": "AlertmanagerConfig",
        "metadata": metadata(JOB),
        "spec": spec,
    }
