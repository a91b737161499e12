"""The backward passes of coursekit.backward: `gradcheck` in float64 and PyTorch's own gradients on random shapes
(hypothesis) and on listed corner cases; ScratchConv2d against nn.Conv2d; the CNN trained on it; the exercise checkers."""
import contextlib, io, math
import pytest, torch
import torch.nn as nn
import torch.nn.functional as F
from torch.autograd import gradcheck
from hypothesis import given, settings, strategies as st
from fastai.callback.core import Callback, CancelFitException
from coursekit.backward import (conv2d_scratch, conv_weight_grad, conv_bias_grad, conv_input_grad, max_pool2d_scratch,
                                avg_pool2d_scratch, relu_scratch, ScratchConv2d, scratch_copy, BatchLosses,
                                check_weight_grad, check_bias_grad, check_input_grad, check_max_pool_grad)
from coursekit.cnn import simple_cnn, train_cnn

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")  # F.conv2d's, the reference

# how many random configurations hypothesis draws for each backward pass; each one is checked by gradcheck
N_CONV, N_POOL, N_RELU = 150, 50, 20

def grads(out, inputs, g):
    return torch.autograd.grad(out, inputs, g)

def close(a, b): return a.shape == b.shape and torch.allclose(a, b, rtol=1e-9, atol=1e-12)

def unreached(size, kernel_size, stride, padding, dilation):
    "Mask (H, W) of the input pixels no window of the convolution reads."
    ones = torch.ones(1, 1, *size, dtype=torch.float64)
    kw = dict(stride=stride, padding=padding, dilation=dilation)
    return F.fold(F.unfold(ones, kernel_size, **kw), size, kernel_size, **kw)[0, 0] == 0

def check_conv(x, w, b, **kw):
    "gradcheck, then PyTorch's outputs and gradients, then zero gradient for the pixels no window reads."
    inputs = tuple(t for t in (x, w, b) if t is not None)
    f = lambda *t: conv2d_scratch(*t, **kw) if b is not None else conv2d_scratch(*t, None, **kw)
    assert gradcheck(f, inputs), kw
    ours, ref = f(*inputs), F.conv2d(x, w, b, **kw)
    assert ours.shape == ref.shape and close(ours, ref), kw
    g = torch.randn_like(ref)
    got = grads(ours, inputs, g)
    for a, c in zip(got, grads(ref, inputs, g)): assert close(a, c), kw
    if not isinstance(kw.get('padding', 0), str):
        pair = lambda v: (v, v) if isinstance(v, int) else v
        mask = unreached(x.shape[2:], w.shape[2:], *(pair(kw.get(k, d)) for k, d in
                                                       [('stride', 1), ('padding', 0), ('dilation', 1)]))
        assert (got[0][:, :, mask] == 0).all(), kw

pair = lambda lo, hi: st.tuples(st.integers(lo, hi), st.integers(lo, hi))
as_arg = lambda v: v[0] if v[0] == v[1] else v  # an int where both are equal: both forms get tested

@st.composite
def conv_case(draw):
    G = draw(st.sampled_from([1, 1, 2, 3]))
    C_in, C_out, N = G * draw(st.integers(1, 2)), G * draw(st.integers(1, 2)), draw(st.integers(1, 2))
    k, s, p, d = draw(pair(1, 3)), draw(pair(1, 3)), draw(pair(0, 2)), draw(pair(1, 2))
    H, W = [draw(st.integers(max(1, d_ * (k_ - 1) + 1 - 2 * p_), 8)) for k_, p_, d_ in zip(k, p, d)]
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**31)))
    t = lambda *shape: torch.randn(*shape, generator=g, dtype=torch.float64, requires_grad=True)
    b = t(C_out) if draw(st.booleans()) else None
    return t(N, C_in, H, W), t(C_out, C_in // G, *k), b, dict(stride=as_arg(s), padding=as_arg(p), dilation=as_arg(d),
                                                             groups=G)

