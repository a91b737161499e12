"""A star import of coursekit after `from fastai.vision.all import *` leaves fastai's names as fastai made them, or
replaces them with something that takes the same arguments and gives the same results (`Hook`, `Hooks`: below)."""
import subprocess, sys
import pytest
import torch
import torch.nn as nn
from fastai.callback.hook import Hook as FHook, Hooks as FHooks
from coursekit.hooks import Hook, Hooks, count_hooks

REPLACED = {'Hook', 'Hooks'}  # ours, checked against fastai's below

def test_star_imports_after_fastai_keep_fastais_names():
    code = '''
import pkgutil, warnings, coursekit
warnings.filterwarnings('ignore')
ns = {}; exec('from fastai.vision.all import *', ns); before = dict(ns)
mods = sorted(m.name for m in pkgutil.iter_modules(coursekit.__path__) if not m.name.startswith('_'))
for m in mods: exec(f'from coursekit.{m} import *', ns)
print(len(mods), sorted(n for n in before if ns[n] is not before[n]))
'''
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    n, changed = r.stdout.strip().split(' ', 1)
    assert int(n) >= 11 and set(eval(changed)) <= REPLACED, changed

def model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Conv2d(3, 2, 3))

@pytest.mark.parametrize('kw', [{}, dict(detach=False), dict(cpu=True), dict(is_forward=False)])
def test_hook_stores_what_fastais_stores(kw):
    m, x = model(), torch.randn(2, 1, 7, 7, requires_grad=True)
    f = lambda mod, i, o: (tuple(t.shape for t in i if t is not None), o[0].sum().item() if isinstance(o, tuple)
                           else o.sum().item(), (o[0] if isinstance(o, tuple) else o).requires_grad)
    with Hook(m[2], f, **kw) as ours, FHook(m[2], f, **kw) as theirs:
        m(x).sum().backward()
    assert ours.stored == theirs.stored and ours.stored is not None
    assert count_hooks(m) == 0 and not m[2]._backward_hooks

def test_hooks_store_what_fastais_store():
    m, x = model(), torch.randn(2, 1, 7, 7)
    with Hooks(m, lambda mod, i, o: o.mean().item()) as ours, FHooks(m, lambda mod, i, o: o.mean().item()) as theirs:
        m(x)
    assert list(ours.stored) == list(theirs.stored) and len(ours) == len(theirs) == 3
    assert [h.stored for h in ours] == [h.stored for h in theirs]
    assert count_hooks(m) == 0
