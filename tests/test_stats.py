"ActivationRecorder equals fastai's ActivationStats, batch by batch; hooks never outlive their use."
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
from coursekit.stats import ActivationRecorder
from coursekit.hooks import Hook, Hooks, count_hooks

@pytest.fixture(scope='module')
def dls(): return mnist_dls('mnist', bs=128, device='cpu')

@pytest.mark.parametrize('bn,schedule', [(False, 'one_cycle'), (True, 'fit')])
def test_matches_fastai_every_layer_and_batch(dls, bn, schedule):
    set_seed(7)
    ours, theirs = ActivationRecorder(), FastaiActivationStats(with_hist=True)
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
    st = ActivationRecorder(with_hist=False)
    learn = train_cnn('mnist', epochs=2, bs=256, device='cpu', cbs=[st], progress=False)
    assert st.stats.shape == (2 * len(learn.dls.train), len(st.mods), 4)  # mean, std, near zero, dead
    with pytest.raises(ValueError, match='with_hist=False'): st.hists(0)
    assert count_hooks(learn.model) == 0

def test_hooks_removed_after_error_in_training(dls):
    class Boom(Callback):
        def after_batch(self):
            if self.iter == 3: raise RuntimeError('boom')
    model = simple_cnn((1, 8, 16, 32, 64), n_out=10, first_ks=5)
    with pytest.raises(RuntimeError, match='boom'):
        train_cnn('mnist', epochs=1, model=model, device='cpu', cbs=[ActivationRecorder(), Boom()], progress=False)
    assert count_hooks(model) == 0

def test_hooks_removed_when_callback_is_deleted(dls):
    model = simple_cnn()
    learn = Learner(mnist_dls(bs=64, device='cpu'), model, loss_func=F.cross_entropy)
    st = ActivationRecorder(); learn.add_cb(st)
    learn.n_epoch = 1; st.before_fit(); st.before_train(); st.before_batch()  # hooks on, as in a batch that never ends
    assert count_hooks(model) == 5
    learn.remove_cb(st); del st; gc.collect()
    assert count_hooks(model) == 0

def test_hook_and_hooks_context_managers():
    model = simple_cnn()
    layers = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    with pytest.raises(ValueError):
        with Hooks(layers, lambda m, i, o: o.shape) as hs:
            model(torch.zeros(2, 1, 28, 28))
            assert [s[1] for s in hs.stored] == [4, 8, 16, 32, 2]
            assert count_hooks(model) == 5
            raise ValueError('inside the block')
    assert count_hooks(model) == 0
    h = Hook(layers[0], lambda *a: None); assert count_hooks(model) == 1
    del h; gc.collect(); assert count_hooks(model) == 0
    hs = Hooks(layers, lambda *a: None); assert count_hooks(model) == 5
    del hs; gc.collect(); assert count_hooks(model) == 0

from hypothesis import given, settings, strategies as st_
from coursekit.stats import ScratchBatchNorm
from coursekit.cnn import seeded
import random, numpy as np

@settings(max_examples=30, deadline=None)
@given(st_.integers(1, 6), st_.integers(1, 5), st_.integers(1, 5), st_.integers(1, 6), st_.floats(0.01, 0.9),
       st_.sampled_from([1e-5, 1e-3]), st_.integers(0, 10_000))