@settings(max_examples=N_CONV, deadline=None)
@given(conv_case())
def test_conv_backward_on_random_shapes(case):
    x, w, b, kw = case
    check_conv(x, w, b, **kw)

LISTED = {  # name: (x shape, weight shape, bias?, keyword arguments)
    '8x8 stride 2: row and column 7 unreached': ((2, 2, 8, 8), (3, 2, 3, 3), True, dict(stride=2)),
    '1x1 kernel stride 3: gaps between the rows read': ((1, 2, 9, 7), (2, 2, 1, 1), True, dict(stride=(3, 2))),
    'stride 3 on 8 rows, padding, dilation, groups': ((2, 4, 8, 7), (6, 2, 2, 3), True,
                                                     dict(stride=(3, 2), padding=(0, 1), dilation=(2, 1), groups=2)),
    'dilation 2, stride 2, padding 1': ((2, 3, 9, 9), (4, 3, 3, 3), False, dict(stride=2, padding=1, dilation=2)),
    'depthwise': ((2, 4, 7, 7), (4, 1, 3, 3), True, dict(padding=1, groups=4)),
    'groups 3, rectangular everything': ((1, 6, 7, 9), (3, 2, 2, 3), True,
                                         dict(stride=(2, 3), padding=(1, 0), dilation=(1, 2), groups=3)),
    "'same' with an even kernel": ((2, 3, 6, 5), (2, 3, 2, 4), True, dict(padding='same')),
    "'same', dilation 2": ((1, 2, 7, 7), (2, 2, 4, 3), True, dict(padding='same', dilation=2)),
    "'valid'": ((1, 2, 6, 6), (3, 2, 3, 3), True, dict(padding='valid', stride=2)),
    '1x1 input, padding 1': ((2, 2, 1, 1), (3, 2, 3, 3), True, dict(padding=1)),
    'kernel as large as the padded input': ((1, 1, 3, 2), (1, 1, 5, 4), True, dict(padding=1)),
}

@pytest.mark.parametrize('name', LISTED)
def test_conv_backward_on_listed_cases(name):
    xs, ws, bias, kw = LISTED[name]
    g = torch.Generator().manual_seed(len(name))
    t = lambda *shape: torch.randn(*shape, generator=g, dtype=torch.float64, requires_grad=True)
    check_conv(t(*xs), t(*ws), t(ws[0]) if bias else None, **kw)

def test_unreached_pixels_are_found():
    "The mask the tests rely on: an 8x8 input at stride 2 misses row and column 7; a 1x1 kernel at stride 3 skips rows."
    m = unreached((8, 8), (3, 3), (2, 2), (0, 0), (1, 1))
    assert m[7].all() and m[:, 7].all() and not m[:7, :7].any()
    assert unreached((9, 7), (1, 1), (3, 2), (0, 0), (1, 1))[:, 0].tolist() == [False, True, True] * 3

def test_three_gradients_directly():
    "The three exported gradients against autograd's, with a stride that does not divide and 2 groups."
    g_ = torch.Generator().manual_seed(0)
    x, w, b = (torch.randn(*s, generator=g_, dtype=torch.float64, requires_grad=True)
               for s in [(2, 4, 8, 7), (6, 2, 3, 2), (6,)])
    kw = dict(stride=(3, 2), padding=(1, 0), dilation=(1, 2), groups=2)
    out = F.conv2d(x, w, b, **kw)
    g = torch.randn_like(out)
    gx, gw, gb = grads(out, (x, w, b), g)
    assert close(conv_input_grad(g, w, (8, 7), **kw), gx)
    assert close(conv_weight_grad(x, g, (3, 2), **kw), gw)
    assert close(conv_bias_grad(g), gb)

def test_input_gradient_is_the_transposed_convolution():
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    w = torch.randn(4, 3, 3, 3, dtype=torch.float64)
    g = torch.randn(2, 4, 4, 4, dtype=torch.float64)
    assert close(conv_input_grad(g, w, x.shape[2:], stride=2, padding=1),
                 F.conv_transpose2d(g, w, stride=2, padding=1, output_padding=1))

