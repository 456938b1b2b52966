"""Every notebook in notebooks/ runs top to bottom, quietly, and writes nothing into the repository.

Notebooks are percent-format scripts `notebooks/NN_name.py` paired by jupytext with
`notebooks/NN_name.ipynb`, which is committed without outputs. Each `.ipynb` found is executed
in a fresh kernel in a temporary working directory; an error, or anything printed to stderr
(a warning, a traceback), fails it.
"""

import fnmatch
import subprocess
from pathlib import Path

import jupytext
import matplotlib.font_manager  # noqa: F401 - see below
import nbclient
import nbformat
import pytest

# Importing the font manager builds matplotlib's font cache once per machine, here in the test
# process: a kernel doing it would print "Matplotlib is building the font cache" to stderr.

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
# nbclient's timeout is per cell: it catches a hung cell, not a slow notebook (whole notebooks
# take 15-51 s on 2 cores; tests do not assert on time). The margin covers a loaded CI machine.
TIMEOUT_S = 180


def _repository_state() -> object:
    """What a stray write would alter: in a git checkout, the tracked changes and untracked, not
    ignored, files; elsewhere (an unpacked sdist or archive) every file's size and mtime, less
    the directories .gitignore names."""
    try:
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=all"],
            cwd=REPO,
            capture_output=True,
            text=True,
        )
    except FileNotFoundError:  # no git on this machine
        status = None
    if status is not None and status.returncode == 0:
        return status.stdout
    ignored = [
        line.strip().rstrip("/")
        for line in (REPO / ".gitignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    files = []
    for path in REPO.rglob("*"):
        parts = path.relative_to(REPO).parts
        if ".git" in parts or any(fnmatch.fnmatch(p, g) for p in parts for g in ignored):
            continue
        if path.is_file():
            stat = path.stat()
            files.append((str(path.relative_to(REPO)), stat.st_size, stat.st_mtime_ns))
    return sorted(files)


def test_there_are_notebooks():
    assert NOTEBOOKS, "notebooks/ holds no .ipynb"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_paired_with_its_script_and_has_no_outputs(path):
    script = path.with_suffix(".py")
    assert script.exists(), f"{path.name} has no paired percent script {script.name}"
    committed = nbformat.read(path, as_version=4)
    paired = jupytext.read(script)
    assert [(c.cell_type, c.source) for c in committed.cells] == [
        (c.cell_type, c.source) for c in paired.cells
    ], f"{path.name} and {script.name} differ: run `jupytext --sync {script}`"
    # Both sides must declare the pairing, or `jupytext --sync` updates neither.
    for side in (committed, paired):
        formats = side.metadata.get("jupytext", {}).get("formats", "")
        assert formats == "ipynb,py:percent", (
            f"{path.name} is not paired: run `jupytext --set-formats ipynb,py:percent {path}`"
        )
    for cell in committed.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, (
                f"{path.name} is committed with outputs: clear them"
            )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_cleanly(path, tmp_path):
    before = _repository_state()
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},  # the kernel's working directory
    )
    client.execute()  # raises CellExecutionError on the first failing cell
    stderr = [
        output.text
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == "stream" and output.name == "stderr"
    ]
    assert not stderr, f"{path.name} printed to stderr:\n" + "".join(stderr)
    assert _repository_state() == before, f"{path.name} wrote into the repository"
