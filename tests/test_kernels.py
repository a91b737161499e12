"The convolution from scratch equals F.conv2d, for random shapes and hyper-parameters; bad input is named."
import pytest, torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st, assume, HealthCheck
from coursekit.kernels import (conv2d_loops, conv2d_unfold, conv_matrix, apply_kernel, filter_image, KERNELS,
                               check_kernel, conv_args)

def rel_err(a, b):
    "CS231n's relative error: max |a-b| / max(1e-8, |a|+|b|), elementwise, then the max."
    return ((a - b).abs() / (a.abs() + b.abs()).clamp_min(1e-8)).max().item()

pair = lambda lo, hi: st.one_of(st.integers(lo, hi), st.tuples(st.integers(lo, hi), st.integers(lo, hi)))
as_pair = lambda v: (v, v) if isinstance(v, int) else v

@st.composite
def conv_case(draw):
    N, C_in, C_out = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    H, W = draw(st.integers(1, 10)), draw(st.integers(1, 10))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride, padding, dilation = draw(pair(1, 3)), draw(pair(0, 2)), draw(pair(1, 3))
    (dh, dw), (ph, pw) = as_pair(dilation), as_pair(padding)
    assume(dh * (kh - 1) + 1 <= H + 2 * ph and dw * (kw - 1) + 1 <= W + 2 * pw)
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**31)))
    x = torch.randn(N, C_in, H, W, generator=g, dtype=torch.float64)
    w = torch.randn(C_out, C_in, kh, kw, generator=g, dtype=torch.float64)
    b = torch.randn(C_out, generator=g, dtype=torch.float64) if draw(st.booleans()) else None
    return x, w, b, dict(stride=stride, padding=padding, dilation=dilation)

@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(conv_case())
def test_from_scratch_convs_equal_F_conv2d(case):
    x, w, b, kw = case
    ref = F.conv2d(x, w, b, **kw)
    assert conv_args(x, w, b, **kw)[3] == ref.shape[2:]  # the windows counted: the output size
    for f in (conv2d_loops, conv2d_unfold):
        out = f(x, w, b, **kw)
        assert out.shape == ref.shape and out.dtype == torch.float64
        assert rel_err(out, ref) < 1e-7, f.__name__
    C = conv_matrix(w, x.shape[2:], **kw)
    assert C.shape == (ref[0].numel(), x[0].numel())
    for i in range(len(x)):
        out = C @ x[i].flatten() + (0 if b is None else b[:, None, None].expand_as(ref[i]).flatten())
        assert rel_err(out, ref[i].flatten()) < 1e-7

@settings(max_examples=40, deadline=None)
@given(st.integers(3, 12), st.integers(3, 12), st.sampled_from(sorted(KERNELS)), st.sampled_from(['zeros', 'reflect', 'replicate', 'circular']), st.booleans())
def test_filter_image_equals_padded_depthwise_conv(H, W, name, mode, colour):
    g = torch.Generator().manual_seed(H * 100 + W)
    img = torch.rand((3, H, W) if colour else (H, W), generator=g, dtype=torch.float64)
    k = KERNELS[name].double()
    out = filter_image(img, k, mode)
    x = img[None] if colour else img[None, None]
    xp = F.pad(x, (1, 1, 1, 1), mode='constant' if mode == 'zeros' else mode)
    ref = torch.cat([F.conv2d(xp[:, c:c+1], k[None, None]) for c in range(x.shape[1])], 1)[0]
    assert out.shape == img.shape
    assert rel_err(out, ref if colour else ref[0]) < 1e-7
    # apply_kernel agrees with filter_image wherever the window fits
    if not colour: assert abs(apply_kernel(img, 1, 1, k) - out[1, 1]) < 1e-12

@settings(max_examples=30, deadline=None)
@given(st.integers(4, 9), st.integers(4, 9), st.integers(0, 1000))
def test_apply_kernel_everywhere_equals_conv(H, W, seed):
    g = torch.Generator().manual_seed(seed)
    img, k = torch.rand(H, W, generator=g, dtype=torch.float64), torch.randn(3, 3, generator=g, dtype=torch.float64)
    grid = torch.tensor([[apply_kernel(img, i, j, k) for j in range(1, W - 1)] for i in range(1, H - 1)], dtype=torch.float64)
    assert rel_err(grid, F.conv2d(img[None, None], k[None, None])[0, 0]) < 1e-7

def test_classic_cross_correlation():
    x = torch.arange(9.).view(1, 1, 3, 3); k = torch.tensor([[[[0., 1], [2, 3]]]])
    expected = torch.tensor([[[[19., 25], [37, 43]]]])
    for f in (conv2d_loops, conv2d_unfold, F.conv2d): assert torch.equal(f(x, k), expected)
    assert torch.equal((conv_matrix(k, 3) @ x.flatten()).view(2, 2), expected[0, 0])

