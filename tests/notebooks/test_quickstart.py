"""templates/notebooks/quickstart.ipynb runs, end to end, on the local backend.

The notebook is executed by nbclient in a real Jupyter kernel with tiny settings injected after
its parameters cell (as papermill injects them): a few dozen synthetic images, one epoch at 128
pixels, under a temporary DETECTCTL_HOME. The SageMaker branch of its backend cell is not
executed (BACKEND stays "local"), but every cell must compile.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "templates" / "notebooks" / "quickstart.ipynb"
TINY = {"IMAGES": 30, "EPOCHS": 1, "IMAGE_SHAPE": 128}


def _notebook() -> dict:
    return json.loads(NOTEBOOK.read_text(encoding="utf-8"))


def _code_cells(notebook: dict) -> list[dict]:
    return [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]


def _source(cell: dict) -> str:
    return "".join(cell["source"])


def test_notebook_is_stored_without_outputs():
    for cell in _code_cells(_notebook()):
        assert cell["outputs"] == [] and cell["execution_count"] is None, _source(cell)[:60]


def test_one_parameters_cell_runs_locally_by_default():
    cells = [cell for cell in _code_cells(_notebook())
             if "parameters" in cell["metadata"].get("tags", [])]
    assert len(cells) == 1
    values: dict = {}
    exec(_source(cells[0]), values)  # the notebook's own constants
    assert values["BACKEND"] == "local"
    assert set(TINY) <= set(values)


def test_every_code_cell_compiles():
    for index, cell in enumerate(_code_cells(_notebook())):
        compile(_source(cell), f"{NOTEBOOK.name}, code cell {index}", "exec")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary DETECTCTL_HOME and config for the kernel; every local job and endpoint the
    notebook leaves is stopped afterwards, whatever happened."""
    for name in list(os.environ):
        if name.startswith(("DETECTCTL_", "AWS_")):
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    monkeypatch.setenv("DETECTCTL_HOME", str(home))
    monkeypatch.setenv("DETECTCTL_CONFIG", str(tmp_path / "detectctl.toml"))
    yield home
    from detectctl.local.jobs import list_jobs
    from detectctl.local.state import alive
    from detectctl.session import Session

    for endpoint in Session(backend="local").endpoints():
        endpoint.delete()
    for job in list_jobs(home / "jobs", limit=100):
        local = job.description.get("Local", {})
        for process in [local.get("Supervisor"), *local.get("Hosts", [])]:
            if process and alive(process):
                os.killpg(process["Pid"], signal.SIGKILL)


def _outputs(cell: dict) -> str:
    text = []
    for output in cell.get("outputs", []):
        text.append("".join(output.get("text", "")))
        text += ["".join(v) for k, v in output.get("data", {}).items() if k.startswith("text/")]
    return "\n".join(text)


def test_quickstart_runs_on_the_local_backend(tmp_path, home):
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.reads(NOTEBOOK.read_text(encoding="utf-8"), as_version=4)
    at = next(i for i, cell in enumerate(notebook.cells)
              if "parameters" in cell.metadata.get("tags", []))
    values = {**TINY, "WORK": str(tmp_path / "work")}
    injected = nbformat.v4.new_code_cell(
        "\n".join(f"{name} = {value!r}" for name, value in values.items()),
        metadata={"tags": ["injected-parameters"]})
    notebook.cells.insert(at + 1, injected)

    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()

    cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    everything = "\n".join(_outputs(cell) for cell in cells)
    assert "Session(backend='local')" in everything
    assert "epoch 1/1, cross_entropy" in everything
    assert "held-out mAP" in everything
    job_cell = next(cell for cell in cells if "session.train(" in _source(cell))
    html = [o for o in job_cell.outputs if "text/html" in o.get("data", {})]
    assert html and "Completed" in html[0]["data"]["text/html"]
    pictures = [o for cell in cells for o in cell.outputs if "image/png" in o.get("data", {})]
    assert len(pictures) >= 2  # the preview and the drawn detections
    assert (tmp_path / "work" / "predictions.jsonl").is_file()
    from detectctl.session import Session

    assert Session(backend="local").endpoints() == []  # the notebook deleted its endpoint