@st.composite
def pool_case(draw):
    k = draw(pair(1, 3))
    s = draw(st.one_of(st.none(), pair(1, 3)))
    p = (draw(st.integers(0, k[0] // 2)), draw(st.integers(0, k[1] // 2)))
    H, W = [draw(st.integers(max(1, k_ - 2 * p_), 9)) for k_, p_ in zip(k, p)]
    N, C = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    seed = draw(st.integers(0, 2**31))
    return (N, C, H, W), as_arg(k), None if s is None else as_arg(s), as_arg(p), seed

def check_pool(ours, theirs, case):
    shape, k, s, p, seed = case
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=g, dtype=torch.float64, requires_grad=True)
    assert gradcheck(lambda t: ours(t, k, s, p), (x,)), case
    ties = torch.randint(0, 3, shape, generator=g).double().requires_grad_()  # small integers: many ties
    for t in (x, ties):
        a, b = ours(t, k, s, p), theirs(t, k, s, p)
        assert a.shape == b.shape and close(a, b), case
        go = torch.randn(b.shape, generator=g, dtype=torch.float64)
        assert close(grads(a, t, go)[0], grads(b, t, go)[0]), case

@settings(max_examples=N_POOL, deadline=None)
@given(pool_case())
def test_max_pool_backward_on_random_shapes_with_ties(case):
    check_pool(max_pool2d_scratch, F.max_pool2d, case)

@settings(max_examples=N_POOL, deadline=None)
@given(pool_case())
def test_avg_pool_backward_on_random_shapes(case):
    check_pool(avg_pool2d_scratch, F.avg_pool2d, case)

@settings(max_examples=N_RELU, deadline=None)
@given(st.lists(st.integers(1, 5), min_size=1, max_size=4), st.integers(0, 2**31))
def test_relu_backward(shape, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=g, dtype=torch.float64, requires_grad=True)
    assert gradcheck(relu_scratch, (x,))
    z = x.detach().clone(); z.view(-1)[::2] = 0  # exact zeros: PyTorch's gradient there is 0, and ours
    z.requires_grad_()
    go = torch.randn(shape, generator=g, dtype=torch.float64)
    assert torch.equal(relu_scratch(z), F.relu(z)) and torch.equal(grads(relu_scratch(z), z, go)[0], grads(F.relu(z), z, go)[0])

def test_at_least_200_gradchecks():
    assert N_CONV + len(LISTED) + 2 * N_POOL + N_RELU >= 200

def test_float32_and_no_grad():
    x, w = torch.randn(2, 3, 9, 9), torch.randn(4, 3, 3, 3, requires_grad=True)
    assert torch.allclose(conv2d_scratch(x, w, stride=2), F.conv2d(x, w, stride=2), atol=1e-5)
    with torch.no_grad(): assert conv2d_scratch(x, w).grad_fn is None
    out = conv2d_scratch(x, w)  # x needs no gradient: only the weights get one
    out.sum().backward()
    assert x.grad is None and w.grad is not None

# ---------------- ScratchConv2d against nn.Conv2d ----------------

CONFIGS = [((4, 6, 3), dict(stride=2, padding=1, groups=2)), ((3, 5, (2, 3)), dict(bias=False, dilation=(1, 2))),
           ((2, 2, 4), dict(padding='same')), ((1, 4, 3), dict(padding='valid')), ((3, 3, 1), {}),
           ((6, 6, 5), dict(stride=(1, 2), padding=(2, 1), groups=3))]

@pytest.mark.parametrize('args,kw', CONFIGS)
def test_scratch_conv2d_is_nn_conv2d(args, kw):
    torch.manual_seed(0); theirs = nn.Conv2d(*args, **kw)
    torch.manual_seed(0); ours = ScratchConv2d(*args, **kw)
    assert [(n, p.shape) for n, p in ours.named_parameters()] == [(n, p.shape) for n, p in theirs.named_parameters()]
    assert all(torch.equal(a, b) for a, b in zip(ours.parameters(), theirs.parameters()))  # the same initialisation
    assert repr(ours) == 'Scratch' + repr(theirs)
    assert (ours.kernel_size, ours.stride, ours.padding, ours.dilation, ours.groups) == \
           (theirs.kernel_size, theirs.stride, theirs.padding, theirs.dilation, theirs.groups)
    torch.manual_seed(1); other = nn.Conv2d(*args, **kw)
    ours.load_state_dict(other.state_dict())  # nn.Conv2d -> ScratchConv2d
    torch.manual_seed(2); ours.reset_parameters()
    theirs.load_state_dict(ours.state_dict())  # ScratchConv2d -> nn.Conv2d
    assert ours.state_dict().keys() == theirs.state_dict().keys()
    x = torch.randn(2, args[0], 9, 8, requires_grad=True)
    a, b = ours(x), theirs(x)
    assert torch.allclose(a, b, atol=1e-5)
    g = torch.randn_like(a)
    for u, v in zip(grads(a, [x, *ours.parameters()], g), grads(b, [x, *theirs.parameters()], g)):
        assert torch.allclose(u, v, atol=1e-4)

def test_scratch_conv2d_device_and_dtype():
    m = ScratchConv2d(2, 3, 3, dtype=torch.float64)
    assert m.weight.dtype == torch.float64 and m.bias.dtype == torch.float64
    assert ScratchConv2d(2, 3, 3, device='meta').weight.is_meta

@pytest.mark.parametrize('mode', ['reflect', 'replicate', 'circular', 'mirror'])
def test_other_padding_modes_are_refused(mode):
    with pytest.raises(ValueError, match="ScratchConv2d: padding_mode must be 'zeros'"): ScratchConv2d(1, 2, 3, padding_mode=mode)
    with pytest.raises(ValueError, match="padding_mode must be 'zeros'"):  # raised by the twin ScratchConv2d
        scratch_copy(nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, padding_mode='reflect' if mode == 'mirror' else mode)))

