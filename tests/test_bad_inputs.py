"Bad input gets a clear error naming the argument (TypeError/ValueError), or a correct result; never a silent one."
import math, warnings
from pathlib import Path
import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

from coursekit.core import as_pair, check_channels_first, check_model_input, resolve_device
from coursekit.kernels import (KERNELS, apply_kernel, check_kernel, conv2d_loops, filter_image,
                               kernel_explorer, show_conv_matrix, show_signed, time_convs)
from coursekit.arith import pad_modes, pool_out_size, trace_shapes, transposed_as_conv
from coursekit.receptive import empirical_receptive_field, receptive_field
from coursekit.animation import animation_gif, conv_frames
from coursekit.hooks import Hook, Hooks
from coursekit.cam import class_activation_map, grad_cam, mean_activation_map, show_heatmap
from coursekit.cnn import conv, simple_cnn, seeded, train_cnn
from coursekit.data import mnist_dls, mnist_valid_mask
from coursekit.augment import augment, ladder, LADDERS, show_augmented
from coursekit.store import check_folder, materialise, png_bytes

warnings.filterwarnings('ignore', message='.*torch.jit.script.*is deprecated')

def small():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Identity(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(4, 3))

X = torch.rand(2, 3, 8, 8)
M = small()

CASES = {  # name: (call, exception type, words the message must contain)
    # channels-last images, refused the same way everywhere
    'filter_image HWC': (lambda: filter_image(torch.rand(32, 32, 3), KERNELS['blur']), ValueError, 'channels-last'),
    'show_heatmap HWC': (lambda: show_heatmap(torch.rand(8, 8, 3), torch.rand(2, 2)), ValueError, 'channels-last'),
    'grad_cam NHWC': (lambda: grad_cam(M, X.permute(0, 2, 3, 1), M[2]), ValueError, 'channels-last'),
    'kernel_explorer HWC': (lambda: kernel_explorer(torch.rand(32, 32, 3), static=True), ValueError, 'channels-last'),
    'augment NHWC': (lambda: augment(torch.rand(2, 8, 8, 3), []), ValueError, 'channels-last'),
    'show_augmented HWC': (lambda: show_augmented(torch.rand(8, 8, 3)), ValueError, 'channels-last'),
    # silent before
    'pad_modes pad=-1': (lambda: pad_modes(torch.rand(3, 3), -1), ValueError, 'pad must be >= 0'),
    'pad_modes 3-D': (lambda: pad_modes(torch.rand(1, 3, 3)), TypeError, '2-D'),
    'pad_modes float pad': (lambda: pad_modes(torch.rand(3, 3), 1.5), TypeError, 'pad must be an int'),
    'receptive_field no conv': (lambda: receptive_field(nn.Sequential(nn.Flatten(), nn.Linear(64, 2)), (1, 8, 8)),
                                ValueError, 'no convolution'),
    'empirical rf unit -1': (lambda: empirical_receptive_field(nn.Sequential(nn.Conv2d(1, 1, 3)), (1, 8, 8), '0',
                                                               unit=(-1, -1)), ValueError, 'unit must lie inside'),
    'explorer row -5': (lambda: kernel_explorer(step=True, row=-5, static=True), ValueError, 'row and col'),
    'explorer stride 0': (lambda: kernel_explorer(stride=0, static=True), ValueError, 'stride must be >= 1'),
    'explorer stride -1': (lambda: kernel_explorer(stride=-1, static=True), ValueError, 'stride must be >= 1'),
    'explorer stride 1.5': (lambda: kernel_explorer(stride=1.5, static=True), TypeError, 'stride must be an int'),
    'show_signed 3-D': (lambda: show_signed(torch.rand(3, 4, 4)), ValueError, '2-D'),
    'show_signed robust': (lambda: show_signed(torch.rand(4, 4), robust=0), ValueError, 'percentile'),
    'conv(0, 4)': (lambda: conv(0, 4), ValueError, 'ni must be >= 1'),
    'simple_cnn n_out=0': (lambda: simple_cnn(n_out=0), ValueError, 'n_out must be >= 1'),
    'resolve_device meta': (lambda: resolve_device('meta'), ValueError, 'cpu, cuda or mps'),
    'resolve_device gpu': (lambda: resolve_device('gpu'), ValueError, 'cpu, cuda or mps'),
    'dls_kwargs typo': (lambda: train_cnn(epochs=1, device='cpu', progress=False, dls_kwargs={'num_workrs': 2}),
                        TypeError, 'num_workrs'),
    'mnist_dls val_bs=0': (lambda: mnist_dls(val_bs=0, device='cpu'), ValueError, 'val_bs must be >= 1'),
    'mnist_dls typo (standard)': (lambda: mnist_dls(fast=False, device='cpu', num_workrs=0), TypeError, 'num_workrs'),
    'mnist_valid_mask every=0': (lambda: mnist_valid_mask(np.zeros(4), every=0), ValueError, 'every must be >= 2'),
    'grad_cam NaN': (lambda: grad_cam(M, X * float('nan'), M[2]), ValueError, 'NaN or inf'),
    'grad_cam inf': (lambda: grad_cam(M, X + float('inf'), M[2]), ValueError, 'NaN or inf'),
    'CAM fc not in model': (lambda: class_activation_map(M, X, M[2], nn.Linear(4, 3)), ValueError, 'not a module'),
    'materialise ../x': (lambda: materialise('../x', lambda: []), ValueError, 'plain folder name'),
    # cryptic before
    'transposed_as_conv 3-D': (lambda: transposed_as_conv(torch.rand(1, 4, 4), torch.rand(1, 1, 3, 3)), TypeError,
                               'x must be a 4-D float tensor'),
    'conv_frames max_frames 0': (lambda: conv_frames(max_frames=0), ValueError, 'max_frames must be >= 1'),
    'conv_frames ks too big': (lambda: conv_frames(3, 5), ValueError, 'output would be empty'),
    'animation_gif not anim': (lambda: animation_gif(3), TypeError, 'animation'),
    'show_conv_matrix 2-D': (lambda: show_conv_matrix(torch.zeros(2, 2), 3), TypeError, '4-D'),
    'time_convs n=0': (lambda: time_convs(torch.rand(1, 1, 5, 5), torch.rand(1, 1, 3, 3), n=0), ValueError,
                       'n must be >= 1'),
    'check_kernel junk': (lambda: check_kernel('top_edge', 'abc'), TypeError, 'kernel must be'),
    'Hook not module': (lambda: Hook(3, print), TypeError, 'm must be an nn.Module'),
    'Hooks one module': (lambda: Hooks(nn.Conv2d(1, 1, 3), print), TypeError, 'for one module use Hook'),
    'Hooks not callable': (lambda: Hooks([nn.Conv2d(1, 1, 3)], 3), TypeError, 'hook_func must be callable'),
    'check_folder not path': (lambda: check_folder(3), TypeError, 'path'),
    'png_bytes float': (lambda: png_bytes(np.zeros((4, 4))), TypeError, 'uint8'),
    'augment tfms': (lambda: augment(torch.rand(2, 1, 8, 8), 3), TypeError, 'tfms must be a list'),
    'augment int': (lambda: augment(torch.zeros(2, 1, 8, 8, dtype=torch.uint8), []), TypeError, 'float tensor'),
    'ladder values': (lambda: ladder(torch.rand(8, 8), LADDERS['warp'][0], []), ValueError, 'values must be'),
    'ladder pad_mode': (lambda: ladder(torch.rand(8, 8), *LADDERS['warp'], pad_mode='mirror'), ValueError, 'pad_mode'),
    'upsampled(0)': (lambda: grad_cam(M, X, M[2]).upsampled(0), ValueError, 'size must be >= 1'),
    'trace_shapes channels': (lambda: trace_shapes(M, (1, 8, 8)), ValueError, 'channels'),
    'receptive_field channels': (lambda: receptive_field(M, (1, 8, 8)), ValueError, 'channels'),
    'receptive_field adaptive 13 to 5': (lambda: receptive_field(nn.Sequential(nn.Conv2d(1, 1, 3), nn.AdaptiveAvgPool2d(5),
                                                                               nn.Conv2d(1, 1, 1)), (1, 15, 15)),
                                         ValueError, "adaptive pooling '1' from 13x13 to 5x5 has windows of different"),
    'trace_shapes 5-D input_size': (lambda: trace_shapes(M, (1, 1, 3, 8, 8)), ValueError, 'or (N, C, H, W)'),
    'grad_cam channels': (lambda: grad_cam(M, torch.rand(2, 1, 8, 8), M[2]), ValueError, 'takes 3 channels'),
    'grad_cam dtype': (lambda: (lambda m: grad_cam(m, X, m[2]))(small().double()), TypeError, 'float64'),
    'train_cnn channels': (lambda: train_cnn(epochs=1, device='cpu', progress=False, model=small), ValueError,
                           'takes 3 channels'),
    'train_cnn 2 classes on 10': (lambda: train_cnn('mnist', epochs=1, device='cpu', progress=False,
                                                    model=lambda: simple_cnn()), ValueError, 'one score per class'),
    "train_cnn lr='0.01'": (lambda: train_cnn(lr='0.01', device='cpu'), TypeError, 'lr must be a number'),
    'train_cnn cbs junk': (lambda: train_cnn(cbs=3, device='cpu'), TypeError, 'cbs must be'),
    'seeded huge seed': (lambda: seeded(10**25).__enter__(), ValueError, 'seed'),
    'conv2d_loops mixed dtypes': (lambda: conv2d_loops(torch.rand(1, 1, 4, 4), torch.rand(1, 1, 3, 3).double()),
                                  TypeError, 'same dtype'),
    'pool_out_size padding': (lambda: pool_out_size(8, 2, 2, 2), ValueError, 'at most half'),
    'apply_kernel row': (lambda: apply_kernel(torch.rand(5, 5), 0, 2, KERNELS['blur']), ValueError, 'row must be'),
    'as_pair negative': (lambda: as_pair(-1, 'size', 1), ValueError, 'size must be >= 1'),
}

