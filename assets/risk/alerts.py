"""Alerts out of the warehouse: an optional Slack-style webhook (``{"text": ...}`` JSON over httpx).

The webhook is configured by ``WHALECOPY_ALERT_WEBHOOK_URL`` (orchestration/settings.py); without it, alerts
stay in ``analytics.alerts`` and the Dagster run log. A failing webhook never fails the run: the error is
logged and the alerts stay in the warehouse.
"""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg
import httpx

MAX_LINES = 20  # one message; the rest are counted, not listed


def redacted(url: str) -> str:
    """The webhook as it may be logged: scheme and host only (a Slack-style webhook's path is its secret)."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError, TypeError):
        parsed = None
    return f"{parsed.scheme}://{parsed.host}/..." if parsed and parsed.host else "(the configured webhook)"


def alert_text(alerts: Sequence[dict]) -> str:
    lines = [f"[{a['kind']}] day {a['day']}: {a['message']}" for a in alerts[:MAX_LINES]]
    more = len(alerts) - MAX_LINES
    return "\n".join(["whalecopy alerts:", *lines, *([f"... and {more} more"] if more > 0 else [])])


def post_alerts(client: httpx.Client, url: str, alerts: Sequence[dict]) -> httpx.Response | None:
    """POST the alerts as one Slack-style message; None when there is nothing to send."""
    if not alerts:
        return None
    response = client.post(url, json={"text": alert_text(alerts)})
    response.raise_for_status()
    return response


class AlertsResource(dg.ConfigurableResource):
    webhook_url: str | None = None
    timeout_s: float = 30.0

    def send(self, alerts: Sequence[dict], log, transport: httpx.BaseTransport | None = None) -> int:
        """Post ``alerts`` if a webhook is configured; returns how many were sent (0 on no webhook or error)."""
        if not self.webhook_url or not alerts:
            return 0
        try:
            with httpx.Client(timeout=self.timeout_s, transport=transport) as client:
                post_alerts(client, self.webhook_url, alerts)
        except httpx.HTTPError as exc:  # the message may carry the URL: log its kind and status only
            status = exc.response.status_code if isinstance(exc, httpx.HTTPStatusError) else None
            log.warning(
                f"alerts: the webhook {redacted(self.webhook_url)} failed ({type(exc).__name__}"
                f"{f' {status}' if status else ''}); the alerts stay in analytics.alerts"
            )
            return 0
        return len(alerts)