def test_scratch_copy():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Sequential(nn.Conv2d(4, 2, 3, stride=2, bias=False)),
                          nn.Flatten())
    state = torch.get_rng_state()
    copy_ = scratch_copy(model)
    assert torch.equal(torch.get_rng_state(), state)  # no random numbers drawn
    assert [type(m).__name__ for m in model.modules()].count('Conv2d') == 2  # the model is left as it was
    assert sum(isinstance(m, ScratchConv2d) for m in copy_.modules()) == 2
    assert not any(isinstance(m, nn.Conv2d) for m in copy_.modules())
    x = torch.randn(3, 1, 12, 12)
    assert torch.allclose(copy_(x), model(x), atol=1e-6)
    assert isinstance(scratch_copy(nn.Conv2d(2, 2, 3)), ScratchConv2d)
    assert copy_[0].weight.data_ptr() != model[0].weight.data_ptr()  # a copy, not shared

def test_scratch_copy_of_simple_cnn_on_float64():
    m = simple_cnn().double()
    s = scratch_copy(m)
    x = torch.rand(2, 1, 28, 28, dtype=torch.float64)
    assert s[0][0].weight.dtype == torch.float64 and close(s(x), m(x))

# ---------------- the CNN trained on it ----------------

class StopAfter(Callback):
    "Cancel the fit after `n` training batches."
    order = 99
    def __init__(self, n): self.n, self.seen = n, 0
    def after_batch(self):
        if not self.training: return
        self.seen += 1
        if self.seen >= self.n: raise CancelFitException()

