"The training plumbing of `train_cnn` (coursekit.training): cuDNN's flags as found, options checked, data and model placed."
import inspect
import pytest, torch
import torch.nn as nn
from fastai.callback.core import Callback
from coursekit.cnn import seeded, simple_cnn, train_cnn
from coursekit.data import mnist_dls
from coursekit.training import TrainOptions, check_fit_args, cudnn_flags

def flags(): return {k: getattr(torch.backends.cudnn, k) for k in ('enabled', 'benchmark', 'deterministic', 'allow_tf32')}

def test_cudnn_flags_change_only_what_is_named_and_come_back_on_error():
    before = flags()
    with pytest.raises(RuntimeError, match='boom'):
        with cudnn_flags(benchmark=True):
            assert flags() == {**before, 'benchmark': True}
            raise RuntimeError('boom')
    assert flags() == before

def test_seeded_puts_cudnn_flags_back_when_the_block_changes_them():
    before = flags()
    with cudnn_flags():  # a safety net, should `seeded` fail to restore them
        with pytest.raises(RuntimeError, match='boom'):
            with seeded(0):
                torch.backends.cudnn.deterministic = not before['deterministic']
                raise RuntimeError('boom')
        assert flags() == before

def test_train_cnn_keeps_every_keyword():
    assert set(inspect.signature(train_cnn).parameters) == {
        'data', 'epochs', 'lr', 'bs', 'model', 'device', 'seed', 'one_cycle', 'precision', 'channels_last', 'fast',
        'cbs', 'progress', 'dls_kwargs', 'dls'}
    with pytest.raises(TypeError, match='bz'): train_cnn(bz=3, device='cpu')

def test_checks_name_the_function_the_user_called():
    with pytest.raises(ValueError, match='^train_cnn: epochs must be >= 1'): train_cnn(epochs=0)
    with pytest.raises(ValueError, match='^train_cnn: precision must be'): train_cnn(precision='fp8')
    with pytest.raises(TypeError, match='^check_fit_args: lr must be a number'): check_fit_args('mnist', 1, '0.1')
    with pytest.raises(TypeError, match='dls_kwargs must be a dict'): TrainOptions(dls_kwargs=[1])
    with pytest.raises(TypeError, match='model must be an nn.Module'):
        train_cnn(epochs=1, device='cpu', progress=False, model=3)

def test_a_failed_run_leaves_the_flags_and_generators_as_found():
    class Boom(Callback):
        def after_batch(self): raise RuntimeError('boom')
    before, rng = flags(), torch.get_rng_state()
    with pytest.raises(RuntimeError, match='boom'): train_cnn(epochs=1, device='cpu', progress=False, cbs=Boom())
    assert flags() == before and torch.equal(torch.get_rng_state(), rng)

def test_ready_made_dls_and_a_constant_learning_rate():
    dls = mnist_dls('mnist', bs=512, device='cpu')
    learn = train_cnn('mnist', epochs=1, lr=0.05, device='cpu', progress=False, dls=dls, one_cycle=False)
    assert learn.dls is dls and learn.epoch_history.history[0]['valid_accuracy'] > 0.5

def test_channels_last_model_and_data():
    learn = train_cnn(epochs=1, device='cpu', progress=False, channels_last=True, model=simple_cnn)
    w = learn.model[1][0].weight  # conv(4, 8): 8x4x3x3
    assert w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous()
    assert learn.dls.train.x.is_contiguous(memory_format=torch.channels_last)
    assert learn.epoch_history.history[0]['valid_accuracy'] > 0.98

# ---------------- the leaner loss and optimizer: fastai's numbers, bit for bit ----------------
import copy, pickle
import torch.nn.functional as F
from fastai.learner import Learner
from fastai.losses import CrossEntropyLossFlat
from fastai.metrics import accuracy
from fastai.optimizer import Adam
from fastai.torch_core import TensorBase
from coursekit.cnn import EpochHistory, default_model
from coursekit.training import ForeachAdam, PlainCrossEntropy

