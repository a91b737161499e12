"Grad-CAM and CAM against independent references, and the no-side-effects contract, point by point."
import pytest, torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st
from torchvision.models import resnet18, resnet34, resnet50
from coursekit.cam import (grad_cam, class_activation_map, mean_activation_map, show_heatmap, CAMResult,
                           reference_grad_cam, reference_grad_cam_resnet, grade_cam_map, grade_gradcam_weights)
from coursekit.hooks import count_hooks

torch.manual_seed(0)

def small_cnn(inplace=True):
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(inplace=inplace), nn.Conv2d(8, 16, 3, stride=2, padding=1),
                         nn.BatchNorm2d(16), nn.ReLU(inplace=inplace), nn.Dropout(0.5), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 5))

def close(a, b, tol=1e-5): return (a - b).abs().max().item() <= tol * max(1.0, b.abs().max().item())

@settings(max_examples=25, deadline=None)
@given(st.integers(1, 3), st.integers(6, 20), st.integers(6, 20), st.integers(0, 10_000))
def test_matches_reference_on_random_shapes(n, h, w, seed):
    g = torch.Generator().manual_seed(seed)
    m = small_cnn()
    for p in m.parameters(): p.data = torch.randn(p.shape, generator=g) * 0.5
    x = torch.randn(n, 3, h, w, generator=g)
    t = torch.randint(0, 5, (n,), generator=g)
    res = grad_cam(m, x, m[0], targets=t.tolist())
    raw = reference_grad_cam(m, x, 0, t)
    assert close(res.raw, raw)
    assert torch.equal(res.map, raw.clamp_min(0).float()) or close(res.map, raw.clamp_min(0))
    assert res.acts.shape == (n, 8, h, w) and res.scores.shape == (n,) and torch.equal(res.targets, t)

def test_inplace_relu_after_target():
    m = small_cnn(inplace=True); x = torch.randn(4, 3, 16, 16)
    for k, layer in [(0, m[0]), (3, m[3])]:  # conv -> ReLU(inplace); bn -> ReLU(inplace)
        raw = reference_grad_cam(m, x, k, torch.tensor([1, 2, 3, 4]))
        assert close(grad_cam(m, x, layer, targets=[1, 2, 3, 4]).raw, raw)

@pytest.mark.parametrize('arch', [resnet18, resnet34, resnet50])
def test_resnet_bn2_overwritten_in_place(arch):
    m = arch().eval(); x = torch.randn(2, 3, 96, 128)
    last_bn = m.layer4[-1].bn3 if hasattr(m.layer4[-1], 'bn3') else m.layer4[-1].bn2  # the tensor the residual += overwrites
    res = grad_cam(m, x, last_bn, targets=[3, 9])
    ref = reference_grad_cam_resnet(m, x, torch.tensor([3, 9]))
    assert close(res.raw, ref)

@pytest.mark.parametrize('arch', [resnet18, resnet50])
def test_gradcam_equals_relu_cam_over_hw_for_gap_linear(arch):
    m = arch().eval(); x = torch.randn(3, 3, 64, 96)
    g = grad_cam(m, x, m.layer4); c = class_activation_map(m, x, m.layer4, m.fc)
    h, w = g.acts.shape[2:]
    assert torch.equal(g.targets, c.targets)
    assert close(g.map, c.map / (h * w)) and close(g.raw, c.raw / (h * w))
    # CAM itself against a hand computation with the classifier's weights
    with torch.no_grad(): a = m.layer4(m.layer3(m.layer2(m.layer1(m.maxpool(m.relu(m.bn1(m.conv1(x))))))))
    assert close(c.raw, torch.einsum('nc,nchw->nhw', m.fc.weight[c.targets], a))

def test_mean_activation_map():
    m = small_cnn(); x = torch.randn(2, 3, 10, 10)
    with torch.no_grad(): a = m.eval()[:1](x)
    assert close(mean_activation_map(m, x, m[0]), a.mean(1))

def test_targets_forms():
    m = resnet18().eval(); x = torch.randn(3, 3, 64, 64)
    pred = grad_cam(m, x, 'layer4')
    with torch.no_grad(): assert torch.equal(pred.targets, m(x).argmax(1))
    assert grad_cam(m, x, 'layer4', targets=5).targets.tolist() == [5, 5, 5]
    assert grad_cam(m, x, 'layer4', targets=torch.tensor([1, 2, 3])).targets.tolist() == [1, 2, 3]
    with pytest.raises(ValueError, match='targets has 2 entries but the batch has 3'): grad_cam(m, x, 'layer4', targets=[1, 2])
    with pytest.raises(ValueError, match=r'class indices in \[0, 999\]'): grad_cam(m, x, 'layer4', targets=1000)
    with pytest.raises(TypeError, match='targets must be'): grad_cam(m, x, 'layer4', targets=[0.5, 1.0, 2.0])

