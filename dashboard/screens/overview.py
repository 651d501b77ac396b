"""What the book holds and risks now, and what the live loop is doing."""

from dashboard import views
from dashboard.context import context

views.overview(context())
