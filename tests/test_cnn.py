"The course CNN, the training entry point and the `coursekit train` command."
import json, os, subprocess, sys
from pathlib import Path
import pytest, torch
from coursekit.core import resolve_device
from coursekit.cnn import simple_cnn, conv, train_cnn

BIN = Path(sys.executable).parent

def test_simple_cnn_needs_a_layer():
    with pytest.raises(ValueError, match='channels needs at least'): simple_cnn((1,))

def test_conv_helper():
    c = conv(3, 8, ks=5)
    assert c[0].stride == (2, 2) and c[0].padding == (2, 2) and isinstance(c[1], torch.nn.ReLU)
    assert len(conv(3, 8, act=False)) == 1 and isinstance(conv(3, 8, bn=True)[-1], torch.nn.BatchNorm2d)

def test_devices():
    assert resolve_device().type in ('cuda', 'mps', 'cpu')
    assert resolve_device('cpu').type == 'cpu'
    if not torch.cuda.is_available():
        assert resolve_device().type != 'cuda'
        with pytest.raises(ValueError, match='no CUDA GPU'): resolve_device('cuda')
        with pytest.raises(ValueError, match='needs a CUDA GPU'): train_cnn(epochs=1, device='cpu', precision='bf16')
    with pytest.raises(ValueError, match='device must be'): resolve_device('tpu')

def test_seeded_cpu_runs_are_reproducible_and_on_device():
    a = train_cnn(epochs=1, device='cpu', progress=False, seed=3)
    b = train_cnn(epochs=1, device='cpu', progress=False, seed=3)
    strip = lambda l: [{k: v for k, v in h.items() if k != 'seconds'} for h in l.epoch_history.history]
    assert strip(a) == strip(b)
    assert all(torch.equal(p, q) for p, q in zip(a.model.parameters(), b.model.parameters()))
    c = train_cnn(epochs=1, device='cpu', progress=False, seed=4)
    assert strip(c) != strip(a)  # the seed matters
    assert next(a.model.parameters()).device.type == 'cpu' and a.dls.train.x.device.type == 'cpu'

def test_train_cnn_rejects_bad_arguments():
    for kw, msg in [(dict(data='cifar'), "data must be"), (dict(epochs=0), 'epochs must be'), (dict(lr=0), 'lr must be'),
                    (dict(precision='fp8'), 'precision must be')]:
        with pytest.raises(ValueError, match=msg): train_cnn(**kw)

def cli(*args, cwd=None):
    return subprocess.run([str(BIN/'coursekit'), *args], capture_output=True, text=True, timeout=600, cwd=cwd)

def test_cli_train_one_epoch(tmp_path):
    r = cli('train', '--epochs', '1', '--out', str(tmp_path/'out'), '--device', 'cpu')
    assert r.returncode == 0, r.stderr
    assert 'device cpu' in r.stdout and 'epoch 1/1' in r.stdout
    m = json.loads((tmp_path/'out'/'metrics.json').read_text())
    assert m['device'] == 'cpu' and m['epochs'] == 1 and len(m['history']) == 1 and len(m['seconds_per_epoch']) == 1
    assert m['final_valid_accuracy'] >= 0.98
    for k in ['train_loss', 'train_accuracy', 'valid_loss', 'valid_accuracy', 'seconds']: assert k in m['history'][0]
    for f in ['loss.png', 'layer_stats.png', 'color_dim.png', 'gradcam.png']: assert (tmp_path/'out'/f).stat().st_size > 1000, f

def test_cli_help_documents_every_option():
    r = cli('train', '--help')
    assert r.returncode == 0
    for opt in ['--data', '--epochs', '--lr', '--bs', '--device', '--out', '--seed', '--precision', '--channels-last', '--quiet']:
        assert opt in r.stdout, opt
    assert 'mnist_sample' in r.stdout and 'cuda' in r.stdout

@pytest.mark.parametrize('args,msg', [
    (('train', '--data', 'cifar'), "argument --data: invalid choice: 'cifar'"),
    (('train', '--out', '/proc/coursekit-nope'), 'is not writable'),
    (('train', '--epochs', '0'), 'argument --epochs: must be > 0'),
    (('train', '--lr', 'nan'), 'argument --lr: must be > 0'),
    (('train', '--bs', 'x'), "argument --bs: invalid int value: 'x'"),
] + ([] if torch.cuda.is_available() else [(('train', '--device', 'cuda'), 'no CUDA GPU')]))
def test_cli_errors_are_one_line_exit_2(args, msg):
    r = cli(*args)
    assert r.returncode == 2
    assert msg in r.stderr and r.stderr.count('\n') == 1, r.stderr

def test_cli_unwritable_out_dir(tmp_path):
    if os.geteuid() == 0: ro = Path('/proc/sys/coursekit')  # root can write anywhere else
    else: ro = tmp_path/'ro'; ro.mkdir(); ro.chmod(0o500)
    r = cli('train', '--out', str(ro/'sub'))
    assert r.returncode == 2 and 'not writable' in r.stderr

