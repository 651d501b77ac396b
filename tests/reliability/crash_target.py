"""The pipeline's three writing stages in one process, for the kill -9 test to kill and run again.

    python -m tests.reliability.crash_target WAREHOUSE [--ingest-only] [--non-atomic-cursor]

It runs ``stages.py``: ingestion (committing every 2,000 rows, so a kill lands between units), the dbt models and
scoring. It prints ``STAGE <name>`` as each stage begins and ``DONE`` at the end.

``--non-atomic-cursor`` is the negative control: ingestion commits each unit's cursor in a transaction of its
own, before its rows, the bug the kill test exists to catch.
"""

import argparse
import time

from tests.reliability import stages


def _stage(name: str) -> None:
    print(f"STAGE {name}", flush=True)


def _break_cursor_atomicity() -> None:
    """Commit the cursor first, then the rows, in two transactions (never do this)."""
    from assets.ingest import ingest, store

    real = store.load_trades

    def two_commits(con, accepted, rejected, *, source, cursors=None):
        with store.Transaction(con):
            store._upsert_cursors(con, cursors or {})
        print("CURSOR_COMMITTED", flush=True)
        time.sleep(0.5)  # the gap a crash can fall into, held open so the test lands in it every time
        return real(con, accepted, rejected, source=source, cursors=None)

    ingest.load_trades = two_commits


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("warehouse")
    p.add_argument("--non-atomic-cursor", action="store_true")
    p.add_argument("--ingest-only", action="store_true")
    args = p.parse_args(argv)
    if args.non_atomic_cursor:
        _break_cursor_atomicity()
    _stage("ingest")
    stages.ingest_window(args.warehouse)
    if not args.ingest_only:
        _stage("dbt")
        stages.dbt_models(args.warehouse)
        _stage("score")
        stages.score(args.warehouse)
    print("DONE", flush=True)


if __name__ == "__main__":
    main()