def test_batchnorm_equals_pytorch_step_after_step(n, c, h, w, momentum, eps, seed):
    if n * h * w < 2: n = 2  # the unbiased running variance needs two values per channel
    g = torch.Generator().manual_seed(seed)
    # float64, so that the comparison tests the algorithm, not float32 rounding (which differs between two valid
    # orders of operations by a few 1e-6 when a channel's values are nearly equal)
    ours, ref = ScratchBatchNorm(c, eps, momentum).double(), nn.BatchNorm2d(c, eps, momentum).double()
    with torch.no_grad():
        ours.weight.copy_(torch.rand(c, generator=g) + 0.5); ours.bias.copy_(torch.randn(c, generator=g))
        ref.weight.copy_(ours.weight); ref.bias.copy_(ours.bias)
    for _ in range(4):  # training steps
        x = torch.randn(n, c, h, w, generator=g, dtype=torch.float64) * 2 + 1
        assert torch.allclose(ours(x), ref(x), atol=1e-6, rtol=1e-6)
        assert torch.allclose(ours.running_mean, ref.running_mean, atol=1e-6)
        assert torch.allclose(ours.running_var, ref.running_var, atol=1e-6, rtol=1e-6)
    ours.eval(); ref.eval(); x = torch.randn(n, c, h, w, generator=g, dtype=torch.float64)
    assert torch.allclose(ours(x), ref(x), atol=1e-6, rtol=1e-6)

def test_batchnorm_gradients_equal_pytorch():
    x = torch.randn(4, 3, 5, 5, requires_grad=True)
    ours, ref = ScratchBatchNorm(3), nn.BatchNorm2d(3)
    g1, = torch.autograd.grad(ours(x).pow(2).sum(), x); g2, = torch.autograd.grad(ref(x).pow(2).sum(), x)
    assert torch.allclose(g1, g2, atol=1e-5)

class AllNegative(nn.Module):
    "A layer with a parameter (so ActivationRecorder hooks it) whose output is always negative."
    def __init__(self): super().__init__(); self.w = nn.Parameter(torch.ones(1))
    def forward(self, x): return -x.abs() * self.w - 1

def test_dead_share_of_an_all_negative_layer_is_one(dls):
    st = ActivationRecorder()
    model = nn.Sequential(AllNegative(), nn.Flatten(), nn.Linear(28 * 28, 10))
    learn = Learner(dls, model, loss_func=F.cross_entropy, cbs=[st])
    with learn.no_bar(), learn.no_logging(): learn.fit(1, 1e-3)
    assert (st.dead(0) == 1).all() and st.hists(0).sum() == 0  # the histogram (0 to 10) sees none of them
    assert (st.near_zero(0) == 1).all()
    st.dead_chart(0)

def test_statistics_survive_validate_and_a_new_fit_starts_a_new_record(dls):
    st = ActivationRecorder()
    learn = Learner(dls, simple_cnn((1, 8, 16, 32, 64), n_out=10, first_ks=5), loss_func=F.cross_entropy, cbs=[st])
    with learn.no_bar(), learn.no_logging(): learn.fit(1, 1e-3)
    before = st.stats.clone()
    learn.validate(); learn.get_preds()
    assert torch.equal(st.stats, before) and count_hooks(learn.model) == 0
    with learn.no_bar(), learn.no_logging(): learn.fit(2, 1e-3)
    assert st.stats.shape[0] == 2 * len(dls.train) and not torch.equal(st.stats[:len(dls.train)], before)

def test_unfitted_stats_and_bad_arguments_are_clear():
    with pytest.raises(ValueError, match='fit a Learner with this callback first'): ActivationRecorder().means(0)
    with pytest.raises(ValueError, match='bins must be >= 1'): ActivationRecorder(bins=0)
    with pytest.raises(ValueError, match='hist_range must be'): ActivationRecorder(hist_range=(10, 0))

def test_train_cnn_leaves_global_state_as_it_found_it():
    random.seed(5); np.random.seed(5); torch.manual_seed(5)
    states = random.getstate(), np.random.get_state()[1].copy(), torch.get_rng_state()
    flags = torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic
    train_cnn(epochs=1, device='cpu', progress=False, seed=1)
    assert random.getstate() == states[0] and (np.random.get_state()[1] == states[1]).all()
    assert torch.equal(torch.get_rng_state(), states[2])
    assert (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic) == flags
    with pytest.raises(RuntimeError):
        with seeded(3): raise RuntimeError('boom')
    assert torch.equal(torch.get_rng_state(), states[2])

