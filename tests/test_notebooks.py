"""The notebooks in notebooks/ run top to bottom in a fresh Jupyter kernel, and are stored
as they last ran. A marked group (`pytest -m notebooks`): plain `pytest` leaves it out,
`.ci/run` runs it after the suite. Each notebook's run time is printed, not asserted (the
budget, 4 minutes on 2 cores, is checked by reading the output)."""
import json
import time

import pytest

from conftest import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))


def test_there_are_notebooks_and_an_index():
    assert NOTEBOOKS
    index = (ROOT / "notebooks" / "README.md").read_text()
    for path in NOTEBOOKS:
        assert path.name in index, f"notebooks/README.md does not list {path.name}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_stored_notebook_ran_top_to_bottom(path):
    # What a reader sees on a code-hosting site: every code cell with its output, numbered
    # 1, 2, 3, ... (one run, top to bottom, after the last edit of any cell).
    cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    assert [c["execution_count"] for c in cells] == list(range(1, len(cells) + 1))
    assert all(c["outputs"] for c in cells), "a code cell without stored output"
    assert not [o for c in cells for o in c["outputs"] if o["output_type"] == "error"]


@pytest.mark.notebooks
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path, mnist_dir, monkeypatch, capsys):
    import nbformat
    from nbclient import NotebookClient
    monkeypatch.setenv("FASTMLP_DATA_DIR", mnist_dir)
    book = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(book, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    seconds = time.perf_counter() - start
    with capsys.disabled():
        print(f"\n{path.name}: {seconds:.0f} s")
    errors = [o for c in book.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
