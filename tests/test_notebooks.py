"""Executes the whole notebook series on the `smoke` preset, as `make demo` does on `cpu-demo`."""

import json

import nbformat
import pytest

from labkit.config import load_config
from labkit.nbrun import NotebookFailed, notebook_paths, run_notebooks
from labkit.runs import Run


def test_every_notebook_starts_with_the_install_cell_a_parameters_cell_then_the_start_cell():
    from labkit.colab_install import install_cell

    for path in notebook_paths():
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert code[0].source == install_cell(), path.name
        assert "parameters" in code[1].metadata.get("tags", []), path.name
        assert "PRESET" in code[1].source and "RUN" in code[1].source and "OVERRIDES" in code[1].source
        assert "start(PRESET, RUN, OVERRIDES" in code[2].source, path.name


def test_papermill_sees_every_parameter():
    """A trailing comment with brackets once hid OVERRIDES from papermill, silently dropping --set overrides."""
    import papermill

    for path in notebook_paths():
        assert list(papermill.inspect_notebook(str(path))) == ["PRESET", "RUN", "OVERRIDES"], path.name


def test_notebooks_have_no_outputs_committed_and_no_hard_coded_devices():
    for path in notebook_paths():
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs, f"{path.name} has committed outputs"
                assert '"cuda"' not in cell.source and "'cuda'" not in cell.source, path.name
                assert "def " not in cell.source, f"{path.name}: helper code belongs in labkit"


@pytest.mark.notebooks
def test_notebook_series_runs_on_smoke_preset():
    run = Run.open("nb-smoke", load_config("smoke"))
    results = run_notebooks("smoke", run, progress=False)
    assert [r["notebook"][:2] for r in results] == ["01", "02", "03", "04", "05"]
    for result in results:
        nb = nbformat.read(result["output"], as_version=4)
        errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                  if o.get("output_type") == "error"]
        assert not errors
    assert json.loads(run.path("notebooks.json").read_text())[0]["notebook"] == "01_data_prep.ipynb"
    for output in ("data/train.jsonl", "adapter/adapter_config.json", "train_summary.json", "eval/summary.json",
                   "inference/side_by_side.jsonl", "report/summary.md"):
        assert run.path(output).exists(), f"the series left no {output} in the run folder"


def test_a_failing_cell_names_the_notebook_and_cell(tmp_path, monkeypatch):
    folder = tmp_path / "nbs"
    folder.mkdir()
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("PRESET = 'smoke'\nRUN = 'x'\nOVERRIDES = []")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell("raise ValueError('boom')")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, folder / "01_bad.ipynb")
    monkeypatch.setattr("labkit.nbrun.notebook_paths", lambda only=None: [folder / "01_bad.ipynb"])
    with pytest.raises(NotebookFailed, match="01_bad.ipynb: cell .* failed with ValueError: boom"):
        run_notebooks("smoke", Run.open("bad", load_config("smoke")), progress=False)