@pytest.mark.parametrize('name', list(CASES))
def test_bad_input_gets_a_clear_error(name):
    call, exc, words = CASES[name]
    with pytest.raises(exc) as e: call()
    assert words in str(e.value), f'{name}: {e.value}'
    assert len(str(e.value)) < 400

def test_one_callback_is_accepted_as_cbs():
    from coursekit.stats import ActivationRecorder
    s = ActivationRecorder()
    learn = train_cnn(epochs=1, device='cpu', progress=False, cbs=s)
    assert s.stats is not None and len(s.stats) == len(learn.dls.train)

def test_check_model_input_accepts_what_fits():
    assert check_model_input(M, X) is X
    assert check_channels_first(torch.rand(3, 8, 8), 'img').shape == (3, 8, 8)

# ---------------- grad_cam: correct at the edges ----------------

def test_grad_cam_keeps_float64_and_works_under_inference_mode():
    m = small().double(); x = X.double()
    r = grad_cam(m, x, m[2])
    assert r.map.dtype == torch.float64 and mean_activation_map(m, x, m[2]).dtype == torch.float64
    with torch.inference_mode(): r2 = grad_cam(m, x.clone(), m[2])
    torch.testing.assert_close(r2.raw, r.raw)
    assert not torch.is_inference_mode_enabled()

