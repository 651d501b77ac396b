"""The backtest, the targets and the score's IC."""

from dashboard import views
from dashboard.context import context

views.evidence(context())
