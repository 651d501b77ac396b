"""The transform stage's decision (assets/transform/model.py): when a build may apply only what changed."""

import pytest

from assets.transform.model import SyncState, data_test_scope, sync_mode


@pytest.mark.parametrize(
    ("state", "asked", "full", "why"),
    [
        (SyncState(False, None, None), False, False, "first build"),
        (SyncState(True, "b1", "b1"), False, False, "incremental"),
        (SyncState(True, "b1", "b1"), True, True, "asked for"),
        (SyncState(False, None, None), True, True, "asked for"),
        # the last build started (its window written) but stopped before int_sync_state
        (SyncState(True, "b2", "b1"), False, True, "stopped before"),
        # marts built before incremental builds existed, or the bookkeeping dropped
        (SyncState(True, None, None), False, True, "no complete incremental build"),
        (SyncState(True, "b1", None), False, True, "no complete incremental build"),
    ],
)
def test_sync_mode(state, asked, full, why):
    got_full, got_why = sync_mode(state, full_refresh=asked)
    assert got_full is full
    assert why in got_why


@pytest.mark.parametrize(
    ("full_refresh", "first_build", "gate_scope", "whole_due", "whole", "why"),
    [
        (False, False, "new", None, False, "the keys this build wrote"),
        (True, False, "new", None, True, "from scratch"),
        (False, True, "new", None, True, "from scratch"),
        (False, False, "all", None, True, "WHALECOPY_GATE_SCOPE=all"),
        (False, False, "new", "the weekly whole read of marts.fct_fills", True, "weekly"),
    ],
)
def test_data_test_scope(full_refresh, first_build, gate_scope, whole_due, whole, why):
    got_whole, got_why = data_test_scope(
        full_refresh=full_refresh, first_build=first_build, gate_scope=gate_scope, whole_due=whole_due
    )
    assert got_whole is whole
    assert why in got_why