def _stepped(make_opt, model, steps=25, groups=True, wd=0.01, freeze_at=(5, 10)):
    "A copy of `model` stepped by `make_opt`: two parameter groups, no weight decay on biases, a frozen spell."
    torch.manual_seed(0); m = copy.deepcopy(model)
    ps = list(m.parameters())
    opt = make_opt([ps[:4], ps[4:]] if groups else ps, lr=0.01, wd=wd)
    for p in ps[1::2]: opt.state[p]['do_wd'] = False
    for i in range(steps):
        frozen = freeze_at[0] <= i < freeze_at[1]  # no gradient for a while: skipped, not counted
        ps[0].requires_grad_(not frozen)
        if frozen: ps[0].grad = None
        opt.set_hypers(lr=[0.001 * (i + 1), 0.002 * (i + 1)] if groups else 0.001 * (i + 1), mom=0.95 - 0.004 * i)
        F.cross_entropy(m(torch.randn(16, 1, 28, 28)), torch.randint(0, 10, (16,))).backward()
        opt.step(); opt.zero_grad()
    return m, opt

@pytest.mark.parametrize('groups,wd', [(True, 0.01), (False, 0.01), (True, 0.)])
def test_foreach_adam_is_fastai_adam_bit_for_bit(groups, wd):
    model = default_model('mnist')
    (a, oa), (b, ob) = _stepped(Adam, model, groups=groups, wd=wd), _stepped(ForeachAdam, model, groups=groups, wd=wd)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    for p, q in zip(a.parameters(), b.parameters()):
        sa, sb = oa.state[p], ob.state[q]
        assert sa['step'] == sb['step'] and sa.get('do_wd', True) == sb.get('do_wd', True)
        assert torch.equal(sa['grad_avg'], sb['grad_avg']) and torch.equal(sa['sqr_avg'], sb['sqr_avg'])
    assert oa.state[next(a.parameters())]['step'] == 20  # 5 of the 25 steps had no gradient
    assert oa.hypers == ob.hypers

def test_foreach_adam_state_dict_round_trip_and_checks():
    _, opt = _stepped(ForeachAdam, default_model('mnist'), steps=3, groups=False, freeze_at=(0, 0))
    params = [p for pg in opt.param_lists for p in pg]
    fresh = ForeachAdam(params, lr=0.01)
    fresh.load_state_dict(pickle.loads(pickle.dumps(opt.state_dict())))
    assert [s['step'] for s in fresh.state_dict()['state']] == [3] * len(params)
    with pytest.raises(TypeError, match='^ForeachAdam: params must be the tensors'): ForeachAdam(None, lr=0.1)
    with pytest.raises(NotImplementedError, match='closure'): fresh.step(lambda: 0)

def test_plain_cross_entropy_is_cross_entropy_loss_flat():
    x, y = torch.randn(32, 10), torch.randint(0, 10, (32,))
    ours, theirs = PlainCrossEntropy(), CrossEntropyLossFlat()
    assert type(ours(x, y)) is torch.Tensor and type(theirs(x, y)) is TensorBase
    assert torch.equal(ours(x, y), theirs(x, y)) and torch.equal(ours.decodes(x), theirs.decodes(x))
    assert torch.equal(ours.activation(x), theirs.activation(x))
    assert torch.equal(ours(x, y.int()), theirs(x, y.int()))  # int32 labels: fastai's way (made long)
    x4, y3 = torch.randn(2, 5, 3, 3), torch.randint(0, 5, (2, 3, 3))
    assert torch.equal(PlainCrossEntropy(axis=1)(x4, y3), CrossEntropyLossFlat(axis=1)(x4, y3))
    ours.reduction = 'none'; assert ours(x, y).shape == (32,)  # what get_preds(with_loss=True) asks for
    assert pickle.loads(pickle.dumps(PlainCrossEntropy()))(x, y) == theirs(x, y)

def test_train_cnn_gives_the_numbers_of_fastais_defaults():
    "The leaner loss, optimizer and callback change no number: fastai's Adam and CrossEntropyLossFlat agree."
    ours = train_cnn('mnist', epochs=1, device='cpu', progress=False)
    dls = mnist_dls('mnist', bs=64, device='cpu')
    with seeded(42):
        theirs = Learner(dls, default_model('mnist'), loss_func=CrossEntropyLossFlat(), metrics=accuracy)
        with theirs.no_bar(), theirs.no_logging(): theirs.fit_one_cycle(1, 0.01)
    assert ours.recorder.values == theirs.recorder.values
    assert [float(v) for v in ours.recorder.losses] == [float(v) for v in theirs.recorder.losses]
    assert all(torch.equal(p, q) for p, q in zip(ours.model.state_dict().values(), theirs.model.state_dict().values()))