def test_modes_restored_and_grad_untouched():
    m = small_cnn(); m.train(); m[3].eval(); m[5].train()
    modes = [x.training for x in m.modules()]
    for p in m.parameters(): p.grad = torch.full_like(p, 0.25)
    x = torch.randn(2, 3, 12, 12)
    a = grad_cam(m, x, m[2], targets=[0, 1])
    assert [x.training for x in m.modules()] == modes
    assert all(torch.equal(p.grad, torch.full_like(p, 0.25)) for p in m.parameters())
    for p in m.parameters(): p.grad = None
    grad_cam(m, x, m[2], targets=[0, 1])
    assert all(p.grad is None for p in m.parameters())
    # eval mode inside: dropout off, so the result is deterministic and equals the reference
    assert close(a.raw, reference_grad_cam(m, x, 2, torch.tensor([0, 1])))
    m.train(); assert all(x.training for x in m.modules())

def test_works_in_no_grad_and_with_frozen_parameters():
    m = small_cnn(); x = torch.randn(2, 3, 12, 12)
    ref = grad_cam(m, x, m[0], targets=[1, 2]).raw
    with torch.no_grad():
        r = grad_cam(m, x, m[0], targets=[1, 2]).raw
        assert not torch.is_grad_enabled()
    assert close(r, ref)
    for p in m.parameters(): p.requires_grad_(False)
    assert close(grad_cam(m, x, m[0], targets=[1, 2]).raw, ref)
    with torch.inference_mode(False): pass

def test_no_hook_left_also_when_forward_raises():
    m = resnet18(); m.train()
    modes = [x.training for x in m.modules()]
    with pytest.raises(ValueError, match='takes 3 channels'): grad_cam(m, torch.randn(2, 1, 64, 64), m.layer4)
    def boom(x): raise RuntimeError('boom')
    m.layer3.forward = boom  # a forward that fails half-way, before the target layer
    with pytest.raises(RuntimeError, match='boom'): grad_cam(m, torch.randn(2, 3, 64, 64), m.layer4)
    assert count_hooks(m) == 0 and [x.training for x in m.modules()] == modes and torch.is_grad_enabled()
    with torch.no_grad():
        with pytest.raises(RuntimeError, match='boom'): grad_cam(m, torch.randn(2, 3, 64, 64), m.layer4)
        assert not torch.is_grad_enabled()
    del m.layer3.forward
    grad_cam(m, torch.randn(1, 3, 64, 64), m.layer4)
    assert count_hooks(m) == 0

def test_batch_equals_one_at_a_time():
    m = resnet18().eval(); x = torch.randn(4, 3, 64, 80)
    t = [1, 5, 7, 1]
    batch = grad_cam(m, x, m.layer3, targets=t)
    single = torch.cat([grad_cam(m, x[i:i + 1], m.layer3, targets=t[i]).raw for i in range(4)])
    assert close(batch.raw, single)

def test_upsampled_and_non_square():
    m = resnet18().eval(); x = torch.randn(2, 3, 96, 160)
    r = grad_cam(m, x, m.layer4)
    up = r.upsampled((96, 160))
    assert up.shape == (2, 96, 160) and up.min() >= 0 and up.max() <= 1
    ref = F.interpolate(r.map[:, None], size=(96, 160), mode='bilinear', align_corners=False)[:, 0]
    for i in range(2):
        if ref[i].max() > ref[i].min():
            assert close(up[i], (ref[i] - ref[i].min()) / (ref[i].max() - ref[i].min()))
    z = CAMResult(raw=-torch.ones(1, 3, 3), weights=torch.zeros(1, 1), acts=torch.zeros(1, 1, 3, 3), scores=torch.zeros(1),
                  targets=torch.zeros(1, dtype=torch.long), logits=torch.zeros(1, 2))
    assert torch.equal(z.upsampled(6), torch.zeros(1, 6, 6))  # an all-zero map stays zero (no division by zero)

def test_mixed_precision_autocast_cpu():
    m = resnet18().eval(); x = torch.randn(2, 3, 64, 64)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        r = grad_cam(m, x, m.layer4, targets=[1, 2])
    ref = grad_cam(m, x, m.layer4, targets=[1, 2])
    assert r.raw.dtype == torch.float32
    assert torch.corrcoef(torch.stack([r.raw.flatten(), ref.raw.flatten()]))[0, 1] > 0.98

@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a GPU')
def test_cuda_matches_cpu():
    m = resnet18().eval(); x = torch.randn(2, 3, 64, 64)
    cpu = grad_cam(m, x, m.layer4, targets=[1, 2]).raw
    gpu = grad_cam(m.cuda(), x.cuda(), m.layer4, targets=[1, 2]).raw.cpu()
    assert close(gpu, cpu, 1e-3)

