"""After `from fastai.vision.all import *`, star-importing coursekit keeps fastai's Hook working and gives an
ActivationStats with fastai's methods."""
import subprocess, sys

def test_star_imports_after_fastai():
    code = '''
from fastai.vision.all import *
import fastai.callback.hook as fh
from coursekit.core import *; from coursekit.hooks import *; from coursekit.data import *; from coursekit.kernels import *
from coursekit.arith import *; from coursekit.cnn import *; from coursekit.stats import *; from coursekit.cam import *
from coursekit.augment import *
import torch, torch.nn as nn
assert Hook is fh.Hook and Hooks is fh.Hooks
m = nn.Linear(2, 3)
with Hook(m, lambda mod, i, o: o.shape) as h: m(torch.zeros(4, 2))
assert h.stored == (4, 3)
for name in ('color_dim', 'plot_layer_stats', 'hist', 'layer_stats'): assert callable(getattr(ActivationStats, name)), name
print('ok')
'''
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == 'ok', r.stderr[-3000:]

def test_fastai_style_accessors_on_our_stats():
    import torch
    from coursekit.stats import ActivationStats
    st = ActivationStats()
    st.stats, st.histograms = torch.rand(5, 2, 4), torch.randint(0, 9, (5, 2, 40)).float()
    means, stds, nz = st.layer_stats(1)
    assert torch.equal(means, st.stats[:, 1, 0]) and torch.equal(nz, st.stats[:, 1, 2])
    assert torch.equal(st.hist(0), st.histograms[:, 0].T.log1p())
