"""The live decisions and the funnel."""

from dashboard import views
from dashboard.context import context

views.signals(context())
