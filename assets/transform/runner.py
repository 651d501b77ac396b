"""dbt in this process: dbt's programmatic runner, its results turned into the asset's Dagster events as they come.

dagster-dbt's ``DbtCliResource`` starts a ``dbt`` process for every build. That process pays Python's start-up,
dbt's imports, the project and profile load and the adapter on every run, on top of the Dagster process that has
already paid most of them (docs/benchmarks.md measures it). ``DbtRunnerResource`` runs the same ``dbt build`` through
``dbt.cli.main.dbtRunner`` in the run's own process instead:

- the selection is dagster-dbt's own (``get_updated_cli_invocation_params_for_context``): a subset of the dbt assets
  or of their checks runs the same dbt nodes as it would through the CLI resource;
- each result event becomes dagster-dbt's event (``DbtCoreCliEventMessage.to_default_asset_events``), so models are
  materialisations and tests asset checks exactly as before;
- dbt runs in a worker thread and hands its result events to the asset's generator through a queue: every Dagster
  call stays on the step's thread, and the UI sees each model as it finishes;
- each warehouse has its own dbt target (artifacts and dbt's partial parse), so a build parses only the project
  files that changed since the warehouse's last build, in this process or an earlier one;
- dbt-duckdb keeps its database open between invocations in a process; it is closed after each one, so the run's
  other connections (which use another configuration) can open the file;
- a stopped run interrupts dbt's DuckDB query and waits for dbt to unwind.
"""

from __future__ import annotations

import fcntl
import hashlib
import queue
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg

#: dbt's events for a finished node (dagster-dbt's ``DbtCoreCliEventMessage.is_result_event``)
RESULT_EVENTS = frozenset({"LogModelResult", "LogTestResult", "LogSeedResult", "LogSnapshotResult"})
#: in a build's target: the warehouse it builds, and the lock a build holds
WAREHOUSE_FILE, LOCK_FILE = "warehouse.txt", ".lock"
#: how long a stopped run waits for dbt's thread to unwind after its query is interrupted
STOP_WAIT_S = 30.0


def close_dbt_database() -> None:
    """Close the DuckDB database dbt-duckdb keeps open in this process between invocations."""
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    with DuckDBConnectionManager._LOCK:
        if DuckDBConnectionManager._ENV is not None:
            DuckDBConnectionManager._ENV.close()
            DuckDBConnectionManager._ENV = None


def interrupt_dbt_database() -> None:
    """Interrupt the query dbt-duckdb is running in this process, if any (a stopped run)."""
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    env = DuckDBConnectionManager._ENV
    conn = getattr(env, "conn", None) if env is not None else None
    if conn is not None:
        conn.interrupt()


@dataclass
class DbtOutcome:
    """What one in-process dbt command did."""

    success: bool
    seconds: float
    #: node status (success, pass, error, fail, skipped) -> nodes
    statuses: Counter = field(default_factory=Counter)
    #: "<node>: <dbt's message>" for each error and failed test
    failures: list[str] = field(default_factory=list)
    #: node name -> seconds dbt spent on it
    timings: dict[str, float] = field(default_factory=dict)
    #: the names of the data and unit tests among them
    tests: set[str] = field(default_factory=set)
    exception: BaseException | None = None

    def summary(self) -> str:
        counts = ", ".join(f"{n} {s}" for s, n in sorted(self.statuses.items())) or "no nodes"
        return f"dbt {'succeeded' if self.success else 'failed'} in {self.seconds:.2f} s: {counts}"


def run_dbt(
    args: Sequence[str],
    *,
    project_dir: str | Path,
    profiles_dir: str | Path,
    target_path: str | Path,
    callbacks: Sequence[Callable[[Any], None]] = (),
    write_json: bool = False,
) -> DbtOutcome:
    """One dbt command (``["build", "--vars", ...]``) in this process, its database closed after it whatever
    happens. Logs, compiled SQL and dbt's partial parse go to ``target_path``: the project's own target holds the
    manifest other processes read, so a run writes elsewhere. ``manifest.json`` and ``run_results.json`` are
    written only with ``write_json``: nothing reads them (the run's events and :class:`DbtOutcome` carry the
    results), and writing the manifest twice cost about 0.3 s of a one-day sync's 2.7 s of dbt at tier S."""
    from dbt.cli.main import dbtRunner

    target = Path(target_path)
    argv = [*args, "--no-use-colors", "--project-dir", str(project_dir), "--profiles-dir", str(profiles_dir),
            "--target-path", str(target), "--log-path", str(target / "logs"),
            "--write-json" if write_json else "--no-write-json"]  # fmt: skip
    t0 = time.perf_counter()
    try:
        result = dbtRunner(callbacks=list(callbacks)).invoke(argv)
    finally:
        close_dbt_database()
    outcome = DbtOutcome(success=result.success, seconds=time.perf_counter() - t0, exception=result.exception)
    for r in getattr(result.result, "results", None) or []:
        status = str(r.status)
        outcome.statuses[status] += 1
        outcome.timings[r.node.name] = float(r.execution_time or 0.0)
        if str(getattr(r.node, "resource_type", "")) in ("test", "unit_test"):
            outcome.tests.add(r.node.name)
        if status in ("error", "fail", "runtime error"):
            outcome.failures.append(f"{r.node.name}: {r.message}")
    return outcome


