"""Run notebooks top to bottom in a real Jupyter kernel, as a learner's Run All would, and save their outputs in place.

Cells marked `#| slow` or `#| cuda` keep their saved outputs (they are not run) unless `--flags` names them.
`--check` runs every cell (slow and cuda ones too, as Run All does) and saves nothing: an error fails the run.
`--compare` also compares every printed number and table with the committed output: a cell whose output legitimately
changes from run to run says so with a comment line `# varies: <why>` (timings, memory), and numbers followed by a
unit of time or memory (`1.23 s`, `45 ms`, `310 MB`) are masked everywhere. Saving a notebook records the fingerprint
of this CPU's arithmetic for it in tools/outputs_fingerprint.json: on a CPU that rounds differently from the one that
saved a notebook (another model picks other kernels, so training numbers differ in their last bits and, over many
steps, further), `--compare` compares its words and layout with every number masked, and the notebook's own asserts
check what its text claims.
Usage: python tools/run_notebooks.py nbs/03_cnn.ipynb [more notebooks] [--flags slow] [--check] [--compare]
"""
import argparse, difflib, functools, json, os, re, subprocess, sys, time
from pathlib import Path
import nbformat
from nbclient import NotebookClient

def flags_of(source: str) -> set:
    "The `#| slow` / `#| cuda` directives of a cell."
    return set(re.findall(r'^#\|\s*(slow|cuda)\b', source, flags=re.M))

VARIES = re.compile(r'^\s*# varies:', re.M)
_UNITS = r'(?:s|ms|µs|us|ns|sec|seconds|min|minutes|it/s|images/s|MB|GB|KB|MiB|GiB|KiB|bytes)'
_MASKS = [(re.compile(r'[-+]?\d+(?:[.,]\d+)*(?:e[-+]?\d+)?\s*' + _UNITS + r'(?![A-Za-z])'), '<time/memory>'),
          (re.compile(r'(?<![\d:])\d{2}:\d{2}(?![\d:])'), '<mm:ss>'),  # fastai's time column
          (re.compile(r' at 0x[0-9a-f]+'), ''),  # object addresses (nbdev_clean removes them from saved outputs)
          (re.compile(r'0x[0-9a-f]{6,}'), '0x…'), (re.compile(r'\x1b\[[0-9;]*m'), '')]

def text_of(cell) -> str:
    "What a cell printed, as text: streams, results and displays (text/plain; figures are left out), masked."
    parts, last = [], None
    for o in cell.get('outputs', []):
        kind = o.get('output_type')
        if kind == 'stream' and last == ('stream', o.get('name')): parts[-1] += ''.join(o.get('text', ''))  # one print
        elif kind == 'stream': parts.append(''.join(o.get('text', '')))  # may come as several messages
        elif kind in ('execute_result', 'display_data'): parts.append(''.join(o.get('data', {}).get('text/plain', '')))
        elif kind == 'error': parts.append(f"error: {o.get('ename')}: {o.get('evalue')}")
        last = (kind, o.get('name'))
    text = '\n'.join(p.rstrip('\n') for p in parts)
    for rx, sub in _MASKS: text = rx.sub(sub, text)
    return re.sub(r'<(?:Figure|matplotlib|IPython)[^>]*>', '<object>', text).strip()

FINGERPRINTS = Path(__file__).with_name('outputs_fingerprint.json')  # notebook name -> fingerprint of its CPU
_PROBE = """import hashlib, torch, torch.nn.functional as F
from coursekit.cnn import default_model
torch.set_num_threads(1); torch.manual_seed(0)
out = []
for bn in (False, True):  # convolutions, batchnorm, cross-entropy and Adam, forward and backward
    m, x, y = default_model('mnist', bn=bn), torch.randn(256, 1, 28, 28), torch.randint(0, 10, (256,))
    opt = torch.optim.Adam(m.parameters(), 0.01)
    for _ in range(3): opt.zero_grad(); F.cross_entropy(m(x), y).backward(); opt.step()
    out += [p.detach() for p in m.parameters()]
x, w = torch.randn(8, 32, 14, 14, requires_grad=True), torch.randn(32, 1, 3, 3)  # a depthwise convolution
F.conv2d(x, w, padding=1, groups=32).square().sum().backward(); out.append(x.grad)
theta = torch.eye(2, 3).expand(8, 2, 3) + torch.randn(8, 2, 3) * 0.1  # resampling, as augmentations do
out += [F.grid_sample(x.detach(), F.affine_grid(theta, (8, 32, 14, 14), align_corners=False), align_corners=False),
        torch.randn(257, 129) @ torch.randn(129, 65)]
print(hashlib.sha1(b''.join(t.contiguous().numpy().tobytes() for t in out)).hexdigest()[:16])"""

