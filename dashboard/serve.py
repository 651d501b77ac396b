"""What ``whalecopy dashboard`` runs: the pages' modules imported before the server starts (pandas, Altair, DuckDB,
the models: about 3.5 s that the first visitor would otherwise wait for), then Streamlit's own command line, as
``streamlit run`` would. ``python -m dashboard.serve run APP [--flags]``."""

from __future__ import annotations

import sys


def main() -> None:
    import dashboard.context
    import dashboard.views

    dashboard.context.default_strategy()
    from streamlit.web import cli

    sys.argv = ["streamlit", *sys.argv[1:]]
    sys.exit(cli.main())


if __name__ == "__main__":
    main()