# ---------------- the chapter's exercise checkers: right answers, each slip, a wrong shape ----------------
from coursekit.stats import grade_batchnorm, grade_summary

def _four(o, lt=False, absolute=False, biased=False, counts=False):
    v = o.abs() if absolute else o
    below = (lambda t: v < t) if lt else (lambda t: v <= t)
    agg = (lambda m: m.sum().float()) if counts else (lambda m: m.float().mean())
    return torch.stack([o.mean(), o.std(correction=0) if biased else o.std(), agg(below(0.05)), agg(below(0.5))])

@pytest.mark.parametrize('fn,ok,words', [
    (_four, True, 'four_stats: correct!'),
    (lambda o: torch.tensor([o.mean().item(), o.std().item(), (o <= 0.05).sum().item() / o.numel(),
                             (o <= 0.5).sum().item() / o.numel()]), True, 'four_stats: correct!'),
    (lambda o: _four(o, lt=True), False, 'four_stats(values -0.2, -0.15, ..., 0.65): values exactly at 0.05 or 0.5'),
    (lambda o: _four(o, absolute=True), False, 'four_stats(conv output, negatives too): negative values count too'),
    (lambda o: _four(o, biased=True), False, 'four_stats(ReLU output): the biased std (dividing by n)'),
    (lambda o: _four(o, counts=True), False, 'counts, not shares: divide by the 800 values'),
    (lambda o: _four(o)[:3], False, 'wrong shape: expected (4,), got (3,)'),
    (lambda o: _four(o) * 1.01, False, 'right pattern, but scaled by 1.01')])
def test_grade_summary(fn, ok, words, capsys):
    assert grade_summary(fn) is ok
    assert words in capsys.readouterr().out

def _bn(x, gamma, beta, eps, dims=(0, 2, 3), unbiased=False, e=None, after_sqrt=False, affine=True, swap=False):
    e = eps if e is None else e
    m, v = x.mean(dims, keepdim=True), x.var(dims, keepdim=True, unbiased=unbiased)
    n = (x - m) / (v.sqrt() + e) if after_sqrt else (x - m) / (v + e).sqrt()
    g, b = (beta, gamma) if swap else (gamma, beta)
    return g[:, None, None] * n + b[:, None, None] if affine else n

def _bn_rsqrt(x, gamma, beta, eps):  # another right answer: other operations, other rounding
    d = x - x.mean((0, 2, 3), keepdim=True)
    return d * torch.rsqrt((d * d).mean((0, 2, 3), keepdim=True) + eps) * gamma.view(-1, 1, 1) + beta.view(-1, 1, 1)

@pytest.mark.parametrize('fn,ok,words', [
    (_bn, True, 'batchnorm: correct!'), (_bn_rsqrt, True, 'batchnorm: correct!'),
    (lambda x, g, b, e: nn.functional.batch_norm(x, None, None, g, b, True, 0., e), True, 'batchnorm: correct!'),
    (lambda *a: _bn(*a, unbiased=True), False, 'the unbiased variance'),
    (lambda *a: _bn(*a, dims=(1, 2, 3)), False, 'each image normalised on its own'),
    (lambda *a: _bn(*a, dims=(0,)), False, 'each position normalised on its own'),
    (lambda *a: _bn(*a, dims=(0, 1, 2, 3)), False, 'one mean and variance for the whole batch'),
    (lambda *a: _bn(*a, e=0.), False, 'eps is missing'),
    (lambda *a: _bn(*a, after_sqrt=True), False, 'eps is added after the square root'),
    (lambda *a: _bn(*a, affine=False), False, 'gamma and beta are not applied'),
    (lambda *a: _bn(*a, swap=True), False, 'gamma and beta are swapped'),
    (lambda *a: _bn(*a)[0], False, 'wrong shape: expected (8, 3, 5, 5), got (3, 5, 5)'),
    (lambda *a: _bn(*a) + 0.01, False, 'wrong values at positions [(0, 0, 0, 0)')])
