"""Every notebook runs as a learner's Run All would on a CPU: in a real Jupyter kernel, every cell, `#| slow` and
`#| cuda` ones included (a cuda cell says so and moves on when there is no GPU). Nothing is saved. The re-run must
print what the committed notebook shows (every number and table; cells marked `# varies:` and numbers with a unit of
time or memory excepted; on a CPU that rounds differently from the one that saved a notebook's outputs, the words
and layout with every number masked, the notebook's own asserts checking its claims), and each chapter's Run All time
is printed (`pytest -s`) and written to $RUN_ALL_TIMES (default: none). Notebooks run two at a time, one core each;
one that trains side by side on every core itself (chapter 4's three-seed table) runs alone, as on a learner's
machine."""
import json, os, sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT/'tools'))
from run_notebooks import run_notebook, same_arithmetic

NOTEBOOKS = sorted((ROOT/'nbs').glob('[0-9]*.ipynb'))
ALONE = {'04_activation_stats.ipynb'}  # uses every core (`stability_accuracies`)

def run(path, exact=True):
    try:
        r = run_notebook(path, {'slow', 'cuda'}, timeout=1800, save=False, compare=True, exact=exact)
        return path.name, None, r
    except Exception as e: return path.name, f'{type(e).__name__}: {str(e)[-1500:]}', None

def test_every_notebook_runs_all_cells_on_a_cpu_and_prints_its_committed_outputs():
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    exact = {p: same_arithmetic(p) for p in NOTEBOOKS}
    masked = [p.name for p, e in exact.items() if not e]
    print('outputs compared exactly' + (f'; with numbers masked (saved on a CPU that rounds differently): {masked}'
                                        if masked else ''))
    results = []
    for group, workers in ([p for p in NOTEBOOKS if p.name in ALONE], 1), ([p for p in NOTEBOOKS if p.name not in ALONE], 2):
        with ProcessPoolExecutor(workers) as ex:  # alone, then two kernels at a time, one core each
            results += list(ex.map(run, group, [exact[p] for p in group]))
    times = {name: round(r['seconds'], 1) for name, _, r in results if r}
    for name, t in times.items(): print(f'Run All {name}: {t} s')
    if os.environ.get('RUN_ALL_TIMES'): Path(os.environ['RUN_ALL_TIMES']).write_text(json.dumps(times, indent=1))
    failed = {name: err for name, err, _ in results if err}
    differ = {name: r['differences'] for name, _, r in results if r and r['differences']}
    assert len(results) == len(NOTEBOOKS) >= 10 and not failed, failed
    assert not differ, '\n'.join(f'{n}:\n' + '\n'.join(d) for n, d in differ.items())
