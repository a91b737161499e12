"Size arithmetic, shape traces and receptive fields against what PyTorch's layers really do."
import itertools
import math
import pytest, torch
import torch.nn as nn
from torchvision.models import resnet18, resnet34
from coursekit.arith import (conv_out_size, conv_transpose_out_size, same_padding, pad_modes, trace_shapes,
                             transposed_as_conv)
from coursekit.receptive import receptive_field, empirical_receptive_field, predicted_box

def torch_out(layer, n):
    try:
        with torch.no_grad(): size = layer(torch.zeros(1, 1, n, n)).shape[-1]
        return size if size > 0 else None  # ConvTranspose2d can return an empty tensor; we call that invalid
    except RuntimeError: return None

def ours(f, *a):
    try: return f(*a)
    except ValueError: return None

GRID = list(itertools.product(range(1, 13), range(1, 6), (1, 2, 3), (0, 1, 2), (1, 2)))  # 1,080 cases

def test_grid_is_large_enough():
    assert len(GRID) >= 800
    assert sum(ours(conv_out_size, *c) is not None for c in GRID) >= 800  # and most of it valid

def test_conv_out_size_matches_nn_conv2d_on_grid():
    bad = [c for c in GRID if ours(conv_out_size, *c) != torch_out(nn.Conv2d(1, 1, c[1], c[2], c[3], dilation=c[4]), c[0])]
    assert not bad, bad[:5]

@pytest.mark.parametrize('output_padding', [0, 1])
def test_conv_transpose_out_size_matches_nn_convtranspose2d_on_grid(output_padding):
    bad = []
    for n, ks, s, p, d in GRID:
        try: layer = nn.ConvTranspose2d(1, 1, ks, s, p, output_padding, dilation=d)
        except ValueError: layer = None
        ref = torch_out(layer, n) if layer is not None else None
        if ours(conv_transpose_out_size, n, ks, s, p, output_padding, d) != ref: bad.append((n, ks, s, p, d))
    assert not bad, bad[:5]

def test_same_padding_keeps_size():
    for ks in (1, 3, 5, 7):
        for d in (1, 2, 3):
            p = same_padding(ks, d)
            assert torch_out(nn.Conv2d(1, 1, ks, padding=p, dilation=d), 17) == 17
    with pytest.raises(ValueError, match="can't be split evenly"): same_padding(4)

@pytest.mark.parametrize('call,msg', [
    (lambda: conv_out_size(28, 3, stride=0), 'stride must be >= 1'),
    (lambda: conv_out_size(28, 3, padding=-1), 'padding must be >= 0'),
    (lambda: conv_out_size(-5, 3), 'n must be >= 1'),
    (lambda: conv_out_size(28, 0), 'ks must be >= 1'),
    (lambda: conv_out_size(2, 5), 'output would be empty'),
    (lambda: conv_out_size(28, 3, dilation=0), 'dilation must be >= 1'),
    (lambda: conv_transpose_out_size(3, 3, stride=0), 'stride must be >= 1'),
    (lambda: conv_transpose_out_size(1, 1, padding=1), 'output size'),
    (lambda: conv_transpose_out_size(3, 3, stride=2, output_padding=2), 'output_padding must be smaller'),
])
def test_invalid_combinations_explain_why(call, msg):
    with pytest.raises(ValueError, match=msg): call()

def test_padding_mode_rows():
    p = pad_modes(torch.arange(1, 10).view(3, 3))
    assert p['reflect'][0].tolist() == [5, 4, 5, 6, 5]
    assert p['replicate'][0].tolist() == [1, 1, 2, 3, 3]
    assert p['circular'][0].tolist() == [9, 7, 8, 9, 7]

def test_resnet34_shape_trace():
    t = trace_shapes(resnet34(), (3, 352, 352)).set_index('layer')
    assert t.loc['conv1', 'output_shape'] == (64, 176, 176)
    assert t.loc['maxpool', 'output_shape'] == (64, 88, 88)
    assert t.loc['maxpool', 'formula'] == '(176+2*1-3)//2+1 = 88'
    assert t.loc['layer2.0.conv1', 'output_shape'] == (128, 44, 44)
    assert t.loc['layer2.0.conv1', 'formula'] == '(88+2*1-3)//2+1 = 44'
    assert t.loc['layer3.0.conv1', 'output_shape'] == (256, 22, 22)
    assert t.loc['layer4.0.conv1', 'output_shape'] == (512, 11, 11)
    assert t.loc['layer4.2.bn2', 'output_shape'] == (512, 11, 11)
    # mults of a conv: output elements x inputs per output; a plain check on the stem
    assert t.loc['conv1', 'mults'] == 64 * 176 * 176 * 3 * 7 * 7
    assert t.loc['fc', 'mults'] == 512 * 1000