def test_grade_batchnorm(fn, ok, words, capsys):
    assert grade_batchnorm(fn) is ok
    assert words in capsys.readouterr().out

def test_stats_graders_refuse_what_is_not_a_function():
    for grade in (grade_summary, grade_batchnorm):
        with pytest.raises(TypeError, match=f'^{grade.__name__}: fn must be callable'): grade('four_stats')

def test_a_layer_called_twice_is_recorded_for_its_last_call_as_fastai_does(dls):
    "A shared layer runs twice in one forward pass: both callbacks keep the statistics of its last call."
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.head = nn.Conv2d(1, 1, 3, padding=1), nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                                                               nn.Linear(1, 10))
        def forward(self, x): return self.head(self.conv(torch.relu(self.conv(x)) - 0.5))
    set_seed(3)
    ours, theirs = ActivationRecorder(), FastaiActivationStats(with_hist=True)
    learn = Learner(dls, Twice(), loss_func=F.cross_entropy, cbs=[ours, theirs])
    with pytest.warns(UserWarning, match='a Conv2d layer ran more than once in one forward pass') as warned:
        with learn.no_bar(), learn.no_logging(): learn.fit(1, 0.01)
    assert sum('ran more than once' in str(w.message) for w in warned) == 1  # once per fit, not per batch
    ref = torch.tensor([b[0]['mean'] for b in theirs.stats])
    assert torch.allclose(ours.means(0), ref, rtol=1e-5, atol=1e-7)
    assert torch.equal(ours.hists(0), torch.stack([b[0]['hist'] for b in theirs.stats]))

def test_recording_changes_no_number_of_the_training():
    "stability_run(record=False) gives the same accuracy and losses: the recorder only reads the activations."
    from coursekit.stats import stability_run
    (a, st, la), (b, none, lb) = [stability_run(epochs=1, bs=512, device='cpu', seed=1, record=r) for r in (True, False)]
    assert a == b and none is None and st.stats.shape[0] == len(la.dls.train)
    assert [float(v) for v in la.recorder.losses] == [float(v) for v in lb.recorder.losses]

def test_stability_accuracies_side_by_side_are_the_runs_one_by_one():
    "Worker processes (one thread each) give each run's accuracy as `stability_run` gives it here, in the runs' order."
    from coursekit.stats import stability_accuracies, stability_run
    runs = [dict(data='mnist_sample', epochs=1, bs=512, device='cpu', seed=s, lr=lr) for s, lr in ((0, 0.06), (1, 0.3))]
    threads = torch.get_num_threads()
    here = [stability_run(record=False, **kw)[0] for kw in runs]
    assert stability_accuracies(runs, workers=2) == here and torch.get_num_threads() == threads
    assert stability_accuracies(runs[::-1], workers=1) == here[::-1] and len(set(here)) == 2
    with pytest.raises(TypeError, match='runs must be a list of dicts of stability_run arguments, got dict'):
        stability_accuracies(runs[0])
    with pytest.raises(ValueError, match='workers must be >= 1, got 0'): stability_accuracies(runs, workers=0)

# ---------------- the CPU's one pass: histc's counts and fastai's formulas, for any values, bins and range ----------------
def _recorder_on_cpu(dls, **kw):
    "An ActivationRecorder with its record made (`_start`) for a small model, ready for `_record`."
    rec = ActivationRecorder(**kw)
    rec.learn = Learner(dls, nn.Sequential(nn.Conv2d(1, 2, 3)), loss_func=F.cross_entropy); rec._start()
    return rec

@settings(max_examples=80, deadline=None)
@given(st_.data(), st_.integers(1, 60), st_.sampled_from([(0., 10.), (-1., 3.), (0.1, 0.7), (-1e3, 1e-3), (2., 2.5)]),
       st_.floats(-2, 2, width=32))
