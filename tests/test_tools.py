"""The helpers of tools/run_notebooks.py that decide how a re-run notebook is compared with its committed outputs."""
import json, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT/'tools'))
import run_notebooks as rn

def test_every_notebook_names_the_cpu_that_saved_its_outputs():
    prints = rn.saved_fingerprints()
    assert sorted(prints) == sorted(p.name for p in (ROOT/'nbs').glob('[0-9]*.ipynb'))
    assert all(len(v) == 16 and int(v, 16) >= 0 for v in prints.values())

def test_saving_one_notebook_records_this_cpu_for_it_alone(tmp_path, monkeypatch):
    f = tmp_path/'prints.json'; f.write_text(json.dumps({'a.ipynb': 'elsewhere'}))
    monkeypatch.setattr(rn, 'FINGERPRINTS', f); monkeypatch.setattr(rn, 'arithmetic_fingerprint', lambda: 'here')
    assert not rn.same_arithmetic(Path('nbs/a.ipynb')) and not rn.same_arithmetic(Path('nbs/b.ipynb'))
    rn.record_fingerprint(Path('nbs/b.ipynb'))
    assert json.loads(f.read_text()) == {'a.ipynb': 'elsewhere', 'b.ipynb': 'here'}
    assert rn.same_arithmetic(Path('nbs/b.ipynb')) and not rn.same_arithmetic(Path('nbs/a.ipynb'))

def test_the_masked_comparison_hides_numbers_and_their_signs_but_not_words():
    assert rn.masked('corr -0.53, acc 0.9841') == rn.masked('corr 0.31, acc 0.98')
    assert rn.masked('corr 0.31') != rn.masked('loss 0.31')
