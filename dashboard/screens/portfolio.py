"""The paper book's positions and its attribution."""

from dashboard import views
from dashboard.context import context

views.portfolio(context())
