"""Run notebooks top to bottom in a real Jupyter kernel, as a learner's Run All would, and save their outputs in place.

Cells marked `#| slow` or `#| cuda` keep their saved outputs (they are not run) unless `--flags` names them.
`--check` runs every cell (slow and cuda ones too, as Run All does) and saves nothing: an error fails the run.
Usage: python tools/run_notebooks.py nbs/03_cnn.ipynb [more notebooks] [--flags slow] [--check]
"""
import argparse, os, re
from pathlib import Path
import nbformat
from nbclient import NotebookClient

def flags_of(source: str) -> set:
    "The `#| slow` / `#| cuda` directives of a cell."
    return set(re.findall(r'^#\|\s*(slow|cuda)\b', source, flags=re.M))

def run_notebook(path: Path, flags: set = frozenset(), timeout: int = 1800, save: bool = True) -> None:
    "Execute `path`'s code cells in order (skipping flagged ones) and, if `save`, write the outputs back."
    os.environ.pop('MPLBACKEND', None)  # the kernel must draw figures inline, as in Jupyter
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name='python3', resources={'metadata': {'path': str(path.parent)}})
    with client.setup_kernel():
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != 'code' or flags_of(cell.source) - set(flags): continue
            client.execute_cell(cell, i)  # raises CellExecutionError on an error
    if save: nbformat.write(nb, path)

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('notebooks', nargs='+', type=Path)
    p.add_argument('--flags', nargs='*', default=[], help='also run cells with these directives (slow, cuda)')
    p.add_argument('--check', action='store_true', help='run every cell, save nothing')
    args = p.parse_args()
    for nbp in args.notebooks:
        print(f'running {nbp}', flush=True)
        run_notebook(nbp, {'slow', 'cuda'} if args.check else set(args.flags), save=not args.check)
