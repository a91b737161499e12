"""Render every notebook, with its committed outputs, to static HTML in `_site/` (offline: nothing is fetched, at
build time or when the pages are read), plus an index page. `make site` runs it; open `_site/index.html`.

Cells marked `#| hide` are left out (imports and tests of the notebook's own plumbing) and directive lines (`#| ...`)
are dropped from the code shown, as nbdev's docs do. Markdown (questionnaire answers in `<details>` too), figures,
tables and `show_doc` output come from nbconvert's `lab` template, with its CDN scripts (MathJax, require.js) off."""
import argparse, copy, html, json, re, shutil
from pathlib import Path
import nbformat
from nbconvert import HTMLExporter

ROOT = Path(__file__).resolve().parent.parent

def _clean(nb):
    "A copy of `nb` without `#| hide` cells and directive lines, as the reader of the docs sees it."
    nb = copy.deepcopy(nb)
    keep = []
    for c in nb.cells:
        src = c.source
        if c.cell_type == 'code':
            if re.search(r'^#\|\s*(hide|default_exp)\b', src, re.M): continue
            c.source = '\n'.join(l for l in src.splitlines() if not l.startswith('#|')).strip()
            if not c.source and not c.get('outputs'): continue
        keep.append(c)
    nb.cells = keep
    return nb

def _title(nb, path):
    first = next((c.source for c in nb.cells if c.cell_type == 'markdown'), '')
    m = re.search(r'^#\s+(.+)$', first, re.M)
    d = re.search(r'^>\s*(.+)$', first, re.M)
    return (m.group(1).strip() if m else path.stem), (d.group(1).strip() if d else '')

def build(out: Path):
    "Write one page per notebook and an index into `out` (replaced whole)."
    ex = HTMLExporter(template_name='lab', mathjax_url='', require_js_url='', jquery_url='', mermaid_js_url='',
                      widget_renderer_url='', jupyter_widgets_base_url='', exclude_input_prompt=True,
                      exclude_output_prompt=True)
    tmp = out.with_name(out.name + '.tmp'); shutil.rmtree(tmp, ignore_errors=True); tmp.mkdir()
    rows = []
    for path in sorted((ROOT/'nbs').glob('[0-9]*.ipynb')):
        nb = nbformat.read(path, as_version=4)
        title, desc = _title(nb, path)
        body, _ = ex.from_notebook_node(_clean(nb), resources={'metadata': {'name': title}})
        (tmp/f'{path.stem}.html').write_text(body)
        rows.append((path.stem, title, desc))
    items = '\n'.join(f'<li><a href="{s}.html">{html.escape(t)}</a> <span class="d">{html.escape(d)}</span>'
                      f' <code>{s}.ipynb</code></li>' for s, t, d in rows)
    (tmp/'index.html').write_text(f'''<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>coursekit: a course on convolutional neural networks</title>
<style>body{{font-family:system-ui,sans-serif;max-width:56rem;margin:2rem auto;padding:0 1rem;line-height:1.5}}
li{{margin:.4rem 0}} .d{{color:#555}} code{{color:#888;font-size:85%}}</style></head><body>
<h1>coursekit</h1><p>A course on convolutional neural networks, written as notebooks, and the library they export.
Each page is a notebook with the outputs of its last run. The notebooks numbered 8x and 9x are the library's
internals.</p><ul>
{items}
</ul></body></html>''')
    (tmp/'manifest.json').write_text(json.dumps([r[0] for r in rows]))
    shutil.rmtree(out, ignore_errors=True); tmp.rename(out)
    return rows

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--out', type=Path, default=ROOT/'_site')
    a = p.parse_args()
    rows = build(a.out)
    print(f'site: {len(rows)} pages and index.html in {a.out}')