class DbtRunnerResource(dg.ConfigurableResource):
    """The dbt project, run in the step's process (this module's docstring says how and why)."""

    project_dir: str
    profiles_dir: str

    def target_path(self, database: str | Path) -> Path:
        """The dbt target of builds on ``database``: its artifacts and dbt's partial parse, so the next build on
        the warehouse, in this process or the next, parses only what changed (a new directory per build makes dbt
        parse the whole project each time, about 9 s here). One per warehouse: its file names the warehouse, and
        the targets of warehouses that no longer exist are removed."""
        database = Path(database).resolve()
        root = Path(self.project_dir) / "target"
        for old in root.glob("run-*"):
            named = old / WAREHOUSE_FILE
            if old.is_dir() and named.exists() and not Path(named.read_text().strip()).exists():
                shutil.rmtree(old, ignore_errors=True)
        target = root / f"run-{hashlib.sha256(str(database).encode()).hexdigest()[:12]}"
        target.mkdir(parents=True, exist_ok=True)
        (target / WAREHOUSE_FILE).write_text(f"{database}\n")
        return target

    def build(
        self, context: dg.AssetExecutionContext, args: Sequence[str], translator, database: str | Path
    ) -> Iterator[Any]:
        """``dbt <args>`` on ``database`` for the assets and checks ``context`` selected, yielding their Dagster
        events as dbt finishes each node; raises ``dg.Failure`` naming every failed node when dbt fails. Builds on
        one warehouse take its target in turn (a lock on it: DuckDB has one writer anyway)."""
        from dagster_dbt.asset_utils import get_updated_cli_invocation_params_for_context
        from dagster_dbt.core.dbt_cli_event import DbtCoreCliEventMessage
        from dbt_common.events.functions import msg_to_dict

        params = get_updated_cli_invocation_params_for_context(context, {}, translator)
        project_dir = Path(params.dbt_project.project_dir) if params.dbt_project else Path(self.project_dir)
        selection = list(params.selection_args)
        if params.indirect_selection:
            selection += ["--indirect-selection", params.indirect_selection]
        target = self.target_path(database)
        events: queue.Queue = queue.Queue()
        done = object()
        outcome: list[DbtOutcome] = []

        def on_event(msg) -> None:  # on dbt's threads: only the queue is touched
            if msg.info.name in RESULT_EVENTS and msg.data.node_info.unique_id:
                events.put(msg_to_dict(msg))

        def work() -> None:
            try:
                with open(target / LOCK_FILE, "w") as lock:
                    fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
                    run = run_dbt([*args, *selection], project_dir=project_dir, profiles_dir=self.profiles_dir,
                                  target_path=target, callbacks=[on_event])  # fmt: skip
                outcome.append(run)
            except BaseException as exc:  # handed to the step's thread below
                outcome.append(DbtOutcome(success=False, seconds=0.0, exception=exc))
            finally:
                events.put(done)

        worker = threading.Thread(target=work, name="dbt", daemon=True)
        worker.start()
        try:
            while (raw := events.get()) is not done:
                if raw["info"]["level"] in ("warn", "error"):
                    context.log.warning(raw["info"]["msg"])
                event = DbtCoreCliEventMessage(raw_event=raw, event_history_metadata={})
                yield from event.to_default_asset_events(
                    manifest=params.manifest, dagster_dbt_translator=params.dagster_dbt_translator,
                    context=context, target_path=target, project=params.dbt_project,
                )  # fmt: skip
        except BaseException:
            # the run stopped (or the step failed) while dbt ran: stop dbt's query and let dbt unwind
            interrupt_dbt_database()
            worker.join(STOP_WAIT_S)
            raise
        worker.join()
        result = outcome[0]
        context.log.info(result.summary())
        if not result.success:
            detail = "\n".join(result.failures) or repr(result.exception)
            raise dg.Failure(
                description=f"dbt {' '.join(args[:1])} failed:\n{detail}",
                metadata={"failures": len(result.failures), "statuses": dict(result.statuses)},
            )
