"Size arithmetic, shape traces and receptive fields against what PyTorch's layers really do."
import itertools
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
