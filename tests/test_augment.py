"Augmentation: bad input is named, transforms run batched on the training device and never on validation."
import pytest, torch
from fastai.vision.augment import Rotate
from coursekit.augment import show_augmented, augment, ladder, digit_tfms, strong_tfms, augmentation_experiment
from coursekit.data import TensorDataLoader

@pytest.mark.parametrize('img,kw,exc,msg', [
    (torch.rand(3, 16, 16), dict(n=0), ValueError, 'n must be >= 1'),
    (torch.rand(3, 16, 16), dict(n=-2), ValueError, 'n must be >= 1'),
    (torch.rand(3, 16, 16), dict(n=2.5), TypeError, 'n must be an int'),
    (torch.rand(2, 3, 16, 16), {}, ValueError, r'img must be \(H, W\) or \(C, H, W\)'),
    (torch.rand(4, 16, 16), {}, ValueError, r'img must have \(1, 3\) channels'),
    (torch.randint(0, 255, (16, 16), dtype=torch.uint8), {}, TypeError, 'float tensor'),
    ([[0.5]], {}, TypeError, 'must be a torch.Tensor'),
    (torch.rand(3, 16, 16), dict(pad_mode='wrap'), ValueError, 'pad_mode must be'),
])
def test_show_augmented_rejects_bad_input(img, kw, exc, msg):
    with pytest.raises(exc, match=msg): show_augmented(img, **kw)

def test_show_augmented_grid_shapes():
    import matplotlib; matplotlib.use('Agg')
    for img, c in [(torch.rand(20, 24), 1), (torch.rand(1, 20, 24), 1), (torch.rand(3, 20, 24), 3)]:
        out = show_augmented(img, n=5)
        assert out.shape == (5, c, 20, 24) and 0 <= out.min() and out.max() <= 1
        assert not torch.equal(out[0], out[1])  # random: the versions differ

def test_fixed_rotation_matches_torch_affine_grid():
    "A fixed 90-degree rotation with fastai's batch transform equals rotating the tensor (up to interpolation at the border)."
    x = torch.rand(1, 1, 9, 9)
    r = augment(x, [Rotate(max_deg=90, p=1., draw=90, pad_mode='zeros')])
    ref = torch.rot90(x, k=1, dims=(2, 3))
    ok = torch.allclose(r, ref, atol=1e-4) or torch.allclose(r, torch.rot90(x, k=-1, dims=(2, 3)), atol=1e-4)
    assert ok

def test_ladder_identity_and_monotone():
    img = torch.rand(3, 12, 12) * 0.8 + 0.1
    assert torch.allclose(ladder(img, lambda v: Rotate(p=1., draw=v), [0.])[0], img, atol=1e-4)

def test_augmentation_only_on_training_batches():
    calls = []
    x, y = torch.rand(10, 1, 8, 8), torch.arange(10)
    train = TensorDataLoader(x, y, bs=5, after_batch=lambda b: calls.append(b.shape) or augment(b, digit_tfms()))
    valid = TensorDataLoader(x, y, bs=5)
    assert len(list(train)) == 2 and calls == [(5, 1, 8, 8)] * 2
    vb = torch.cat([b for b, _ in valid])
    assert torch.equal(vb, x)  # validation batches untouched

def test_experiment_runs_and_is_paired():
    res = augmentation_experiment(n_train=128, seeds=(0,), epochs=1, device='cpu')
    assert list(res.augmentation) == [False, True] and res.valid_accuracy.between(0, 1).all()

@pytest.mark.parametrize('n', [0, 10, 10**6])
def test_experiment_refuses_too_little_or_too_much_data(n):
    with pytest.raises(ValueError, match='n_train must be'): augmentation_experiment(n_train=n, seeds=(0,), epochs=1)

