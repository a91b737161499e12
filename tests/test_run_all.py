"""Every notebook runs as a learner's Run All would on a CPU: in a real Jupyter kernel, every cell, `#| slow` and
`#| cuda` ones included (a cuda cell says so and moves on when there is no GPU). Nothing is saved."""
import os, sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT/'tools'))
from run_notebooks import run_notebook

NOTEBOOKS = sorted((ROOT/'nbs').glob('[0-9]*.ipynb'))

def run(path):
    try: run_notebook(path, {'slow', 'cuda'}, timeout=1800, save=False); return path.name, None
    except Exception as e: return path.name, f'{type(e).__name__}: {str(e)[-1500:]}'

def test_every_notebook_runs_all_cells_on_a_cpu():
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    with ProcessPoolExecutor(2) as ex: results = dict(ex.map(run, NOTEBOOKS))  # two kernels at a time, one core each
    failed = {k: v for k, v in results.items() if v}
    assert len(results) == len(NOTEBOOKS) >= 10 and not failed, failed