@pytest.mark.parametrize('t', [np.int64(1), torch.tensor(1), np.array(1)])
def test_grad_cam_targets_numpy_and_0d(t):
    assert grad_cam(M, X, M[2], targets=t).targets.tolist() == [1, 1]

def test_grad_cam_bool_or_float_target_refused():
    for t in (True, torch.tensor(1.5), np.float64(1.0)):
        with pytest.raises(TypeError, match='targets must be'): grad_cam(M, X, M[2], targets=t)

class _Overwrites(nn.Module):
    "The target (an Identity) returns its input, which the forward then overwrites in place."
    def __init__(self):
        super().__init__(); torch.manual_seed(0)
        self.conv, self.idn = nn.Conv2d(3, 4, 3), nn.Identity()
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    def forward(self, x):
        out = self.conv(x); y = self.idn(out); out.mul_(0).add_(5)
        return self.head(y * 2)

def test_identity_target_overwritten_in_place():
    m = _Overwrites()
    with torch.no_grad(): acts = m.conv(X)
    torch.testing.assert_close(mean_activation_map(m, X, m.idn), acts.mean(1))
    # Grad-CAM by hand: the score is linear in y through the head, y = the (overwritten) conv output, times 2
    r = grad_cam(m, X, m.idn, targets=0)
    w = m.head[2].weight[0].detach() * 2 / (acts.shape[2] * acts.shape[3])
    torch.testing.assert_close(r.raw, torch.einsum('c,nchw->nhw', w, acts))