def test_simple_cnn_trace():
    from coursekit.cnn import simple_cnn
    t = trace_shapes(simple_cnn(), (1, 28, 28))
    convs = t[t.type == 'Conv2d']
    assert [s[-1] for s in convs.output_shape] == [14, 7, 4, 2, 1]
    assert convs.params.tolist() == [40, 296, 1168, 4640, 578]

def test_trace_restores_mode_and_hooks_also_on_error():
    m = resnet18()
    m.train(); m.layer1.eval()  # a mixed state must come back exactly
    before = {n: x.training for n, x in m.named_modules()}
    h = m.conv1.register_forward_hook(lambda *a: None)  # the user's own hook stays
    trace_shapes(m, (3, 64, 64))
    assert {n: x.training for n, x in m.named_modules()} == before
    with pytest.raises(ValueError, match='takes 3 channels'): trace_shapes(m, (1, 64, 64))  # refused before running
    def boom(x): raise RuntimeError('boom')
    m.layer2.forward = boom  # a forward that fails half-way
    with pytest.raises(RuntimeError, match='boom'): trace_shapes(m, (3, 64, 64))
    del m.layer2.forward
    assert {n: x.training for n, x in m.named_modules()} == before
    assert [len(x._forward_hooks) for x in m.modules()].count(1) == 1 and len(m.conv1._forward_hooks) == 1
    h.remove()
    # no batchnorm statistics were updated by tracing
    bn = m.bn1.running_mean.clone(); trace_shapes(m, (3, 64, 64)); assert torch.equal(bn, m.bn1.running_mean)

def test_receptive_fields_of_resnets_and_two_convs():
    assert receptive_field(resnet18(), (3, 224, 224)).iloc[-1][['rf', 'jump']].tolist() == [435, 32]
    assert receptive_field(resnet34(), (3, 224, 224)).iloc[-1][['rf', 'jump']].tolist() == [899, 32]
    two = nn.Sequential(nn.Conv2d(1, 1, 3, 2, 1), nn.ReLU(), nn.Conv2d(1, 1, 3, 2, 1))
    assert receptive_field(two, (1, 28, 28)).rf.iloc[-1] == 7

