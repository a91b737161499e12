"ActivationStats equals fastai's, batch by batch; hooks never outlive their use."
import gc
import pytest, torch
import torch.nn as nn
import torch.nn.functional as F
from fastai.learner import Learner
from fastai.metrics import accuracy
from fastai.callback.hook import ActivationStats as FastaiActivationStats
from fastai.callback.core import Callback
from fastai.torch_core import set_seed
from coursekit.data import mnist_dls
from coursekit.cnn import simple_cnn, train_cnn
from coursekit.stats import ActivationStats
from coursekit.hooks import Hook, Hooks, count_hooks

@pytest.fixture(scope='module')
def dls(): return mnist_dls('mnist', bs=128, device='cpu')

@pytest.mark.parametrize('bn,schedule', [(False, 'one_cycle'), (True, 'fit')])
def test_matches_fastai_every_layer_and_batch(dls, bn, schedule):
    set_seed(7)
    ours, theirs = ActivationStats(), FastaiActivationStats(with_hist=True)
    learn = Learner(dls, simple_cnn((1, 8, 16, 32, 64), n_out=10, first_ks=5, bn=bn), loss_func=F.cross_entropy,
                    metrics=accuracy, cbs=[ours, theirs])
    with learn.no_bar(), learn.no_logging():
        (learn.fit_one_cycle if schedule == 'one_cycle' else learn.fit)(1, 0.01)
    L = len(ours.mods)
    assert L == (10 if bn else 5) and len(theirs.stats) == len(dls.train) == ours.stats.shape[0]
    for j in range(L):
        for k, get in [('mean', ours.means), ('std', ours.stds), ('near_zero', ours.near_zero)]:
            ref = torch.tensor([b[j][k] for b in theirs.stats], dtype=torch.float32)
            got = get(j)
            assert got.device.type == 'cpu' and got.shape == (len(dls.train),)
            assert ((got - ref).abs() <= 1e-5 * ref.abs().clamp_min(1e-6)).all(), (j, k)
        ref_h = torch.stack([b[j]['hist'] for b in theirs.stats])
        assert ours.hists(j).shape == (len(dls.train), 40) and torch.allclose(ours.hists(j), ref_h, rtol=1e-5, atol=0)
    assert count_hooks(learn.model) == 0

def test_records_only_training_batches_and_moves_to_host_once(dls):
    st = ActivationStats(with_hist=False)
    learn = train_cnn('mnist', epochs=2, bs=256, device='cpu', cbs=[st], progress=False)
    assert st.stats.shape == (2 * len(learn.dls.train), len(st.mods), 3)
    with pytest.raises(ValueError, match='with_hist=False'): st.hists(0)
    assert count_hooks(learn.model) == 0

def test_hooks_removed_after_error_in_training(dls):
    class Boom(Callback):
        def after_batch(self):
            if self.iter == 3: raise RuntimeError('boom')
    model = simple_cnn((1, 8, 16, 32, 64), n_out=10, first_ks=5)
    with pytest.raises(RuntimeError, match='boom'):
        train_cnn('mnist', epochs=1, model=model, device='cpu', cbs=[ActivationStats(), Boom()], progress=False)
    assert count_hooks(model) == 0

def test_hooks_removed_when_callback_is_deleted(dls):
    model = simple_cnn()
    learn = Learner(mnist_dls(bs=64, device='cpu'), model, loss_func=F.cross_entropy)
    st = ActivationStats(); learn.add_cb(st)
    st.before_fit()  # hooks registered, as at the start of a fit that never ends
    assert count_hooks(model) == 5
    learn.remove_cb(st); del st; gc.collect()
    assert count_hooks(model) == 0

def test_hook_and_hooks_context_managers():
    model = simple_cnn()
    layers = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    with pytest.raises(ValueError):
        with Hooks(layers, lambda h, m, i, o: setattr(h, 'out', o.shape)) as hs:
            model(torch.zeros(2, 1, 28, 28))
            assert [h.out[1] for h in hs] == [4, 8, 16, 32, 2]
            assert count_hooks(model) == 5
            raise ValueError('inside the block')
    assert count_hooks(model) == 0
    h = Hook(layers[0], lambda *a: None); assert count_hooks(model) == 1
    del h; gc.collect(); assert count_hooks(model) == 0
    hs = Hooks(layers, lambda *a: None); assert count_hooks(model) == 5
    del hs; gc.collect(); assert count_hooks(model) == 0
