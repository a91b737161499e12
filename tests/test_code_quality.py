"The exported library stays readable: no unused or undefined names, short lines, no private name used across modules."
import ast, re, subprocess, sys
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