def test_top_edge_is_zero_on_constant_patch():
    assert apply_kernel(torch.full((5, 5), 0.7), 2, 2, KERNELS['top_edge']) == 0
    assert torch.allclose(conv2d_unfold(torch.full((1, 1, 6, 6), 0.3), KERNELS['top_edge'][None, None]), torch.zeros(1, 1, 4, 4))

def test_conv_matrix_structure():
    w = torch.randn(2, 3, 3, 3, dtype=torch.float64)
    C = conv_matrix(w, (5, 4), padding=1)
    assert C.shape == (2 * 5 * 4, 3 * 5 * 4)
    # tied weights: every entry of C is one of the kernel's weights (or a structural zero)
    assert set(C[C != 0].tolist()) <= set(w.flatten().tolist())
    # an interior output pixel's row holds all 27 weights of its output channel
    assert (C[5] != 0).sum() == 27

x4 = torch.randn(1, 2, 6, 6); w4 = torch.randn(3, 2, 3, 3)
BAD = [
    (lambda f: f(x4[0], w4), ValueError, 'x must be 4-D'),
    (lambda f: f(x4, w4[0]), ValueError, 'weight must be 4-D'),
    (lambda f: f(x4, torch.randn(3, 2, 9, 3)), ValueError, 'kernel spans 9 pixels along H'),
    (lambda f: f(x4, w4, stride=0), ValueError, 'stride must be >= 1'),
    (lambda f: f(x4, w4, padding=-1), ValueError, 'padding must be >= 0'),
    (lambda f: f(x4, w4, dilation=0), ValueError, 'dilation must be >= 1'),
    (lambda f: f(x4, torch.randn(3, 4, 3, 3)), ValueError, 'weight expects 4 input channels but x has 2'),
    (lambda f: f(x4.long(), w4), TypeError, 'x must be a float tensor'),
    (lambda f: f(x4, w4.int()), TypeError, 'weight must be a float tensor'),
    (lambda f: f(x4, w4, torch.randn(2)), ValueError, 'bias must have shape (3,)'),
    (lambda f: f(x4, w4, stride=1.5), TypeError, 'stride must be an int or a pair'),
    (lambda f: f(x4.numpy(), w4), TypeError, 'x must be a torch.Tensor'),
    (lambda f: f(x4, w4, padding=(1, 2, 3)), TypeError, 'padding must be an int or a pair'),
]

@pytest.mark.parametrize('fn', [conv2d_loops, conv2d_unfold])
@pytest.mark.parametrize('call,exc,msg', BAD)
def test_bad_conv_input_is_named(fn, call, exc, msg):
    with pytest.raises(exc, match=msg.replace('(', r'\(').replace(')', r'\)')): call(fn)

@pytest.mark.parametrize('call,exc,msg', [
    (lambda: conv_matrix(torch.randn(3, 3), 5), ValueError, 'weight must be 4-D'),
    (lambda: conv_matrix(torch.randn(1, 1, 3, 3), 2), ValueError, 'kernel spans 3 pixels'),
    (lambda: conv_matrix(torch.randn(1, 1, 3, 3), 5, stride=0), ValueError, 'stride must be >= 1'),
    (lambda: conv_matrix(torch.randn(1, 1, 3, 3), 0), ValueError, 'in_size must be >= 1'),
    (lambda: apply_kernel(torch.rand(5, 5), 2, 2, torch.ones(2, 2)), ValueError, 'odd size'),
    (lambda: apply_kernel(torch.rand(5, 5), 2, 2, torch.ones(3, 1)), ValueError, 'square'),
    (lambda: apply_kernel(torch.rand(5, 5), 2, 2, torch.ones(3)), ValueError, 'kernel must be 2-D'),
    (lambda: apply_kernel(torch.rand(1, 5, 5), 2, 2, torch.ones(3, 3)), ValueError, 'img must be 2-D'),
    (lambda: apply_kernel(torch.rand(5, 5), 4, 2, torch.ones(3, 3)), ValueError, 'row must be in'),
    (lambda: apply_kernel(torch.rand(5, 5), 2, 2, [[1, 2, 3]]), TypeError, 'kernel must be a torch.Tensor'),
    (lambda: filter_image(torch.rand(2, 3, 5, 5), KERNELS['blur']), ValueError, 'img must be'),
    (lambda: filter_image(torch.ones(5, 5, dtype=torch.uint8), KERNELS['blur']), TypeError, 'float tensor'),
    (lambda: filter_image(torch.rand(5, 5), KERNELS['blur'], 'mirror'), ValueError, 'padding_mode must be one of'),
    (lambda: check_kernel('nope', torch.ones(3, 3)), ValueError, 'name must be one of'),
])
def test_bad_input_other_functions(call, exc, msg):
    with pytest.raises(exc, match=msg): call()

