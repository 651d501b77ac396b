"""The transform stage's decision as a pure function: whether a build may apply only what changed.

The incremental marts (docs/warehouse.md#incremental-builds) keep two bookkeeping tables: ``int_sync_window``, one
row written as a build starts (its ``build_id``), and ``int_sync_state``, written last, once every incremental
model has applied that build's changes. When the two disagree a build stopped half-way, and what the marts hold
is no longer a known state to apply changes to: the incremental models are rebuilt from scratch.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SyncState:
    """What the warehouse holds of the incremental marts' bookkeeping (None: that table is not there)."""

    marts_built: bool  # intermediate.int_position_fills exists
    window_build: str | None  # int_sync_window.build_id: the last build that started
    state_build: str | None  # int_sync_state.build_id: the last build every incremental model applied


def sync_mode(state: SyncState, *, full_refresh: bool = False) -> tuple[bool, str]:
    """``(full_refresh, why)`` for the next ``dbt`` build on a warehouse in ``state``.

    ``full_refresh`` asked for is always honoured. A first build needs no flag: dbt builds a missing incremental
    model in full."""
    if full_refresh:
        return True, "full refresh asked for"
    if not state.marts_built:
        return False, "first build: every model builds in full"
    if state.state_build is None:
        return True, "no complete incremental build on record (intermediate.int_sync_state is missing)"
    if state.window_build != state.state_build:
        return True, "the last build stopped before every incremental model had applied its changes"
    return False, "incremental: only the positions and days new data touched are rebuilt"


def data_test_scope(
    *, full_refresh: bool, first_build: bool, gate_scope: str, whole_due: str | None
) -> tuple[bool, str]:
    """``(whole, why)``: whether the build's dbt key tests read every key of their models, or only the keys the
    build wrote (``macros/test_scope.sql``; row tests read every row either way; the dbt unit tests, which read
    fixed inputs, run only with a whole read).

    ``whole_due``: why the marts' gates read every row this run (``quality.checks.whole_read_due``: their first
    run, after a failure, once a week), None when they read the new rows: the tests follow the same cadence."""
    if full_refresh or first_build:
        return True, "every row (a build from scratch)"
    if gate_scope == "all":
        return True, "every row (WHALECOPY_GATE_SCOPE=all)"
    if whole_due is not None:
        return True, f"every row ({whole_due})"
    return False, "the keys this build wrote (key tests; row tests: every row)"