@functools.cache
def arithmetic_fingerprint() -> str:
    "A hash of seeded training steps, convolutions, resampling and a matrix product, at one thread, on this CPU."
    return subprocess.run([sys.executable, '-c', _PROBE], capture_output=True, text=True, check=True).stdout.strip()

def saved_fingerprints() -> dict: return json.loads(FINGERPRINTS.read_text()) if FINGERPRINTS.exists() else {}

def same_arithmetic(path: Path) -> bool:
    "Does this CPU round as the one that saved `path`'s outputs did?"
    return saved_fingerprints().get(Path(path).name) == arithmetic_fingerprint()

def record_fingerprint(path: Path):
    "Note that `path`'s outputs were saved on this CPU."
    prints = {**saved_fingerprints(), Path(path).name: arithmetic_fingerprint()}
    FINGERPRINTS.write_text(json.dumps(dict(sorted(prints.items())), indent=1) + '\n')

def masked(text: str) -> str: return ' '.join(re.sub(r'-?\d+(?:\.\d+)?(?:e[-+]?\d+)?', '#', text).split())

def differences(before, after, exact: bool = True) -> list:
    "Code cells whose printed output differs between two runs of a notebook (cells marked `# varies:` excepted)."
    out = []
    for i, (a, b) in enumerate(zip(before.cells, after.cells)):
        if a.cell_type != 'code' or VARIES.search(a.source): continue
        ta, tb = text_of(a), text_of(b)
        if not exact and masked(ta) == masked(tb): continue
        if ta != tb:
            diff = '\n'.join(difflib.unified_diff(ta.splitlines(), tb.splitlines(), 'committed', 're-run', lineterm='', n=0))
            out.append(f'cell {i} ({a.source.splitlines()[0][:60] if a.source else ""}):\n{diff[:1500]}')
    return out

def run_notebook(path: Path, flags: set = frozenset(), timeout: int = 1800, save: bool = True,
                 compare: bool = False, exact: bool = True) -> dict:
    "Execute `path`'s code cells in order (skipping flagged ones); save the outputs if `save`; report differences."
    os.environ.pop('MPLBACKEND', None)  # the kernel must draw figures inline, as in Jupyter
    committed = nbformat.read(path, as_version=4)
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name='python3', resources={'metadata': {'path': str(path.parent)}})
    t0, slowest = time.perf_counter(), []
    with client.setup_kernel():
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != 'code' or flags_of(cell.source) - set(flags): continue
            t = time.perf_counter()
            client.execute_cell(cell, i)  # raises CellExecutionError on an error
            slowest.append((time.perf_counter() - t, i))
    if save: nbformat.write(nb, path)
    return dict(seconds=time.perf_counter() - t0, slowest=sorted(slowest, reverse=True)[:3],
                differences=differences(committed, nb, exact) if compare else [])

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('notebooks', nargs='+', type=Path)
    p.add_argument('--flags', nargs='*', default=[], help='also run cells with these directives (slow, cuda)')
    p.add_argument('--check', action='store_true', help='run every cell, save nothing')
    p.add_argument('--compare', action='store_true', help='run every cell, save nothing, compare printed outputs')
    args = p.parse_args()
    failed, everything = 0, args.check or args.compare
    for nbp in args.notebooks:
        exact = same_arithmetic(nbp)
        print(f'running {nbp}' + ('' if exact or not args.compare else
                                  ' (saved on a CPU that rounds differently: numbers masked)'), flush=True)
        r = run_notebook(nbp, {'slow', 'cuda'} if everything else set(args.flags), save=not everything,
                         compare=args.compare, exact=exact)
        if not everything: record_fingerprint(nbp)
        slow = ', '.join(f'cell {i} {s:.1f} s' for s, i in r['slowest'])
        print(f"  {r['seconds']:.1f} s (slowest: {slow})")
        for d in r['differences']: print('  differs:', d.replace('\n', '\n    '))
        failed += bool(r['differences'])
    raise SystemExit(1 if failed else 0)
