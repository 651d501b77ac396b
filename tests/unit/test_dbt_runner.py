"""The in-process dbt runner's own parts: its target directories and a failed command's outcome."""

from assets.transform.project import DBT_PROJECT_DIR
from assets.transform.runner import DbtRunnerResource, run_dbt


def test_each_warehouse_has_its_own_target_and_those_of_removed_warehouses_go(tmp_path):
    resource = DbtRunnerResource(project_dir=str(tmp_path), profiles_dir=str(tmp_path))
    kept, gone = tmp_path / "kept.duckdb", tmp_path / "gone.duckdb"
    kept.touch()
    gone.touch()
    a, b = resource.target_path(kept), resource.target_path(gone)
    assert a != b and a.parent == b.parent == tmp_path / "target"
    assert resource.target_path(tmp_path / "." / "kept.duckdb") == a  # one per file, however it is named
    (a / "partial_parse.msgpack").write_text("kept between builds")
    (tmp_path / "target" / "run-notes").mkdir()  # names no warehouse: left alone
    gone.unlink()
    assert resource.target_path(kept) == a
    assert sorted(p.name for p in (tmp_path / "target").iterdir()) == sorted([a.name, "run-notes"])
    assert (a / "partial_parse.msgpack").read_text() == "kept between builds"


def test_a_failed_command_says_what_dbt_said(tmp_path):
    outcome = run_dbt(["build", "--vars", "{not yaml"],
                      project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR, target_path=tmp_path)  # fmt: skip
    assert not outcome.success and "is not valid YAML" in str(outcome.exception)
    assert outcome.summary().startswith("dbt failed in") and outcome.summary().endswith("no nodes")