def test_no_silent_success(tmp_path):
    "A batch larger than the data trains nothing, a diverging run is not a result: both are clear errors."
    with pytest.raises(ValueError, match='larger than the training set'): train_cnn(bs=100_000, device='cpu', progress=False)
    r = cli('train', '--bs', '100000', '--out', str(tmp_path/'a'), '--device', 'cpu')
    assert r.returncode == 2 and 'larger than the training set' in r.stderr and not (tmp_path/'a'/'metrics.json').exists()
    r = cli('train', '--lr', '1e6', '--epochs', '1', '--out', str(tmp_path/'b'), '--device', 'cpu')
    assert r.returncode == 2 and 'training diverged' in r.stderr and not (tmp_path/'b'/'metrics.json').exists()

# ---------------- the chapter's exercise checkers: a right answer, wrong ones, a wrong shape ----------------
import math
import torch.nn as nn
from coursekit.cnn import grade_conv, grade_n_params, grade_one_cycle

def _conv(ni, nf, ks=3, act=True, stride=2, pad=None, mult=1):
    layers = [nn.Conv2d(ni, nf * mult, ks, stride=stride, padding=ks // 2 if pad is None else pad)]
    return nn.Sequential(*layers, *([nn.ReLU()] if act else []))

@pytest.mark.parametrize('fn,ok,words', [
    (_conv, True, 'conv: correct!'),
    (lambda ni, nf, ks, act: _conv(ni, nf, ks, act, stride=1), False, 'the grid is not halved'),
    (lambda ni, nf, ks, act: _conv(ni, nf, ks, act, pad=0), False, 'no padding: pad by ks//2 = 1'),
    (lambda ni, nf, ks, act: _conv(ni, nf, ks, act, mult=2), False, '8 output channels: the conv goes from ni = 1'),
    (lambda ni, nf, ks, act: _conv(ni, nf, ks, act=False), False, 'the ReLU after the conv is missing'),
    (lambda ni, nf, ks, act: _conv(ni, nf, ks, act=True), False, 'act=False means no ReLU'),
    (lambda ni, nf, ks, act: nn.Sequential(nn.ReLU(), _conv(ni, nf, ks, act)), False, 'wrong values at positions'),
    (lambda ni, nf, ks, act: 3, False, 'it must return an nn.Module, got int')])
def test_grade_conv(fn, ok, words, capsys):
    assert grade_conv(fn) is ok
    assert words in capsys.readouterr().out

def _n_params(channels, n_out, first_ks=3):
    sizes = list(zip(channels, list(channels[1:]) + [n_out]))
    return sum(nf * ni * k * k + nf for (ni, nf), k in zip(sizes, [first_ks] + [3] * (len(sizes) - 1)))

@pytest.mark.parametrize('fn,ok,words', [
    (_n_params, True, 'n_params: correct!'),
    (lambda ch, n, k: _n_params(ch, n, k) - sum(ch[1:]) - n, False, 'the weights only: each conv also has one bias'),
    (lambda ch, n, k: sum(o * 9 + o for o in ch[1:] + (n,)), False, 'one k x k slice per input channel'),
    (lambda ch, n, k: _n_params(ch[:-1], ch[-1], k), False, 'the last conv, from 32 channels to the 2 classes'),
    (lambda ch, n, k: _n_params(ch, n), False, 'the first kernel is 5x5 (first_ks), not 3x3'),
    (lambda ch, n, k: _n_params(ch, n, k) + 1, False, 'expected 6,722, got 6,723 (off by +1)'),
    (lambda ch, n, k: [6722, 6722], False, 'one number expected, got shape (2,)')])
def test_grade_n_params(fn, ok, words, capsys):
    assert grade_n_params(fn) is ok
    assert words in capsys.readouterr().out

def _lr(pos, lr_max, pct=0.25, start=None, end=None, line=False):
    start, end = lr_max / 25 if start is None else start, lr_max / 1e5 if end is None else end
    a, b, t = (start, lr_max, pos / pct) if pos < pct else (lr_max, end, (pos - pct) / (1 - pct))
    return a + (b - a) * (t if line else (1 - math.cos(math.pi * t)) / 2)

@pytest.mark.parametrize('fn,ok,words', [
    (_lr, True, 'one_cycle_lr: correct!'),
    (lambda pos, lr: _lr(pos, lr, line=True), False, 'a straight line'),
    (lambda pos, lr: _lr(pos, lr, start=0.), False, 'one_cycle_lr(0.0, 0.01): the warm-up starts at lr_max / 25'),
    (lambda pos, lr: _lr(pos, lr, end=0.), False, 'the annealing ends at lr_max / 1e5, not at 0'),
    (lambda pos, lr: _lr(pos, lr, pct=1 / 3), False, 'the first quarter of the training, not 0.333'),
    (lambda pos, lr: -_lr(pos, lr), False, 'the sign is flipped'),
    (lambda pos, lr: 2 * _lr(pos, lr), False, 'expected 0.0004, got 0.0008'),
    (lambda pos, lr: [_lr(pos, lr)] * 2, False, 'one learning rate expected, got shape (2,)')])
def test_grade_one_cycle(fn, ok, words, capsys):
    assert grade_one_cycle(fn) is ok
    assert words in capsys.readouterr().out

def test_graders_refuse_what_is_not_a_function():
    for grade in (grade_conv, grade_n_params, grade_one_cycle):
        with pytest.raises(TypeError, match=f'^{grade.__name__}: fn must be callable'): grade(3)