def test_one_pass_gives_histc_counts_and_fastais_numbers(dls, data, bins, hist_range, near):
    rec = _recorder_on_cpu(dls, bins=bins, hist_range=hist_range, near_zero=near)
    lo, hi = torch.tensor(hist_range)
    edges = lo + (hi - lo) * torch.arange(bins + 1) / bins  # values on and next to the bin edges, the range's ends
    special = torch.cat([edges, torch.nextafter(edges, lo - 1), torch.nextafter(edges, hi + 1),
                         torch.tensor([near, rec.dead_below, float('nan'), float('inf'), -float('inf'), 0., -0.])]).tolist()
    values = data.draw(st_.lists(st_.one_of(st_.floats(width=32), st_.sampled_from(special)), min_size=1, max_size=400))
    o = torch.tensor(values, dtype=torch.float32)
    rec._seen = set(); rec._record(0, None, None, o)
    assert torch.equal(rec._cur_hist[0], torch.histc(o, bins, *hist_range))
    n = o.numel()
    shares = torch.tensor([(o <= near).sum().item() / n, (o <= rec.dead_below).sum().item() / n])
    assert torch.equal(rec._cur[0, 2:], shares)
    mean = o.mean()  # fastai's mean: torch's float32 mean
    assert torch.equal(rec._cur[0, 0], mean) or (mean.isnan() and rec._cur[0, 0].isnan())
    # std about that mean, the squares summed in float64 (the rounding of the float32 mean stays in, as in torch's std)
    std = (((o.double() - mean.double()) ** 2).sum() / (n - 1)).sqrt().float() if n > 1 else torch.tensor(float('nan'))
    got = rec._cur[0, 1]
    if std.isfinite(): assert torch.allclose(got, std, rtol=1e-6, atol=0), (got, std)
    else: assert not got.isfinite()

def test_one_pass_std_of_two_neighbouring_floats_is_torchs(dls):
    "Two neighbouring float32 values: the float32 mean is one of them, and the std about it is torch's (fastai's) std."
    rec, o = _recorder_on_cpu(dls), torch.tensor([3.3333332538604736, 3.3333334922790527])
    rec._seen = set(); rec._record(0, None, None, o)
    assert torch.equal(rec._cur[0, :2], torch.stack([o.mean(), o.std()])) and o.std() > o.double().std()

def test_one_pass_keeps_the_last_call_of_a_layer_used_twice(dls):
    rec = _recorder_on_cpu(dls)
    with pytest.warns(UserWarning, match='ran more than once'):
        rec._seen = set(); rec._record(0, None, None, torch.full((5,), 3.)); rec._record(0, None, None, torch.ones(3))
    assert rec._cur_hist[0].sum() == 3 and rec._cur[0, 0] == 1

def test_without_numba_the_whole_tensor_path_gives_the_same_row(dls, monkeypatch):
    import coursekit.stats as S
    rec = _recorder_on_cpu(dls)
    o = torch.relu(torch.randn(64, 8, 14, 14, generator=torch.Generator().manual_seed(0)) * 3) - 0.2
    rec._seen = set(); rec._record(0, None, None, o); row, hist = rec._cur[0].clone(), rec._cur_hist[0].clone()
    monkeypatch.setattr(S, 'ONE_PASS', False)
    rec._seen = set(); rec._record(0, None, None, o)
    assert torch.equal(rec._cur_hist[0], hist) and torch.allclose(rec._cur[0], row, rtol=1e-6, atol=0)

def test_coursekit_stats_imports_and_records_where_numba_is_missing():
    import subprocess, sys
    code = ("import sys; sys.modules['numba'] = None\n"  # `import numba` now raises ImportError
            "import torch, coursekit.stats as S\n"
            "from coursekit.cnn import train_cnn\n"
            "st = S.ActivationRecorder(); train_cnn('mnist_sample', epochs=1, bs=256, device='cpu', cbs=[st], progress=False)\n"
            "assert not S.ONE_PASS and st.stats.shape[1:] == (len(st.mods), 4) and st.histograms.sum() > 0\n")
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
