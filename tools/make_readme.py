"""Write README.md from nbs/index.ipynb (what `nbdev_readme` does, without needing Quarto).

The first markdown cell's `# title` and `> description` become the heading; markdown cells are copied as they are;
code cells that are not hidden become python blocks followed by their text output. `--check` only compares.
"""
import json, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

def render(nb_path=ROOT/'nbs'/'index.ipynb') -> str:
    nb = json.loads(Path(nb_path).read_text())
    out = []
    for c in nb['cells']:
        src = ''.join(c['source']).strip()
        if c['cell_type'] == 'markdown': out.append(src)
        elif src and not src.startswith('#| hide'):
            out.append(f'```python\n{src}\n```')
            for o in c.get('outputs', []):
                text = o.get('text') or o.get('data', {}).get('text/plain')
                if text: out.append('    ' + ''.join(text).rstrip().replace('\n', '\n    '))
    return '\n\n'.join(out) + '\n'

if __name__ == '__main__':
    text, readme = render(), ROOT/'README.md'
    if '--check' in sys.argv:
        sys.exit(0 if readme.exists() and readme.read_text() == text else 'README.md is out of date: run `make readme`')
    readme.write_text(text)
    print('wrote README.md')