def test_epoch_history_dispatches_only_its_events():
    calls = []
    class Counting(EpochHistory):
        def after_pred(self): calls.append('after_pred')  # a subclass's own event is still called
    learn = train_cnn(epochs=1, device='cpu', progress=False, cbs=Counting())
    assert len(calls) == len(learn.dls.train) + len(learn.dls.valid)
    eh = learn.epoch_history
    assert eh('before_backward') is None and len(eh.history) == 1

def test_models_without_values_are_refused_clearly():
    with torch.device('meta'): meta = default_model('mnist_sample')
    with pytest.raises(ValueError, match="^train_cnn: model's parameters are on the meta device"):
        train_cnn(model=meta, epochs=1, device='cpu', progress=False)
    lazy = nn.Sequential(nn.LazyConv2d(4, 3, stride=2, padding=1), nn.ReLU(), nn.LazyConv2d(2, 14), nn.Flatten())
    with pytest.raises(ValueError, match='^train_cnn: model has lazy layers that are not initialised yet'):
        train_cnn(model=lazy, epochs=1, device='cpu', progress=False)
    lazy(torch.zeros(1, 1, 28, 28))  # initialised by one forward pass: then it trains
    assert train_cnn(model=lazy, epochs=1, device='cpu', progress=False).epoch_history.history[0]['valid_accuracy'] > 0.5

from hypothesis import given, settings, HealthCheck, strategies as st
from fastai.callback.core import event, CancelBatchException
from fastai.data.core import DataLoaders
from coursekit.data import TensorDataLoader
from coursekit.training import LeanLearner, handles

EVENTS = [e for e in vars(event) if not e.startswith('_')]
LOG = []

def _callback(i, evs, order, run_train, run_valid, cancel_at):
    "A callback class with methods for `evs` that log (its number, the event); it may cancel a batch."
    def method(e):
        def m(self):
            LOG.append((i, e))
            if e == cancel_at and self.training and self.iter == 1: raise CancelBatchException()
        return m
    return type(f'Cb{i}', (Callback,), dict(order=order, run_train=run_train, run_valid=run_valid,
                                              **{e: method(e) for e in evs}))

_cb_spec = st.tuples(st.sets(st.sampled_from(EVENTS), max_size=6), st.integers(-30, 60), st.booleans(), st.booleans(),
                     st.sampled_from([None, 'after_pred', 'after_loss', 'before_step']))

@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_cb_spec, max_size=4), st.booleans())
def test_lean_learner_calls_what_fastai_calls_in_the_same_order(specs, one_cycle):
    "Any callbacks (orders, run flags, a cancelled batch), fit or 1cycle: the same calls, in order, the same numbers."
    torch.manual_seed(0); x, y = torch.randn(48, 1, 4, 4), torch.randint(0, 3, (48,))
    dls = DataLoaders(TensorDataLoader(x, y, bs=16, shuffle=False), TensorDataLoader(x[:16], y[:16], bs=16))
    runs = []
    for learner in (Learner, LeanLearner):
        LOG.clear(); torch.manual_seed(1)
        cbs = [_callback(i, *s)() for i, s in enumerate(specs)]
        learn = learner(dls, nn.Sequential(nn.Flatten(), nn.Linear(16, 3)), loss_func=F.cross_entropy, cbs=cbs)
        with learn.no_bar(), learn.no_logging(): (learn.fit_one_cycle if one_cycle else learn.fit)(2, 0.01)
        runs.append((list(LOG), learn.recorder.values, [float(v) for v in learn.recorder.losses]))
    assert runs[0] == runs[1]

def test_lean_learner_follows_callbacks_added_and_removed():
    dls = mnist_dls('mnist_sample', bs=256, device='cpu')
    learn = LeanLearner(dls, simple_cnn(), loss_func=F.cross_entropy)
    n = len(learn._handlers('after_batch'))
    class Extra(Callback):
        def after_batch(self): pass
    learn.add_cb(Extra()); assert len(learn._handlers('after_batch')) == n + 1
    learn.remove_cb(learn.extra); assert len(learn._handlers('after_batch')) == n
    assert handles(Callback(), 'after_fit') and not handles(Callback(), 'after_loss')
    with pytest.raises(ValueError, match="event_name must be one of fastai's events, got 'after_lunch'"):
        learn('after_lunch')

def test_lean_learner_names_a_wrong_dls_or_model():
    dls = mnist_dls('mnist_sample', bs=256, device='cpu')
    with pytest.raises(TypeError, match='dls must be fastai DataLoaders, got list'): LeanLearner([], simple_cnn())
    with pytest.raises(TypeError, match='model must be an nn.Module, got function'): LeanLearner(dls, simple_cnn)