def test_the_first_20_steps_take_the_same_losses():
    losses = {}
    for name, make in [('torch', simple_cnn), ('scratch', lambda: scratch_copy(simple_cnn()))]:
        rec = BatchLosses()
        learn = train_cnn('mnist_sample', 1, 0.01, model=make, cbs=[rec, StopAfter(20)], device='cpu', progress=False)
        losses[name] = rec.losses
        assert (name == 'scratch') == any(isinstance(m, ScratchConv2d) for m in learn.model.modules())
    assert len(losses['torch']) == len(losses['scratch']) == 20
    assert max(abs(a - b) for a, b in zip(losses['torch'], losses['scratch'])) < 1e-5, losses
    assert losses['torch'][-1] < losses['torch'][0]  # it learns

def test_batch_losses_records_training_batches_only():
    rec = BatchLosses()
    learn = train_cnn('mnist_sample', 1, 0.01, cbs=[rec, StopAfter(3)], device='cpu', progress=False)
    assert len(rec.losses) == 3 and all(isinstance(v, float) and math.isfinite(v) for v in rec.losses)
    learn.validate()
    assert len(rec.losses) == 3  # validate() announces a fit but trains nothing: the list is kept
    train_cnn('mnist_sample', 1, 0.01, cbs=[rec, StopAfter(2)], device='cpu', progress=False)
    assert len(rec.losses) == 2  # a new fit that trains starts a new list

# ---------------- bad input: clear errors ----------------

X, W = torch.randn(2, 3, 7, 6), torch.randn(4, 3, 3, 2)
BAD = {  # name: (call, exception type, words the message must contain)
    'conv 3-D x': (lambda: conv2d_scratch(X[0], W), ValueError, 'conv2d_scratch: x must be 4-D'),
    'conv int x': (lambda: conv2d_scratch(X.long(), W), TypeError, 'conv2d_scratch: x must be a float tensor'),
    'conv weight list': (lambda: conv2d_scratch(X, [[1.]]), TypeError, 'conv2d_scratch: weight must be a torch.Tensor'),
    'conv bias shape': (lambda: conv2d_scratch(X, W, torch.zeros(3)), ValueError, 'bias must be None or a torch.float32 tensor of shape (4,)'),
    'conv bias dtype': (lambda: conv2d_scratch(X, W, torch.zeros(4).double()), ValueError, 'torch.float32 tensor'),
    'conv channels': (lambda: conv2d_scratch(X, W[:, :2]), ValueError, 'needs 2 input channels'),
    'conv groups 0': (lambda: conv2d_scratch(X, W, groups=0), ValueError, 'groups must be >= 1'),
    'conv groups float': (lambda: conv2d_scratch(X, W, groups=1.5), TypeError, 'groups must be an int'),
    'conv stride 0': (lambda: conv2d_scratch(X, W, stride=0), ValueError, 'conv2d_scratch: stride must be >= 1'),
    'conv padding -1': (lambda: conv2d_scratch(X, W, padding=-1), ValueError, 'padding must be >= 0'),
    'conv padding word': (lambda: conv2d_scratch(X, W, padding='full'), ValueError, "'valid' or 'same'"),
    'conv same stride 2': (lambda: conv2d_scratch(X, W, stride=2, padding='same'), ValueError, "'same' at stride 1 only"),
    'conv kernel too big': (lambda: conv2d_scratch(X, torch.randn(4, 3, 9, 2)), ValueError,
                            'conv2d_scratch: the kernel spans 9 pixels'),
    'weight grad x 3-D': (lambda: conv_weight_grad(X[0], X, 3), ValueError, 'conv_weight_grad: x must be 4-D'),
    'input grad list': (lambda: conv_input_grad([1.], W, (7, 6)), TypeError, 'conv_input_grad: grad_out must be a torch.Tensor'),
    'bias grad int': (lambda: conv_bias_grad(X.long()), TypeError, 'conv_bias_grad: grad_out must be a float tensor'),
    'max pool padding': (lambda: max_pool2d_scratch(X, 2, padding=2), ValueError,
                         'max_pool2d_scratch: padding must be at most half the window'),
    'avg pool too big': (lambda: avg_pool2d_scratch(X, 8), ValueError, 'avg_pool2d_scratch: the window spans 8 pixels'),
    'avg pool stride 0': (lambda: avg_pool2d_scratch(X, 2, 0), ValueError, 'stride must be >= 1'),
    'max pool kernel pair': (lambda: max_pool2d_scratch(X, (2, 2, 2)), TypeError, 'kernel_size must be an int or a pair'),
    'relu list': (lambda: relu_scratch([1., -1.]), TypeError, 'relu_scratch: x must be a torch.Tensor'),
    'layer channels 0': (lambda: ScratchConv2d(0, 4, 3), ValueError, 'ScratchConv2d: in_channels must be >= 1'),
    'layer groups': (lambda: ScratchConv2d(4, 6, 3, groups=4), ValueError, 'must be divisible by groups (4)'),
    'layer kernel 0': (lambda: ScratchConv2d(1, 1, 0), ValueError, 'kernel_size must be >= 1'),
    'layer same stride 2': (lambda: ScratchConv2d(1, 1, 3, stride=2, padding='same'), ValueError, "'same' at stride 1 only"),
    'layer wrong input': (lambda: ScratchConv2d(3, 4, 3)(torch.randn(2, 1, 8, 8)), ValueError, 'needs 3 input channels'),
    'copy not a model': (lambda: scratch_copy('model'), TypeError, 'scratch_copy: model must be an nn.Module'),
}