# ---------------- receptive fields: modelled or refused ----------------

def rf_of(model, size=(1, 16, 16)):
    return receptive_field(model, size).iloc[-1][['rf', 'jump']].tolist()

class _FMax(nn.Module):
    def __init__(self):
        super().__init__(); self.c, self.c2 = nn.Conv2d(1, 1, 3, padding=1), nn.Conv2d(1, 1, 3, padding=1)
    def forward(self, x): return self.c2(F.max_pool2d(self.c(x), 2))

class _Slice(nn.Module):
    def __init__(self):
        super().__init__(); self.c, self.c2 = nn.Conv2d(1, 1, 3, padding=1), nn.Conv2d(1, 1, 3, padding=1)
    def forward(self, x): return self.c2(self.c(x)[..., ::2, ::2])

class _Cross(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(1, 1, (3, 1), padding=(1, 0)), nn.Conv2d(1, 1, (1, 3), padding=(0, 1))
    def forward(self, x): return torch.cat([self.a(x), self.b(x)], 1)

def _measured(model, layer, size=(1, 16, 16), unit=(3, 3)):
    t, b, l, r = empirical_receptive_field(model, size, layer, unit=unit)
    return b - t + 1, r - l + 1

def test_functional_max_pool_is_modelled_and_measured():
    m = _FMax()
    assert rf_of(m) == [8, 2]
    assert _measured(m, 'c2') == (8, 8)  # F.max_pool2d in forward is replaced while measuring

def test_max_pool_dilation_is_kept_when_measuring():
    m = nn.Sequential(nn.Conv2d(1, 1, 3), nn.MaxPool2d(3, 2, dilation=2), nn.Conv2d(1, 1, 3))
    assert rf_of(m, (1, 32, 32)) == [11, 2] and _measured(m, '2', (1, 32, 32)) == (11, 11)

def test_pixel_unshuffle_lppool_and_slicing():
    assert rf_of(nn.Sequential(nn.Conv2d(1, 1, 3), nn.PixelUnshuffle(2), nn.Conv2d(4, 1, 3))) == [8, 2]
    assert rf_of(nn.Sequential(nn.Conv2d(1, 1, 3), nn.LPPool2d(2, 3, 2), nn.Conv2d(1, 1, 3))) == [9, 2]
    assert rf_of(_Slice()) == [7, 2] and _measured(_Slice(), 'c2', unit=(2, 2)) == (7, 7)

@pytest.mark.parametrize('layer', [nn.Upsample(scale_factor=2), nn.ConvTranspose2d(1, 1, 3, 2)])
def test_unmodelled_layers_are_refused_by_name(layer):
    with pytest.raises(ValueError, match=f"layer '1 \\({type(layer).__name__}\\)'"):
        receptive_field(nn.Sequential(nn.Conv2d(1, 1, 3), layer, nn.Conv2d(1, 1, 3)), (1, 16, 16))

def test_branches_meet_per_axis_with_a_row_for_the_concat():
    t = receptive_field(_Cross(), (1, 16, 16))
    assert t.iloc[-1]['type'] == 'cat' and t.iloc[-1]['rf'] == 3
    assert _measured(_Cross(), 'b', unit=(8, 8)) == (1, 3)

def test_squeeze_excitation_sees_the_whole_input():
    from torchvision.models import efficientnet_b0
    t = receptive_field(efficientnet_b0(), (3, 64, 64))
    assert math.isinf(t.iloc[-1]['rf'])

def test_resnet_unchanged_by_the_union_rule():
    from torchvision.models import resnet18
    assert receptive_field(resnet18(), (3, 224, 224)).iloc[-1][['rf', 'jump']].tolist() == [435, 32]

@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 12), k=st.integers(1, 4), s=st.integers(1, 3), p=st.integers(0, 2), d=st.integers(1, 2),
       ceil=st.booleans())
