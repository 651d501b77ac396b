"""The scored wallets and a drill-down per whale."""

from dashboard import views
from dashboard.context import context

views.whales(context())
