"The exported library stays readable: no unused or undefined names, short lines, no private name used across modules."
import ast, subprocess, sys
import pytest
from pathlib import Path
import coursekit

LIB = Path(coursekit.__file__).parent
MODULES = sorted(p for p in LIB.glob('*.py') if p.name not in ('__init__.py', '_modidx.py'))

def test_pyflakes_reports_nothing():
    r = subprocess.run([sys.executable, '-m', 'pyflakes', *map(str, MODULES)], capture_output=True, text=True)
    assert r.returncode == 0 and not r.stdout.strip(), r.stdout + r.stderr

def test_lines_at_most_120_characters():
    "nbdev writes `__all__` itself (wrapped at 120, then prefixed): that line is the one exception."
    long = [f'{p.name}:{i}' for p in MODULES for i, l in enumerate(p.read_text().splitlines(), 1)
            if len(l) > 120 and not l.startswith('__all__ = ')]
    assert not long, long

def private_names_used_across_modules(path: Path) -> list:
    "`from .x import _y`, `from coursekit.x import _y` and `x._y` where x is another coursekit module."
    tree, found = ast.parse(path.read_text()), []
    modules = {p.stem for p in MODULES}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.level or (node.module or '').startswith('coursekit')):
            found += [f'{path.name}:{node.lineno} imports {a.name}' for a in node.names if a.name.startswith('_')]
        if isinstance(node, ast.Attribute) and node.attr.startswith('_') and not node.attr.startswith('__'):
            if isinstance(node.value, ast.Name) and node.value.id in modules:
                found.append(f'{path.name}:{node.lineno} uses {node.value.id}.{node.attr}')
    return found

def test_no_private_name_used_across_modules():
    found = [f for p in MODULES for f in private_names_used_across_modules(p)]
    assert not found, found

def test_the_check_finds_a_private_import(tmp_path):
    bad = tmp_path/'bad.py'; bad.write_text('from .arith import _geometry\nfrom . import cam\ncam._run\n')
    assert len(private_names_used_across_modules(bad)) == 2

# ---------------- the chapters teach in small steps (tools/nb_metrics.py) ----------------
sys.path.insert(0, str(Path(__file__).resolve().parent.parent/'tools'))
import nb_metrics

@pytest.mark.parametrize('nb', nb_metrics.CHAPTERS, ids=lambda p: p.stem)
def test_chapter_exports_in_small_steps(nb):
    m = nb_metrics.chapter_metrics(nb)
    assert m['median'] <= 8 and m['largest'] <= 30, m
    assert m['code'] <= m['prose'], m

@pytest.mark.parametrize('name', nb_metrics.TEACHING)
def test_argument_checks_at_most_12_percent(name):
    checks, total = nb_metrics.check_share(LIB/f'{name}.py')
    assert checks <= 0.12 * total, f'{name}: {checks} of {total} statements are checks'

def test_the_metrics_count_checks(tmp_path):
    f = tmp_path/'m.py'
    f.write_text('def f(x):\n    "doc"\n    if x < 0: raise ValueError(x)\n    check_int(x, "x")\n    y = x + 1\n    return y\n')
    assert nb_metrics.check_share(f) == (3, 5)  # the if, its raise, the check_int call; of 5 statements

def foreign_assignments(path: Path) -> list:
    "Assignments to attributes of torch, fastai or another library's objects (`F.max_pool2d = ...`, `learn._x = ...`)."
    roots = {'torch', 'nn', 'F', 'fastai', 'np', 'plt', 'timm', 'learn'}
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        targets = node.targets if isinstance(node, ast.Assign) else \
            [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else []
        targets = [e for t in targets for e in (t.elts if isinstance(t, ast.Tuple) else [t])]
        for t in targets:
            base = t
            while isinstance(base, ast.Attribute): base = base.value
            if isinstance(t, ast.Attribute) and isinstance(base, ast.Name) and base.id in roots:
                found.append(f'{path.name}:{node.lineno} assigns {ast.unparse(t)}')
            if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Attribute) and t.value.attr == 'learn':
                found.append(f'{path.name}:{node.lineno} assigns {ast.unparse(t)}')
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == 'setattr' and node.args:
            a = node.args[0]
            if isinstance(a, ast.Name) and a.id in roots: found.append(f'{path.name}:{node.lineno} setattr on {a.id}')
    return found

def test_nothing_assigns_to_fastai_or_torch():
    found = [f for p in MODULES for f in foreign_assignments(p)]
    assert not found, found

def test_the_assignment_check_finds_patches(tmp_path):
    bad = tmp_path/'bad.py'; bad.write_text('F.max_pool2d = f\nself.learn._do_epoch = g\ntorch.backends.cudnn.benchmark = True\na, torch.x = 1, 2\n')
    assert len(foreign_assignments(bad)) == 4

def test_pyflakes_over_tests_tools_and_benchmarks():
    root = LIB.parent
    files = [str(p) for d in ('tests', 'tools', 'benchmarks') for p in sorted((root/d).glob('*.py'))]
    r = subprocess.run([sys.executable, '-m', 'pyflakes', *files], capture_output=True, text=True)
    assert r.returncode == 0 and not r.stdout.strip(), r.stdout + r.stderr

def test_the_docs_sidebar_lists_every_notebook():
    import yaml
    root = LIB.parent
    side = yaml.safe_load((root/'nbs'/'sidebar.yml').read_text())['website']['sidebar']['contents']
    listed = [side[0]] + [n for sec in side[1:] for n in sec['contents']]
    assert sorted(listed) == sorted(p.name for p in (root/'nbs').glob('*.ipynb')), listed