def test_pool_out_size_matches_torch(n, k, s, p, d, ceil):
    try: want = nn.MaxPool2d(k, s, p, d, ceil_mode=ceil)(torch.zeros(1, 1, n, n)).shape[-1] or None
    except RuntimeError: want = None
    try: got = pool_out_size(n, k, s, p, d, ceil)
    except ValueError: got = None
    assert got == want

@settings(max_examples=30, deadline=None)
@given(h=st.integers(1, 5), w=st.integers(1, 5), kh=st.integers(1, 3), kw=st.integers(1, 3), s=st.integers(1, 3))
def test_transposed_as_conv_rectangular(h, w, kh, kw, s):
    x, wt = torch.randn(1, 2, h, w, dtype=torch.float64), torch.randn(2, 3, kh, kw, dtype=torch.float64)
    torch.testing.assert_close(transposed_as_conv(x, wt, s)[0], F.conv_transpose2d(x, wt, stride=s))

# ---------------- ActivationRecorder on a plain fastai Learner ----------------

def _plain_learner(cbs, model=None):
    from fastai.learner import Learner
    from coursekit.cnn import default_model
    return Learner(mnist_dls(device='cpu', bs=256), model or default_model(), loss_func=F.cross_entropy, cbs=cbs)

def test_stats_refuses_a_layer_not_in_the_model():
    from coursekit.stats import ActivationRecorder
    learn = _plain_learner([ActivationRecorder(modules=[nn.Conv2d(1, 4, 3)])])
    with pytest.raises(ValueError, match='modules must be layers of the model'), learn.no_bar(), learn.no_logging():
        learn.fit(1)

def test_stats_removes_its_hooks_when_fit_raises():
    from coursekit.hooks import count_hooks
    from coursekit.stats import ActivationRecorder
    from fastai.callback.core import Callback
    class Boom(Callback):
        def after_batch(self):
            if self.iter == 3 and self.training: raise RuntimeError('boom')
    stats, boom = ActivationRecorder(), Boom()
    learn = _plain_learner([stats, boom])
    with pytest.raises(RuntimeError, match='boom'), learn.no_bar(), learn.no_logging(): learn.fit(1)
    assert count_hooks(learn.model) == 0 and '_do_epoch' not in vars(learn)
    learn.remove_cb(boom)
    with learn.no_bar(), learn.no_logging(): learn.fit(1)  # and the next fit records normally
    assert count_hooks(learn.model) == 0 and len(stats.stats) == len(learn.dls.train)

def test_stats_grow_in_chunks_not_epochs_times_batches():
    from coursekit.stats import ActivationRecorder
    stats = ActivationRecorder()
    learn = _plain_learner([stats])
    seen = []
    orig = stats._start
    def spy(): orig(); seen.append(len(stats._stats))
    stats._start = spy
    with learn.no_bar(), learn.no_logging(): learn.fit(3)
    n = len(learn.dls.train)
    assert seen == [n] and len(stats.stats) == 3 * n  # room for one epoch first, then doubled as needed
    assert not torch.equal(stats.stats[n:2 * n], torch.zeros_like(stats.stats[n:2 * n]))

# ---------------- the data a user's installation holds ----------------

