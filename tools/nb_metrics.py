"""How the chapters read: exported cells (median and largest, in non-blank lines), exported code against prose, and
the share of argument checks among each module's statements. `python tools/nb_metrics.py` prints both tables.

An exported cell is one with an `#| export` or `#| exporti` directive; its lines are its non-blank lines other than
directives. A statement counts as a check when it raises, when it is an `if` whose body raises or fails, or when
it calls `check`, `fail`, `as_pair` or a `check_*` function (the validator layer of `coursekit.core`)."""
import ast, json, re, statistics, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((ROOT/'nbs').glob('0[0-9]*_*.ipynb'))
TEACHING = ('kernels', 'arith', 'cnn', 'backward', 'stats', 'cam', 'augment')

def _lines(src: str) -> list: return [l for l in src.splitlines() if l.strip() and not l.startswith('#|')]

def chapter_metrics(path: Path) -> dict:
    "Exported cells' sizes and the chapter's exported code and prose, in non-blank lines."
    cells = json.loads(path.read_text())['cells']
    src = lambda c: ''.join(c['source'])
    exported = [len(_lines(src(c))) for c in cells
                if c['cell_type'] == 'code' and re.search(r'^#\|\s*export', src(c), re.M)]
    prose = sum(len(_lines(src(c))) for c in cells if c['cell_type'] == 'markdown')
    return dict(chapter=path.stem, exported_cells=len(exported), median=statistics.median(exported or [0]),
                largest=max(exported or [0]), over_30=sum(n > 30 for n in exported), code=sum(exported), prose=prose)

_CHECK_CALL = re.compile(r'^(_?check(_\w+)?|fail|_raise|as_pair)$')
_COMPOUND = (ast.If, ast.For, ast.While, ast.With, ast.Try, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)

def _calls_check(node) -> bool:
    return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and _CHECK_CALL.match(n.func.id)
               for n in ast.walk(node))

def _is_check(s) -> bool:
    if isinstance(s, (ast.Raise, ast.Assert)): return True
    if isinstance(s, ast.If): return any(isinstance(b, ast.Raise) or (isinstance(b, ast.Expr) and _calls_check(b))
                                         for b in s.body)
    return not isinstance(s, _COMPOUND) and _calls_check(s)

def check_share(path: Path) -> tuple:
    """(check statements, statements) of a module. Every statement counts (those inside functions too), except
    docstrings, imports and the `def`/`class` lines; `if ...: raise` counts twice (the `if` and the `raise`)."""
    stmts = [s for s in ast.walk(ast.parse(path.read_text())) if isinstance(s, ast.stmt)
             and not isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom))
             and not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant) and isinstance(s.value.value, str))]
    return sum(map(_is_check, stmts)), len(stmts)

if __name__ == '__main__':
    print(f"{'chapter':24} cells median largest >30  code prose")
    for p in CHAPTERS:
        m = chapter_metrics(p)
        print(f"{m['chapter']:24} {m['exported_cells']:5} {m['median']:6} {m['largest']:7} {m['over_30']:3} "
              f"{m['code']:5} {m['prose']:5}")
    print(f"\n{'module':10} checks statements share")
    for name in sys.argv[1:] or TEACHING:
        c, t = check_share(ROOT/'coursekit'/f'{name}.py')
        print(f'{name:10} {c:6} {t:10} {c / max(t, 1):6.1%}')