@pytest.mark.parametrize('call,exc,msg', [
    (lambda m: grad_cam(m, torch.randn(3, 64, 64), m.layer4), ValueError, 'x must be a batch'),
    (lambda m: grad_cam(m, torch.zeros(1, 3, 64, 64, dtype=torch.uint8), m.layer4), TypeError, 'float tensor'),
    (lambda m: grad_cam(m, torch.randn(1, 3, 64, 64), 'layer9'), ValueError, "layer 'layer9' is not a module"),
    (lambda m: grad_cam(m, torch.randn(1, 3, 64, 64), nn.Conv2d(1, 1, 1)), ValueError, 'must be a module of the model'),
    (lambda m: grad_cam(m, torch.randn(1, 3, 64, 64), m.fc), ValueError, 'feature maps'),
    (lambda m: grad_cam(m, torch.randn(1, 3, 64, 64), m.layer1[0].relu), ValueError, 'called 2 times'),
    (lambda m: class_activation_map(m, torch.randn(1, 3, 64, 64), m.layer3, m.fc), ValueError, '256 channels but fc expects 512'),
    (lambda m: show_heatmap(torch.rand(3, 8, 8), torch.rand(1, 2, 2)), ValueError, 'heatmap must be a 2-D'),
])
def test_bad_input(call, exc, msg):
    m = resnet18().eval()
    with pytest.raises(exc, match=msg): call(m)
    assert count_hooks(m) == 0

def lite0_reference(m, x, targets, at):
    "Grad-CAM on timm's EfficientNet-Lite0 without hooks: the forward split by hand at `at` ('conv_head' or 'bn2')."
    with torch.no_grad():
        a = m.conv_head(m.blocks(m.bn1(m.conv_stem(x))))
        if at == 'bn2': a = m.bn2(a)
    a = a.clone().requires_grad_()
    rest = a * 1
    if at == 'conv_head': rest = m.bn2(rest)
    logits = m.classifier(m.global_pool(rest))
    g, = torch.autograd.grad(logits[torch.arange(len(x)), targets].sum(), a)
    return torch.einsum('nc,nchw->nhw', g.mean((2, 3)), a.detach())

@pytest.fixture(scope='module')
def lite0():
    from coursekit.data import sample_image
    from coursekit.imagenet import imagenet_classifier, imagenet_batch, imagenet_categories
    imgs = imagenet_batch([sample_image('cat'), sample_image('coffee')], normalize=False)
    return imagenet_classifier(), imgs, imagenet_batch, imagenet_categories()

@pytest.mark.parametrize('at', ['bn2', 'conv_head'])
def test_grad_cam_on_the_pretrained_network_equals_a_cloned_activation_reference(lite0, at):
    m, imgs, batch, names = lite0
    x = batch(list(imgs))
    t = torch.tensor([names.index('Egyptian cat'), names.index('espresso')])
    assert close(grad_cam(m, x, at, targets=t).raw, lite0_reference(m, x, t, at))

def test_per_class_maps_on_a_two_object_photo(lite0):
    m, imgs, batch, names = lite0
    pair = batch(torch.cat([imgs[0], imgs[1]], dim=2), size=(224, 448)).expand(2, -1, -1, -1)
    for layer in ('bn2', 'conv_head'):
        r = grad_cam(m, pair, layer, targets=[names.index('Egyptian cat'), names.index('espresso')]).map
        left = r[..., :r.shape[-1] // 2].sum((1, 2)) / r.sum((1, 2))
        assert left[0] >= 0.8 and 1 - left[1] >= 0.8, (layer, left)

# ---------------- the exercises' checkers ----------------

def graded(grader, fn):
    "What `grader(fn)` returns, and the line it prints."
    import contextlib, io
    with contextlib.redirect_stdout(io.StringIO()) as out: ok = grader(fn)
    return ok, out.getvalue().strip()

@pytest.mark.parametrize('fn,ok,words', [
    (lambda w, a: torch.einsum('nc,nchw->nhw', w, a), True, 'cam_map: correct!'),
    (lambda w, a: (w[:, :, None, None] * a).mean(1), False, 'averaged over the 5 channels (1/5 of the answer)'),
    (lambda w, a: (w[:, :, None, None] * a).sum((2, 3)), False, 'summed over the positions, (2, 5)'),
    (lambda w, a: (w[:, :, None, None] * a).sum(1).relu(), False, 'only the positive part'),
    (lambda w, a: (w[:, :, None, None] * a).sum(1)[0], False, 'wrong shape: expected (2, 3, 4), got (3, 4)'),
    (lambda w, a: w @ a, False, 'raised RuntimeError')])
def test_grade_cam_map(fn, ok, words):
    got_ok, msg = graded(grade_cam_map, fn)
    assert got_ok == ok and words in msg, msg

@pytest.mark.parametrize('fn,ok,words', [
    (lambda g: g.mean((2, 3)), True, 'channel_weights: correct!'),
    (lambda g: g.mean(1), False, 'averaged over the channels, (2, 3, 4)'),
    (lambda g: g.sum((2, 3)), False, 'summed over the 3x4 positions (12 times the answer)'),
    (lambda g: g.abs().mean((2, 3)), False, 'keep the sign'),
    (lambda g: g.mean((2, 3)).T, False, 'wrong shape: expected (2, 5), got (5, 2)'),
    (lambda g: -g.mean((2, 3)), False, 'the sign is flipped')])
def test_grade_gradcam_weights(fn, ok, words):
    got_ok, msg = graded(grade_gradcam_weights, fn)
    assert got_ok == ok and words in msg, msg
