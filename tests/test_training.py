"The training plumbing of `train_cnn` (coursekit.training): cuDNN's flags as found, options checked, data and model placed."
import inspect
import pytest, torch
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