def test_damaged_bundle_names_the_file_and_the_fix(tmp_path):
    from coursekit.store import bundle_path, read_bundle
    data = bundle_path().read_bytes()
    damaged = [('cut.npz', data[:50_000]), ('junk.npz', b'not a zip'), ('zeroed.npz', data[:-200] + bytes(200))]
    for name, content in damaged:
        (tmp_path/name).write_bytes(content)
        with pytest.raises((RuntimeError, FileNotFoundError), match='reinstall') as e: read_bundle(tmp_path/name)
        assert name in str(e.value)
    np.savez(tmp_path/'partial.npz', test_x=np.zeros(2))
    with pytest.raises(RuntimeError, match='no meta'): read_bundle(tmp_path/'partial.npz')

@pytest.mark.parametrize('manifest', ['{}', 'null', '{"files": {}}', '[]', '{"files": 3}'])
def test_a_broken_manifest_is_repaired(data_dir, manifest):
    from coursekit.store import MANIFEST
    files = lambda: [('a.txt', b'hello')]
    p = materialise('demo', files)
    (p/MANIFEST).write_text(manifest)
    assert check_folder(p).startswith('manifest is corrupted')
    with pytest.warns(UserWarning, match='rebuilding'): materialise('demo', files)
    assert check_folder(p) is None and (p/'a.txt').read_bytes() == b'hello'

def test_empty_home_is_not_the_root(monkeypatch):
    from coursekit.store import cache_dir
    for v in ('COURSEKIT_DATA', 'XDG_CACHE_HOME'): monkeypatch.delenv(v, raising=False)
    monkeypatch.setenv('HOME', '')
    assert cache_dir() != Path('/.cache/coursekit') and cache_dir().name == 'coursekit'

def test_draw_image_refuses_channels_last():
    from coursekit.core import draw_image
    with pytest.raises(ValueError, match='channels-last'): draw_image(torch.rand(8, 8, 3))

# ---------------- every public function, fed junk ----------------

JUNK = [None, 'x', -1, 0, 1.5, float('nan'), torch.zeros(()), torch.zeros(2, 2, 2, 2, 2), [],
        np.zeros((3, 3, 3), dtype=np.uint8)]
NOT_FED = {  # they train, download-free but slow, write the cache, or take no required arguments worth feeding
    'main', 'build_parser', 'train_cnn', 'stability_run', 'augmentation_experiment', 'kernel_explorer', 'materialise',
    'staged_out', 'seeded', 'cmd_data', 'cmd_train', 'cmd_gradcam', 'save_gradcam_grid', 'save_stats_figures'}

def _public_functions():
    import inspect
    import coursekit.core, coursekit.kernels, coursekit.arith, coursekit.cam, coursekit.cnn, coursekit.data
    import coursekit.augment, coursekit.hooks, coursekit.store, coursekit.stats, coursekit.exercises, coursekit.loaders
    import coursekit.receptive, coursekit.animation, coursekit.capture, coursekit.training, coursekit.backward
    mods = [coursekit.core, coursekit.kernels, coursekit.arith, coursekit.cam, coursekit.cnn, coursekit.data,
            coursekit.augment, coursekit.hooks, coursekit.store, coursekit.stats, coursekit.exercises,
            coursekit.loaders, coursekit.receptive, coursekit.animation, coursekit.capture, coursekit.training,
            coursekit.backward]
    for mod in mods:
        for name in mod.__all__:
            f = getattr(mod, name)
            if name in NOT_FED or not callable(f): continue
            try: params = inspect.signature(f).parameters.values()
            except (TypeError, ValueError): continue
            n = sum(p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)
            if n: yield f'{mod.__name__}.{name}', f, n

def test_junk_into_every_public_function_gives_clear_errors(capsys):
    import traceback, matplotlib.pyplot as plt
    cryptic = []
    for name, f, n in _public_functions():
        for junk in JUNK:
            try: f(*[junk] * n)
            except (TypeError, ValueError, FileNotFoundError, RuntimeError) as e:
                where = traceback.extract_tb(e.__traceback__)[-1].filename
                if 'coursekit' not in where and name.split('.')[-1] not in str(e): cryptic.append((name, junk, e))
            except Exception as e: cryptic.append((name, junk, e))
            finally: plt.close('all')
    assert not cryptic, '\n'.join(f'{n}({j!r:.20}): {type(e).__name__}: {e}' for n, j, e in cryptic)