def test_errors_name_the_function_called():
    "Checks in the helpers (`ladder` inside `show_ladders`, the data preparation of the experiment) name the caller."
    from coursekit.augment import show_ladders
    with pytest.raises(ValueError, match='^show_ladders: pad_mode must be one of'):
        show_ladders(torch.rand(8, 8), pad_mode='mirror')
    with pytest.raises(ValueError, match='^show_augmented: n must be >= 1'): show_augmented(torch.rand(8, 8), n=0)
    with pytest.raises(ValueError, match=r'^augmentation_experiment: n_train must be from bs \(64: one batch\)'):
        augmentation_experiment(n_train=10, seeds=(0,), epochs=1)

def test_strong_tfms_padding_and_flips():
    "fastai merges the flip, the affine transforms and the warp into one transform, lighting into the other."
    assert [type(t).__name__ for t in strong_tfms()] == ['Flip', 'Brightness']
    assert [type(t).__name__ for t in strong_tfms(do_flip=False)] == ['Warp', 'Brightness']
    assert strong_tfms('zeros')[0].pad_mode == 'zeros'

def _graded(grader, fn, capsys):
    ok = grader(fn)
    return ok, capsys.readouterr().out.strip()

def test_grade_hflip_right_wrong_and_wrong_shape(capsys):
    from coursekit.augment import grade_hflip
    assert _graded(grade_hflip, lambda xb: xb.flip(-1), capsys) == (True, 'hflip: correct!')
    ok, msg = _graded(grade_hflip, lambda xb: xb.flip(2), capsys)
    assert not ok and msg.startswith('hflip(batch (4, 3, 5, 7)): upside down: dim 2 (the rows) is reversed'), msg
    ok, msg = _graded(grade_hflip, lambda xb: xb.flip(0), capsys)
    assert not ok and 'the order of the images is reversed (dim 0)' in msg, msg
    ok, msg = _graded(grade_hflip, lambda xb: xb.permute(0, 2, 3, 1), capsys)
    assert not ok and msg.endswith('wrong shape: expected (4, 3, 5, 7), got (4, 5, 7, 3)'), msg
    ok, msg = _graded(grade_hflip, lambda xb: xb.transpose(2, 3), capsys)
    assert not ok and 'height and width are swapped' in msg, msg
    with pytest.raises(TypeError, match='^grade_hflip: fn must be callable'): grade_hflip(3)

def test_grade_ink_right_wrong_and_wrong_shape(capsys):
    from coursekit.augment import grade_ink, ink_pixels
    assert _graded(grade_ink, lambda xb, t: (xb > t).sum((1, 2, 3)), capsys) == (True, 'count_ink: correct!')
    ok, msg = _graded(grade_ink, lambda xb, t: (xb >= t).sum((1, 2, 3)), capsys)
    assert not ok and msg.startswith('count_ink(pixels 0, 0.25, ..., 1, 0.5): pixels equal to the threshold'), msg
    ok, msg = _graded(grade_ink, lambda xb, t: (xb > 0.5).sum((1, 2, 3)), capsys)
    assert not ok and msg == 'count_ink(5 digits, 0.2): the threshold is always 0.5: use the threshold given (0.2)'
    ok, msg = _graded(grade_ink, lambda xb, t: (xb > t).sum(), capsys)
    assert not ok and 'one count for the whole batch' in msg, msg
    ok, msg = _graded(grade_ink, lambda xb, t: (xb > t).sum((2, 3)), capsys)
    assert not ok and msg.endswith('wrong shape: expected (5,), got (5, 1)'), msg
    ok, msg = _graded(grade_ink, lambda xb, t: 1 / 0, capsys)
    assert not ok and msg == 'count_ink(5 digits, 0.5) raised ZeroDivisionError: division by zero'
    assert ink_pixels(torch.tensor([0., 0.5, 0.51, 1.]).view(2, 1, 1, 2)).tolist() == [0, 2]
    with pytest.raises(TypeError, match='^ink_pixels: xb must be a float tensor'):
        ink_pixels(torch.zeros(1, 1, 2, 2, dtype=torch.uint8))
