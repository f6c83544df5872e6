"""Alert delivery: channel configuration, routing, and the outbox sender.

:func:`route` picks the channels of a message; :func:`deliver_due` sends what
the outbox holds, through the stages of :mod:`daemon.alerting.notify.sender`. Every
channel's ``send`` returns a :class:`SendResult` and never raises for a
delivery fault.
"""

from __future__ import annotations

from daemon.alerting.notify._common import SendResult
from daemon.alerting.notify.channels import route
from daemon.alerting.notify.sender import DeliveryReport, SendControl, deliver_due, notify
from daemon.config.alerts import AppriseChannel, Channel, EmailChannel, LogChannel, Route, SlackChannel, WebhookChannel

__all__ = ["AppriseChannel", "Channel", "DeliveryReport", "EmailChannel", "LogChannel", "Route", "SendControl",
           "SendResult", "SlackChannel", "WebhookChannel", "deliver_due", "notify", "route"]
