"""kill -9 at random points of ingestion, dbt and scoring, then resume: nothing lost, nothing twice, and the
warehouse identical (content hashes of every table and view) to a run that was never interrupted.

The pipeline runs in a child process (``crash_target.py``: the job's ingest loops, ``dbt build`` and the
scoring assets); the whole process group, dbt included, gets SIGKILL a random time after the targeted stage
begins. The negative control runs the same test against an ingest that commits its cursor apart from its rows,
and the test must catch it.
"""

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest

from tests.reliability.hashing import differences, relation_hash, warehouse_hashes

pytestmark = pytest.mark.reliability

ROOT = Path(__file__).resolve().parents[2]
KILLS = {"ingest": 7, "dbt": 7, "score": 6}  # 20 kills
SEED = 20261124


class Child:
    """The pipeline in a process group of its own, its output timestamped line by line."""

    def __init__(self, warehouse: Path, *extra: str):
        env = {**os.environ, "GX_ANALYTICS_ENABLED": "false", "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.crash_target", str(warehouse), *extra],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )  # fmt: skip
        self.lines: list[tuple[float, str]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append((time.monotonic(), line.rstrip("\n")))

    def markers(self) -> list[tuple[float, str]]:
        return [
            (t, s) for t, s in list(self.lines) if s.startswith("STAGE ") or s in ("DONE", "CURSOR_COMMITTED")
        ]

    def wait_for(self, marker: str, timeout: float = 120.0) -> bool:
        """True once ``marker`` is printed; False if the child exits first."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if any(s == marker for _, s in self.markers()):
                return True
            if self.proc.poll() is not None:
                self._reader.join(5)
                return any(s == marker for _, s in self.markers())
            time.sleep(0.005)
        raise TimeoutError(f"no {marker!r} within {timeout} s:\n" + "\n".join(s for _, s in self.lines[-30:]))

    def kill(self) -> str:
        """SIGKILL the process group; returns the stage it was in (or 'done' if it had finished)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)
        self._reader.join(5)
        seen = [s for _, s in self.markers() if s != "CURSOR_COMMITTED"]
        return (
            "done" if seen and seen[-1] == "DONE" else (seen[-1].removeprefix("STAGE ") if seen else "start")
        )

    def finish(self, timeout: float = 300.0) -> None:
        rc = self.proc.wait(timeout)
        self._reader.join(5)
        assert rc == 0, "the pipeline failed:\n" + "\n".join(s for _, s in self.lines[-60:])


@pytest.mark.long  # make test-long (CI runs it after make test)
def test_twenty_kills_then_resume_give_the_uninterrupted_warehouse(reference_build, tmp_path):
    ref_path, durations = reference_build  # conftest.py: the same stages, never interrupted
    path = tmp_path / "killed.duckdb"
    rng = random.Random(SEED)
    # ingestion only ever moves forward, so its kills come first; the others in random order
    plan = ["ingest"] * KILLS["ingest"] + rng.sample(["dbt"] * KILLS["dbt"] + ["score"] * KILLS["score"], 13)
    landed: list[str] = []
    for target in plan:
        child = Child(path)
        if child.wait_for(f"STAGE {target}"):
            # ingestion: early in it, since each run resumes where the last commit left it
            span = durations[target] / (4 if target == "ingest" else 1)
            time.sleep(rng.uniform(0.0, span))
        landed.append(child.kill())
    Child(path).finish()

    assert len(landed) == sum(KILLS.values())
    for stage in KILLS:
        assert landed.count(stage) >= 3, f"too few kills landed in {stage}: {landed}"
    with duckdb.connect(str(path), read_only=True) as con:
        fills, distinct = con.execute("SELECT count(*), count(DISTINCT fill_key) FROM raw.trades").fetchone()
    with duckdb.connect(str(ref_path), read_only=True) as con:
        ref_fills = con.execute("SELECT count(*) FROM raw.trades").fetchone()[0]
    assert (fills, distinct) == (ref_fills, ref_fills), "fills lost or duplicated"
    diff = differences(warehouse_hashes(ref_path), warehouse_hashes(path))
    assert not diff, "the resumed warehouse differs from the uninterrupted one:\n" + "\n".join(diff)


def test_negative_control_a_non_atomic_cursor_is_caught(reference_build, tmp_path):
    """The same check, against an ingest that commits a unit's cursor before its rows: one kill in that gap
    loses the unit for good (the resumed run believes it is covered), and the hashes say so."""
    ref_path, _ = reference_build
    path = tmp_path / "broken.duckdb"
    child = Child(path, "--non-atomic-cursor", "--ingest-only")
    assert child.wait_for("CURSOR_COMMITTED")
    child.kill()
    Child(path, "--non-atomic-cursor", "--ingest-only").finish()
    with (
        duckdb.connect(str(ref_path), read_only=True) as ref,
        duckdb.connect(str(path), read_only=True) as got,
    ):
        lost = (
            ref.execute("SELECT count(*) FROM raw.trades").fetchone()[0]
            - got.execute("SELECT count(*) FROM raw.trades").fetchone()[0]
        )
        assert relation_hash(ref, "raw.trades") != relation_hash(got, "raw.trades")
    assert lost > 0