def test_receptive_field_handles_pooling_and_matches_empirical():
    m = nn.Sequential(nn.Conv2d(1, 4, 5, 1, 2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 4, 3, 1, 1, dilation=1),
                      nn.AvgPool2d(3, 2, 1), nn.Conv2d(4, 4, 3, 2, 0, dilation=2), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    size = (1, 96, 96)
    rf = receptive_field(m, size)
    assert rf.layer.tolist() == ['0', '1', '2', '3', '4', '5']  # stops at global pooling
    shapes = trace_shapes(m, size).set_index('layer').output_shape
    for _, row in rf.iterrows():
        h, w = shapes[row.layer][1:]
        for unit in [(h // 2, w // 2), (0, 0), (h - 1, w // 3)]:
            assert predicted_box(row, *unit, size[1:]) == empirical_receptive_field(m, size, row.layer, unit), (row.layer, unit)

def test_receptive_field_follows_residual_branches():
    class Res(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.skip = nn.Conv2d(1, 1, 3, 1, 1), nn.Conv2d(1, 1, 3, 1, 1), nn.Conv2d(1, 1, 1)
            self.after = nn.Conv2d(1, 1, 3, 1, 1)
        def forward(self, x): return self.after(self.b(self.a(x)) + self.skip(x))
    rf = receptive_field(Res(), (1, 20, 20)).set_index('layer').rf
    assert rf['skip'] == 1 and rf['b'] == 5 and rf['after'] == 7  # the largest branch (5) + 2

def test_transposed_as_conv_equals_conv_transpose2d():
    g = torch.Generator().manual_seed(0)
    for n, k, s, p, op, d in [(4, 3, 2, 1, 1, 1), (3, 2, 1, 0, 0, 1), (5, 3, 3, 2, 2, 2), (3, 4, 2, 2, 1, 1)]:
        x, w = torch.randn(1, 1, n, n, generator=g, dtype=torch.float64), torch.randn(1, 1, k, k, generator=g, dtype=torch.float64)
        out, _ = transposed_as_conv(x, w, s, p, op, d)
        ref = torch.nn.functional.conv_transpose2d(x, w, stride=s, padding=p, output_padding=op, dilation=d)
        assert out.shape == ref.shape and torch.allclose(out, ref)
        assert out.shape[-1] == conv_transpose_out_size(n, k, s, p, op, d)
    with pytest.raises(ValueError, match='output size'): transposed_as_conv(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 4, 4), 2, 3)

@pytest.mark.parametrize('kw', [dict(n=5, ks=3, stride=2, padding=1), dict(n=4, ks=2, dilation=2),
                                dict(n=3, ks=3, stride=2, padding=1, transposed=True, output_padding=1)])
def test_animations_show_the_real_convolution(kw):
    import matplotlib; matplotlib.use('Agg')
    from coursekit.animation import animate_conv, conv_frames, animation_gif, _frames
    f = _frames(kw['n'], kw['ks'], kw.get('stride', 1), kw.get('padding', 0), kw.get('dilation', 1),
                kw.get('transposed', False), kw.get('output_padding', 0))
    x, grid, real, kern, out = f.x, f.grid, f.real, f.kern, f.out
    w = kern if not kw.get('transposed') else kern.flip(-1, -2)
    ref = (torch.nn.functional.conv_transpose2d(x[None, None], w[None, None], stride=kw.get('stride', 1), padding=kw.get('padding', 0),
                                                output_padding=kw.get('output_padding', 0), dilation=kw.get('dilation', 1))
           if kw.get('transposed') else
           torch.nn.functional.conv2d(x[None, None], w[None, None], stride=kw.get('stride', 1), padding=kw.get('padding', 0), dilation=kw.get('dilation', 1)))
    assert torch.allclose(out, ref[0, 0])  # the numbers drawn are the layer's real output
    anim = animate_conv(**kw)
    gif = animation_gif(anim)
    from PIL import Image; import io
    assert gif[:6] == b'GIF89a' and Image.open(io.BytesIO(gif)).n_frames == out.numel()  # one frame per output pixel
    assert len(conv_frames(**kw, max_frames=2).axes) == 6  # per frame: input, the window's products, output
    # blue cells are the real input pixels, zero-valued ones included; inserted zeros and padding are not
    assert int(real.sum()) == x.numel() and (grid[real].sort().values == x.flatten().sort().values).all()
    assert (grid[~real] == 0).all()

def test_empirical_swaps_functional_max_pool_in_the_copy_only():
    "F.max_pool2d in a nested block's forward is measured as a window mean, while torch's F.max_pool2d stays itself."
    F = torch.nn.functional
    class Block(nn.Module):
        def __init__(self): super().__init__(); self.c = nn.Conv2d(1, 1, 3, padding=1)
        def forward(self, x): return F.max_pool2d(self.c(x), 2)
    m, real = nn.Sequential(Block(), nn.Conv2d(1, 1, 3, padding=1)), F.max_pool2d
    x = torch.rand(1, 1, 8, 8)
    seen = []  # what F.max_pool2d computes while the copy runs (the hook is copied with the model)
    true_max = x.unfold(2, 2, 2).unfold(3, 2, 2).amax((-1, -2))
    m[1].register_forward_hook(lambda *a: seen.append(torch.equal(F.max_pool2d(x, 2), true_max)))
    t, b, l, r = empirical_receptive_field(m, (1, 16, 16), '1', unit=(3, 3))
    assert (b - t + 1, r - l + 1) == (8, 8) and seen == [True] and F.max_pool2d is real
    assert empirical_receptive_field(m, (1, 16, 16), '0.c', unit=(3, 3)) == (2, 4, 2, 4)  # names inside the block too
    assert receptive_field(m, (1, 16, 16)).rf.tolist() == [3, 4, 8]

# ---------------- checked against references nobody here wrote: torchvision, timm, torch, autograd ----------------
import random
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st
from coursekit.arith import example_input, layer_geometry

def _thin(model):
    "`model` (changed in place) with one channel everywhere: the same windows, so the same fields, for little work."
    for parent in list(model.modules()):
        for n, c in parent.named_children():
            if isinstance(c, nn.Conv2d):
                setattr(parent, n, type(c)(1, 1, c.kernel_size, c.stride, c.padding, c.dilation))
            elif isinstance(c, (nn.BatchNorm2d, nn.Linear)): setattr(parent, n, nn.Identity())
    return model

def _row(table, layer): return table.set_index('layer').loc[layer]

def _same_fields(model, thin, size, thin_size):
    "The thin copy has the model's fields at every convolution and pooling layer."
    a, b = receptive_field(model, size).set_index('layer'), receptive_field(thin, thin_size).set_index('layer')
    windows = b[b.type.str.contains('Conv|Pool')].index
    assert len(windows) > 10
    for c in ('rf', 'jump', 'start'): assert a.loc[windows, c].tolist() == b.loc[windows, c].tolist()

def _boxes_match(model, size, layers, units):
    "predicted_box equals the measured box (autograd) for each layer and unit ('c', 'last': the centre, the last)."
    table, shapes = receptive_field(model, size), trace_shapes(model, size).set_index('layer').output_shape
    for layer in layers:
        h, w = shapes[layer][1:]
        for u in units:
            i, j = {'first': (0, 0), 'centre': (h // 2, w // 2), 'last': (h - 1, w - 1)}[u]
            assert predicted_box(_row(table, layer), i, j, size[1:]) == \
                empirical_receptive_field(model, size, layer, (i, j)), (layer, u)

def test_adaptive_pool_on_a_larger_grid_alexnet_and_vgg16_at_448():
    from torchvision.models import alexnet, vgg16
    a = receptive_field(alexnet(), (3, 448, 448))
    assert _row(a, 'features.12')[['rf', 'jump']].tolist() == [195, 32]  # 13x13 left
    assert _row(a, 'avgpool')[['rf', 'jump', 'start']].tolist() == [259, 64, 63.5]  # 13 -> 6: windows of 3 at stride 2
    assert predicted_box(_row(a, 'avgpool'), 2, 2, (448, 448)) == (62, 320, 62, 320)
    assert empirical_receptive_field(alexnet(), (3, 448, 448), 'avgpool', (2, 2)) == (62, 320, 62, 320)
    v = receptive_field(vgg16(), (3, 448, 448))
    assert _row(v, 'avgpool')[['rf', 'jump', 'start']].tolist() == [244, 64, 32]  # 14 -> 7: windows of 2 at stride 2
    thin = _thin(vgg16())  # the same windows with one channel: measured in a fraction of the time
    assert receptive_field(thin, (1, 448, 448)).equals(v)
    _boxes_match(thin, (1, 448, 448), ['features.30', 'avgpool'], ['first', 'centre', 'last'])
    assert receptive_field(alexnet(), (3, 224, 224)).iloc[-1][['rf', 'jump']].tolist() == [195, 32]  # 6 -> 6: as before

def test_adaptive_pool_windows_that_differ_are_refused_by_name():
    m = nn.Sequential(nn.Conv2d(1, 1, 3), nn.AdaptiveAvgPool2d(5), nn.Conv2d(1, 1, 1))
    with pytest.raises(ValueError, match="adaptive pooling '1' from 13x13 to 5x5 has windows of different sizes"):
        receptive_field(m, (1, 15, 15))
    assert receptive_field(m, (1, 12, 12)).rf.tolist() == [3, 4, 4]  # 10 -> 5: windows of 2 at stride 2

class _FAdaptive(nn.Module):
    def __init__(self): super().__init__(); self.c, self.c2 = nn.Conv2d(1, 1, 3), nn.Conv2d(1, 1, 3)
    def forward(self, x): return self.c2(F.adaptive_max_pool2d(self.c(x), (7, 5)))

def test_adaptive_max_pool_modelled_and_measured_as_a_module_and_in_forward():
    m = nn.Sequential(nn.Conv2d(1, 1, 3), nn.AdaptiveMaxPool2d((7, 4)), nn.Conv2d(1, 1, 3))
    assert receptive_field(m, (1, 16, 18)).iloc[-1][['rf', 'jump']].tolist() == [(8, 14), (2, 4)]  # 14x16 -> 7x4
    _boxes_match(m, (1, 16, 18), ['1', '2'], ['first', 'centre', 'last'])
    t = receptive_field(_FAdaptive(), (1, 16, 12))  # 14x10 -> 7x5
    assert t.iloc[-1][['layer', 'rf', 'jump']].tolist() == ['c2', 8, 2]
    box = predicted_box(t.iloc[-1], 1, 1, (16, 12))
    assert empirical_receptive_field(_FAdaptive(), (1, 16, 12), 'c2', (1, 1)) == box

def test_tf_same_padding_of_efficientnet_lite0():
    import timm
    lite0 = timm.create_model('tf_efficientnet_lite0', pretrained=False)  # imagenet_classifier's architecture
    t = receptive_field(lite0, (3, 224, 224))
    last = t.iloc[-1]
    assert last[['layer', 'rf', 'jump', 'start']].tolist() == ['bn2.act', 851, 32, 31.5]
    assert last.rf / 2 - last.start == 394  # the effective padding: how far unit (0, 0)'s field reaches beyond the edge
    thin = _thin(timm.create_model('tf_efficientnet_lite0', pretrained=False))
    _same_fields(lite0, thin, (3, 224, 224), (1, 224, 224))
    from timm.layers import Conv2dSame
    same = [n for n, m in thin.named_modules() if isinstance(m, Conv2dSame)]  # the five stride-2 layers
    _boxes_match(thin, (1, 224, 224), same + ['blocks.6.0.conv_pwl'], ['first', 'last'])  # edges inside the image
    _boxes_match(thin, (1, 227, 227), same, ['first', 'last'])  # odd sizes pad differently
    # at 1024 (the same padding as 224: every stride-2 layer gets an even size) the whole field fits in the image
    big = receptive_field(thin, (1, 1024, 1024)).iloc[-1]
    assert big[['rf', 'jump', 'start']].tolist() == [851, 32, 31.5]
    assert empirical_receptive_field(thin, (1, 1024, 1024), 'conv_head', (16, 16)) == (118, 968, 118, 968)
    assert predicted_box(big, 16, 16, (1024, 1024)) == (118, 968, 118, 968)  # 118 = 31.5 + 16*32 - 851/2

def test_timm_same_max_pool_is_modelled_and_measured():
    from timm.layers import Conv2dSame
    from timm.layers.pool2d_same import MaxPool2dSame, AvgPool2dSame
    m = nn.Sequential(Conv2dSame(1, 1, 4, 2), MaxPool2dSame(3, 2), AvgPool2dSame(2, 2), nn.Conv2d(1, 1, 3))
    for n in (23, 24, 31):
        _boxes_match(m, (1, n, n), ['0', '1', '2', '3'], ['first', 'centre', 'last'])

def test_input_size_with_a_batch_axis_or_an_example_tensor():
    for size in [(1, 3, 224, 224), (2, 3, 224, 224), torch.zeros(3, 224, 224), torch.rand(1, 3, 224, 224)]:
        assert receptive_field(resnet18(), size).equals(receptive_field(resnet18(), (3, 224, 224)))
    m = nn.Sequential(nn.Conv2d(3, 4, 3, 2, 1), nn.ReLU(), nn.Conv2d(4, 2, 3))
    for size in [(1, 3, 32, 32), (4, 3, 32, 32), torch.rand(3, 32, 32), torch.rand(2, 3, 32, 32)]:
        assert trace_shapes(m, size).equals(trace_shapes(m, (3, 32, 32)))
        assert empirical_receptive_field(m, size, '2', (3, 3)) == empirical_receptive_field(m, (3, 32, 32), '2', (3, 3))
    assert example_input(m, (2, 3, 8, 8)).shape == (2, 3, 8, 8)
    with pytest.raises(ValueError, match='input_size must be'): trace_shapes(m, (1, 1, 3, 32, 32))
    with pytest.raises(ValueError, match='takes 3 channels'): receptive_field(m, torch.zeros(1, 1, 32, 32))
    with pytest.raises(TypeError, match='float64'): trace_shapes(m, torch.zeros(1, 3, 32, 32, dtype=torch.float64))

def test_named_paddings_valid_and_same():
    assert layer_geometry(nn.Conv2d(1, 1, 3, padding='valid'))[2] == (0, 0)
    assert layer_geometry(nn.Conv2d(1, 1, 3, padding='same'))[2] is None
    for pad in ('valid', 'same'):
        m = nn.Sequential(nn.Conv2d(1, 1, 5, padding=pad), nn.Conv2d(1, 1, 3, dilation=2, padding=pad))
        assert receptive_field(m, (1, 20, 20)).rf.tolist() == [5, 9]
        _boxes_match(m, (1, 20, 20), ['0', '1'], ['first', 'centre', 'last'])
    assert receptive_field(nn.Sequential(nn.Conv2d(1, 1, 5, padding='valid')), (1, 9, 9)).start.tolist() == [2.5]

def _transposed_matches_torch(h, w, kh, kw, s, p, op, d, g=None):
    "transposed_as_conv equals F.conv_transpose2d where torch computes an output, and raises ValueError elsewhere."
    x = torch.randn(1, 2, h, w, dtype=torch.float64, generator=g)
    wt = torch.randn(2, 3, kh, kw, dtype=torch.float64, generator=g)
    try: ref = F.conv_transpose2d(x, wt, stride=s, padding=p, output_padding=op, dilation=d)
    except RuntimeError: ref = None
    if ref is None or ref.numel() == 0:  # torch refuses, or gives an empty tensor: ours refuses too
        with pytest.raises(ValueError): transposed_as_conv(x, wt, s, p, op, d)
        return False
    out, _ = transposed_as_conv(x, wt, s, p, op, d)
    torch.testing.assert_close(out, ref)
    return True

@settings(max_examples=300, deadline=None)
@given(h=st.integers(1, 6), w=st.integers(1, 6), kh=st.integers(1, 4), kw=st.integers(1, 4), s=st.integers(1, 3),
       p=st.integers(0, 4), op=st.integers(0, 2), d=st.integers(1, 3))
def test_transposed_as_conv_matches_conv_transpose2d_on_random_cases(h, w, kh, kw, s, p, op, d):
    _transposed_matches_torch(h, w, kh, kw, s, p, op, d)

def test_transposed_as_conv_crops_where_padding_exceeds_the_kernel_reach():
    rng, g, cropped = random.Random(0), torch.Generator().manual_seed(0), 0
    for _ in range(600):
        c = [rng.randint(*r) for r in [(1, 6), (1, 6), (1, 4), (1, 4), (1, 3), (0, 4), (0, 2), (1, 3)]]
        valid = _transposed_matches_torch(*c, g=g)
        cropped += valid and c[5] > c[7] * (min(c[2], c[3]) - 1)
    assert cropped >= 80  # the cases refused before: padding > dilation*(k-1)
    x, w = torch.randn(1, 1, 4, 4, dtype=torch.float64), torch.randn(1, 1, 3, 3, dtype=torch.float64)
    out, grid = transposed_as_conv(x, w, 2, 3, 1)
    assert grid.shape[-2:] == (6, 6) and out.shape[-2:] == (4, 4)  # 7x7 zero-inserted, 1 cropped each side, 1 added
    torch.testing.assert_close(out, F.conv_transpose2d(x, w, stride=2, padding=3, output_padding=1))

class _Untraceable(nn.Module):
    "Data-dependent control flow: torch.fx can't trace it, so its layers are taken in call order, with their sizes."
    def __init__(self):
        super().__init__()
        from timm.layers import Conv2dSame
        self.a, self.pool, self.b = Conv2dSame(1, 1, 5, 2), nn.AdaptiveAvgPool2d((4, 3)), nn.Conv2d(1, 1, 3)
    def forward(self, x): return self.b(self.pool(self.a(x))) if x.sum() >= 0 else x

def test_call_order_fallback_models_tf_same_and_adaptive_pools_too():
    chain = nn.Sequential(*_Untraceable().children())
    for size in [(1, 16, 12), (1, 17, 13)]:
        fields = [receptive_field(m, size).drop(columns='layer') for m in (_Untraceable(), chain)]
        assert fields[0].equals(fields[1])
        _boxes_match(_Untraceable(), size, ['a', 'pool', 'b'], ['first', 'centre', 'last'])

# ---------------- the chapter's exercises: checkers that say what is wrong ----------------
from coursekit.arith import grade_conv_out_size, grade_rf_step, grade_conv_params, rf_step

def _graded(grader, fn, capsys, **kw):
    ok = grader(fn, **kw)
    return ok, capsys.readouterr().out.strip()

def test_grade_conv_out_size(capsys):
    right = lambda n, ks, s=1, p=0, d=1: (n + 2 * p - d * (ks - 1) - 1) // s + 1
    for seed in range(10):
        assert _graded(grade_conv_out_size, right, capsys, seed=seed) == (True, 'conv_out_size: correct!')
    assert _graded(grade_conv_out_size, conv_out_size, capsys) == (True, 'conv_out_size: correct!')
    slips = {'the + 1 is missing': lambda n, ks, s, p, d: (n + 2 * p - d * (ks - 1) - 1) // s,
             'the padding is added once': lambda n, ks, s, p, d: (n + p - d * (ks - 1) - 1) // s + 1,
             'the dilation is missing': lambda n, ks, s, p, d: (n + 2 * p - ks) // s + 1,
             'rounded up': lambda n, ks, s, p, d: math.ceil((n + 2 * p - d * (ks - 1) - 1) / s) + 1}
    for what, fn in slips.items():
        ok, msg = _graded(grade_conv_out_size, fn, capsys)
        assert not ok and what in msg and 'expected' in msg, msg
    ok, msg = _graded(grade_conv_out_size, lambda n, ks, s, p, d: right(n, ks, s, p, d) + 3 * (n == 37), capsys)
    assert msg == 'conv_out_size(n=37, ks=4, stride=2, padding=2, dilation=2): expected 18, got 21'  # no known slip
    ok, msg = _graded(grade_conv_out_size, lambda *a: [right(*a)] * 2, capsys)
    assert not ok and msg.endswith('wrong shape: expected (), got (2,)'), msg
    ok, msg = _graded(grade_conv_out_size, lambda *a: 1 / 0, capsys)
    assert not ok and 'raised ZeroDivisionError' in msg

def test_grade_rf_step(capsys):
    right = lambda rf, j, st, k, s, p, d: (rf + d * (k - 1) * j, j * s, st + (d * (k - 1) / 2 - p) * j)
    for seed in range(10): assert _graded(grade_rf_step, right, capsys, seed=seed) == (True, 'rf_step: correct!')
    assert _graded(grade_rf_step, rf_step, capsys) == (True, 'rf_step: correct!')
    ok, msg = _graded(grade_rf_step, lambda rf, j, st, k, s, p, d: (rf + d * (k - 1) * j * s, j * s,
                                                                    st + (d * (k - 1) / 2 - p) * j * s), capsys)
    assert msg == ('rf_step(rf=1, jump=1, start=0.5, k=3, s=2, p=1, d=1): rf should be 3, got 5 (the jump from after '
                   'the layer was used: rf and start grow with the jump from before it)')
    ok, msg = _graded(grade_rf_step, lambda *a: (right(*a)[0], right(*a)[1], right(*a)[2] + 0.25), capsys)
    assert msg == 'rf_step(rf=1, jump=1, start=0.5, k=3, s=2, p=1, d=1): start should be 0.5, got 0.75'
    no_dilation = lambda rf, j, st, k, s, p, d: (rf + (k - 1) * j, j * s, st + ((k - 1) / 2 - p) * j)
    ok, msg = _graded(grade_rf_step, no_dilation, capsys)
    assert not ok and msg.endswith('(the dilation is missing: the kernel spans d*(k-1)+1 pixels)'), msg
    ok, msg = _graded(grade_rf_step, lambda *a: right(*a)[:2], capsys)
    assert not ok and msg.endswith('wrong shape: expected (3,), got (2,)'), msg
    ok, msg = _graded(grade_rf_step, lambda *a: torch.tensor(right(*a))[None], capsys)  # a (1, 3) tensor
    assert not ok and msg.endswith('wrong shape: expected (3,), got (1, 3)'), msg

def test_grade_conv_params(capsys):
    right = lambda ni, nf, ks, bias=True: nf * ni * ks * ks + nf * bias
    for seed in range(5): assert _graded(grade_conv_params, right, capsys, seed=seed) == (True, 'conv_params: correct!')
    slips = {'the biases are missing': lambda ni, nf, ks, b: nf * ni * ks * ks,
             'biases counted although bias=False': lambda ni, nf, ks, b: nf * ni * ks * ks + nf,
             'ks*ks weights per input channel': lambda ni, nf, ks, b: nf * ni * ks + nf * b,
             'each kernel sees every input channel': lambda ni, nf, ks, b: nf * ks * ks + nf * b}
    for what, fn in slips.items():
        ok, msg = _graded(grade_conv_params, fn, capsys)
        assert not ok and what in msg, msg
    assert _graded(grade_conv_params, right, capsys)[0] and right(8, 16, 3) == 1168
    ok, msg = _graded(grade_conv_params, lambda *a: (right(*a), 0), capsys)
    assert not ok and msg.endswith('wrong shape: expected (), got (2,)'), msg
