"""The Streamlit entry point: ``streamlit run dashboard/app.py`` (``whalecopy dashboard`` runs it on 127.0.0.1).

The sources come from the environment through :class:`orchestration.settings.Settings` (``WAREHOUSE_PATH``,
``WHALECOPY_LIVE_DIR``, ``WHALECOPY_DASHBOARD_*``), read once per server process; each page is a file under
``screens/`` drawn by :mod:`dashboard.views`.
"""

from __future__ import annotations

import streamlit as st

from dashboard.context import context

PAGES = {  # url path: (title, icon)
    "overview": ("Overview", ":material/monitoring:"),
    "whales": ("Whales", ":material/leaderboard:"),
    "signals": ("Signals", ":material/bolt:"),
    "portfolio": ("Portfolio", ":material/account_balance_wallet:"),
    "evidence": ("Evidence", ":material/science:"),
}

st.set_page_config(page_title="whalecopy", page_icon=":material/waves:", layout="wide")
ctx = context()
nav = st.navigation([st.Page(f"screens/{name}.py", title=title, icon=icon, url_path=name, default=name == "overview")
                     for name, (title, icon) in PAGES.items()])  # fmt: skip
with st.sidebar:
    st.caption(f"Warehouse: `{ctx.warehouse.path}`  \nLive store: `{ctx.live.path}`  \nRead-only; the live parts "
               f"refresh every {ctx.settings.dashboard_refresh_s:g} s.")  # fmt: skip
nav.run()