def test_kernel_explorer_static_and_widgets(capsys):
    import matplotlib; matplotlib.use('Agg')
    from coursekit.kernels import kernel_explorer
    fig = kernel_explorer(preset='sobel_x', step=True, row=10, col=12, static=True)
    assert len(fig.axes) >= 4  # kernel, input, output, window products (with colour bars)
    ui = kernel_explorer(preset='blur', static=False)  # builds the widgets even where they can't be displayed
    assert type(ui).__name__ == 'VBox'
    with pytest.raises(ValueError, match='preset must be one of'): kernel_explorer(preset='nope')

def test_filter_image_small_images_with_copying_padding():
    k5 = torch.ones(5, 5) / 25
    with pytest.raises(ValueError, match='reflect padding of 2 pixels needs an image of at least 3'): filter_image(torch.rand(2, 6), k5, 'reflect')
    with pytest.raises(ValueError, match='circular padding of 2 pixels'): filter_image(torch.rand(1, 6), k5, 'circular')
    assert filter_image(torch.rand(2, 6), k5, 'replicate').shape == (2, 6)
    assert filter_image(torch.rand(3, 6), k5, 'reflect').shape == (3, 6)

def test_kernel_explorer_redraws_once_per_user_action():
    import matplotlib; matplotlib.use('Agg')
    from coursekit.kernels import kernel_explorer
    ui = kernel_explorer(preset='blur', static=False)
    presets, pad, stride = ui.children[0].children
    n = ui.state['redraws']
    presets.value = 'top_edge'  # nine kernel cells change: one redraw, not nine
    assert ui.state['redraws'] == n + 1
    pad.value = 'reflect'; assert ui.state['redraws'] == n + 2
    assert not stride.continuous_update and not any(s.continuous_update for s in ui.children[2].children[1:])

def test_exercise_checkers_say_what_is_wrong(capsys):
    from coursekit.kernels import check_apply_kernel, grade_colour_response
    assert check_kernel('right_edge', [[0, 1, -1]] * 3) and capsys.readouterr().out == 'right_edge: correct!\n'
    assert not check_kernel('right_edge', KERNELS['left_edge'])
    assert capsys.readouterr().out == 'right_edge: mirrored left-right: reverse the order of the columns\n'
    assert not check_kernel('right_edge', torch.zeros(2, 3))
    assert 'wrong shape: expected (3, 3), got (2, 3)' in capsys.readouterr().out
    assert check_apply_kernel(apply_kernel) and capsys.readouterr().out == 'apply_kernel: correct!\n'
    assert not check_apply_kernel(lambda img, r, c, k: (img[c-1:c+2, r-1:r+2] * k).sum())
    assert 'row and col are swapped' in capsys.readouterr().out
    assert not check_apply_kernel(lambda img, r, c, k: img[r-1:r+2, c-1:c+2] * k)  # the window, not its sum
    assert 'one number (a sum), got shape (3, 3)' in capsys.readouterr().out
    right = lambda img, k: sum(F.conv2d(img[None, c:c+1], k[None, c:c+1])[0, 0] for c in range(3))
    assert grade_colour_response(right) and capsys.readouterr().out == 'colour_response: correct!\n'
    for wrong, words in [(lambda img, k: right(img, k) / 3, 'the channels are averaged'),
                         (lambda img, k: right(img, k[:1].expand(3, -1, -1)), 'first layer of the kernel'),
                         (lambda img, k: right(img, k.flip(0)), 'reverse order'),
                         (lambda img, k: right(img, k.flip(1, 2)), 'the kernel is flipped'),
                         (lambda img, k: right(img, k) + 1, 'wrong values at positions'),
                         (lambda img, k: F.conv2d(img[None], k[:, None], groups=3)[0], 'one map per channel'),
                         (lambda img, k: F.conv2d(img[None], k[None], padding=1)[0, 0], 'wrong shape: expected (4, 5), got (6, 7)')]:
        assert not grade_colour_response(wrong)
        out = capsys.readouterr().out
        assert out.startswith('colour_response(img (3, 6, 7), kernel (3, 3, 3)): ') and words in out, out
    assert not grade_colour_response(lambda img, k: right(img, k[:, :3, :3]))  # right for 3x3 kernels only
    assert 'kernel (3, 5, 5)' in capsys.readouterr().out
