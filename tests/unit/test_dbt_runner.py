"""The in-process dbt runner's own parts: its target directories and a failed command's outcome."""

import os
import subprocess
import sys

from assets.transform.project import DBT_PROJECT_DIR
from assets.transform.runner import DbtRunnerResource, run_dbt


def test_a_process_writes_its_own_target_and_clears_those_of_ended_processes(tmp_path):
    ended = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead = int(
        ended.stdout
    )  # a process that has exited: its pid names no live process (unless reused at once)
    alive = os.getppid()
    for pid in (dead, alive):
        (tmp_path / "target" / f"run-{pid}").mkdir(parents=True)
    (tmp_path / "target" / "run-notes").mkdir()  # not a pid: left alone
    target = DbtRunnerResource(project_dir=str(tmp_path), profiles_dir=str(tmp_path)).target_path()
    assert target == tmp_path / "target" / f"run-{os.getpid()}"
    left = sorted(p.name for p in (tmp_path / "target").iterdir())
    assert left == sorted([f"run-{alive}", "run-notes"])


def test_a_failed_command_says_what_dbt_said(tmp_path):
    outcome = run_dbt(["build", "--vars", "{not yaml"],
                      project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR, target_path=tmp_path)  # fmt: skip
    assert not outcome.success and "is not valid YAML" in str(outcome.exception)
    assert outcome.summary().startswith("dbt failed in") and outcome.summary().endswith("no nodes")