@pytest.mark.parametrize('name', BAD)
def test_bad_input_gets_a_clear_error(name):
    call, exc, words = BAD[name]
    with pytest.raises(exc) as e: call()
    assert words in str(e.value), str(e.value)

# ---------------- the exercise checkers ----------------

def run(checker, fn):
    with contextlib.redirect_stdout(io.StringIO()) as out: ok = checker(fn)
    return ok, out.getvalue().strip()

def right_weight_grad(x, g, ks): return (g.flatten(2) @ F.unfold(x, ks).transpose(1, 2)).sum(0).view(g.shape[1], x.shape[1], ks, ks)
def right_input_grad(g, w): return F.conv2d(F.pad(g, (w.shape[-1] - 1,) * 4), w.transpose(0, 1).flip(-1, -2))
def right_pool_grad(x, g):
    wins = F.unfold(x, 2, stride=2).unflatten(1, (x.shape[1], 4))
    back = torch.zeros_like(wins).scatter(2, wins.argmax(2, keepdim=True), g.flatten(2)[:, :, None])
    return F.fold(back.flatten(1, 2), x.shape[2:], 2, stride=2)

CHECKERS = {  # checker: (a right answer, [(a wrong answer, words its message must contain), ...])
    check_weight_grad: (right_weight_grad, [
        (lambda x, g, ks: -right_weight_grad(x, g, ks), 'the sign is flipped'),
        (lambda x, g, ks: right_weight_grad(x, g, ks).transpose(0, 1), 'C_out and C_in are swapped'),
        (lambda x, g, ks: right_weight_grad(x, g, ks).flip(-1, -2), 'rotated by 180 degrees'),
        (lambda x, g, ks: right_weight_grad(x, g, ks).flip(-1), 'flipped along one axis'),
        (lambda x, g, ks: right_weight_grad(x, g, ks).transpose(-1, -2), 'kh and kw are swapped'),
        (lambda x, g, ks: right_weight_grad(x, g, ks) / x.shape[0], 'averaged over the batch (1/4'),
        (lambda x, g, ks: right_weight_grad(x, g, ks).flatten(1), 'wrong shape (3, 18): reshape to (3, 2, 3, 3)'),
        (lambda x, g, ks: right_weight_grad(x, g, ks)[..., :2], 'wrong shape: expected (3, 2, 3, 3), got (3, 2, 3, 2)'),
        (lambda x, g, ks: right_weight_grad(x, g, ks) + 1, 'wrong values at positions'),
        (lambda x, g, ks: 1 / 0, 'raised ZeroDivisionError')]),
    check_bias_grad: (lambda g: g.sum((0, 2, 3)), [
        (lambda g: g.mean((0, 2, 3)), 'averaged instead of summed (1/120'),
        (lambda g: g.sum((2, 3)), 'one gradient per image, (4, 3)'),
        (lambda g: g.sum(0), 'summed over the batch only'),
        (lambda g: g.sum(), 'summed over the channels too'),
        (lambda g: g.sum((0, 2)), 'wrong shape: expected (3,), got (3, 6)'),
        (lambda g: g.sum((0, 2, 3)).flip(0), 'wrong values at positions [(0,), (2,)]')]),
    check_input_grad: (right_input_grad, [
        (lambda g, w: F.conv2d(F.pad(g, (w.shape[-1] - 1,) * 4), w.transpose(0, 1)), 'the kernel is not flipped'),
        (lambda g, w: F.conv2d(F.pad(g, (w.shape[-1] - 1,) * 4), w.transpose(0, 1).flip(-2)), 'one axis only'),
        (lambda g, w: F.conv2d(g, w.transpose(0, 1).flip(-1, -2), padding=1), 'pad grad_out by k-1 = 2'),
        (lambda g, w: 2 * right_input_grad(g, w), 'scaled by 2')]),
    check_max_pool_grad: (right_pool_grad, [
        (lambda x, g: F.interpolate(g, scale_factor=2) / 4, 'spread evenly over the window'),
        (lambda x, g: F.interpolate(g, scale_factor=2), 'copied to all 4 pixels of the window'),
        (lambda x, g: right_pool_grad(-x, g), 'wrong values'),
        (lambda x, g: g, 'wrong shape: expected (2, 3, 6, 6), got (2, 3, 3, 3)')]),
}

