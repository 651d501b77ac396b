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
- dbt-duckdb keeps its database open between invocations in a process; it is closed after each one, so the run's
  other connections (which use another configuration) can open the file;
- a stopped run interrupts dbt's DuckDB query and waits for dbt to unwind.
"""

from __future__ import annotations

import os
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
#: how long a stopped run waits for dbt's thread to unwind after its query is interrupted
STOP_WAIT_S = 30.0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


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
    statuses: Counter = field(
        default_factory=Counter
    )  # node status -> nodes (success, pass, error, fail, skipped)
    failures: list[str] = field(
        default_factory=list
    )  # "<node>: <dbt's message>" for each error and failed test
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
) -> DbtOutcome:
    """One dbt command (``["build", "--vars", ...]``) in this process, its database closed after it whatever
    happens. Artifacts and logs go to ``target_path``: the project's own target holds the manifest other processes
    read, so a run writes elsewhere."""
    from dbt.cli.main import dbtRunner

    target = Path(target_path)
    argv = [*args, "--no-use-colors", "--project-dir", str(project_dir), "--profiles-dir", str(profiles_dir),
            "--target-path", str(target), "--log-path", str(target / "logs")]  # fmt: skip
    t0 = time.perf_counter()
    try:
        result = dbtRunner(callbacks=list(callbacks)).invoke(argv)
    finally:
        close_dbt_database()
    outcome = DbtOutcome(success=result.success, seconds=time.perf_counter() - t0, exception=result.exception)
    for r in getattr(result.result, "results", None) or []:
        status = str(r.status)
        outcome.statuses[status] += 1
        if status in ("error", "fail", "runtime error"):
            outcome.failures.append(f"{r.node.name}: {r.message}")
    return outcome


class DbtRunnerResource(dg.ConfigurableResource):
    """The dbt project, run in the step's process (this module's docstring says how and why)."""

    project_dir: str
    profiles_dir: str

    def target_path(self) -> Path:
        """This process's dbt target: runs of one process write their artifacts there in turn (and reuse its
        partial parse), processes never share one. Those of processes that have ended are removed, so the
        artifacts of the last run stay until the next one starts."""
        root = Path(self.project_dir) / "target"
        for old in root.glob("run-*"):
            pid = old.name.removeprefix("run-")
            if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
                shutil.rmtree(old, ignore_errors=True)
        return root / f"run-{os.getpid()}"

    def build(self, context: dg.AssetExecutionContext, args: Sequence[str], translator) -> Iterator[Any]:
        """``dbt <args>`` on the assets and checks ``context`` selected, yielding their Dagster events as dbt
        finishes each node; raises ``dg.Failure`` naming every failed node when dbt fails."""
        from dagster_dbt.asset_utils import get_updated_cli_invocation_params_for_context
        from dagster_dbt.core.dbt_cli_event import DbtCoreCliEventMessage
        from dbt_common.events.functions import msg_to_dict

        params = get_updated_cli_invocation_params_for_context(context, {}, translator)
        project_dir = Path(params.dbt_project.project_dir) if params.dbt_project else Path(self.project_dir)
        selection = list(params.selection_args)
        if params.indirect_selection:
            selection += ["--indirect-selection", params.indirect_selection]
        target = self.target_path()
        events: queue.Queue = queue.Queue()
        done = object()
        outcome: list[DbtOutcome] = []

        def on_event(msg) -> None:  # on dbt's threads: only the queue is touched
            if msg.info.name in RESULT_EVENTS and msg.data.node_info.unique_id:
                events.put(msg_to_dict(msg))

        def work() -> None:
            try:
                outcome.append(
                    run_dbt(
                        [*args, *selection],
                        project_dir=project_dir,
                        profiles_dir=self.profiles_dir,
                        target_path=target,
                        callbacks=[on_event],
                    )  # fmt: skip
                )
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