@pytest.mark.parametrize('checker', CHECKERS, ids=lambda c: c.__name__)
def test_checkers_say_what_is_wrong(checker):
    right, wrongs = CHECKERS[checker]
    ok, msg = run(checker, right)
    assert ok and msg.endswith(': correct!'), msg
    for fn, words in wrongs:
        ok, msg = run(checker, fn)
        assert not ok and words in msg, (words, msg)
        assert '\n' not in msg  # one line: the first mistake only

def test_max_pool_checker_knows_the_tie_rules():
    def to_all(x, g):
        wins = F.unfold(x, 2, stride=2).unflatten(1, (x.shape[1], 4))
        return F.fold((g.flatten(2)[:, :, None] * (wins == wins.amax(2, keepdim=True))).flatten(1, 2), x.shape[2:], 2, stride=2)
    def to_last(x, g):
        wins = F.unfold(x, 2, stride=2).unflatten(1, (x.shape[1], 4))
        last = 3 - wins.flip(2).argmax(2, keepdim=True)
        return F.fold(torch.zeros_like(wins).scatter(2, last, g.flatten(2)[:, :, None]).flatten(1, 2), x.shape[2:], 2, stride=2)
    assert 'every tied maximum' in run(check_max_pool_grad, to_all)[1]
    assert 'the last tied maximum' in run(check_max_pool_grad, to_last)[1]

# ---------------- on a GPU ----------------

@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU')
def test_on_the_gpu():
    x = torch.randn(4, 4, 9, 8, device='cuda', dtype=torch.float64, requires_grad=True)
    w = torch.randn(6, 2, 3, 3, device='cuda', dtype=torch.float64, requires_grad=True)
    assert gradcheck(lambda a, b: conv2d_scratch(a, b, stride=2, padding=1, groups=2), (x, w))
    t = torch.randint(0, 3, (2, 3, 9, 8), device='cuda').double().requires_grad_()
    g = torch.randn(2, 3, 5, 4, device='cuda', dtype=torch.float64)
    assert torch.equal(grads(max_pool2d_scratch(t, 3, 2, 1), t, g)[0], grads(F.max_pool2d(t, 3, 2, 1), t, g)[0])
    m = scratch_copy(simple_cnn()).cuda()
    assert m(torch.rand(2, 1, 28, 28, device='cuda')).shape == (2, 2)
