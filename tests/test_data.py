"What the data notebook cannot show well: concurrent materialising, cache repair, the wheel, the bundle's provenance."
import os, subprocess, sys, venv, zipfile
import numpy as np
import pytest
from PIL import Image
from conftest import ROOT, run_py

from coursekit import data as ckd, store

COUNTS = {'train/3': 6131, 'train/7': 6265, 'valid/3': 1010, 'valid/7': 1028}

def test_four_processes_at_once_get_one_intact_copy(data_dir):
    code = ("from coursekit.data import mnist_sample_path; from coursekit.store import check_folder; p = mnist_sample_path(use_fastai=False); "
            "print(p); assert check_folder(p) is None")
    procs = [subprocess.Popen([sys.executable, '-c', code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [e for _, e in outs]
    paths = {o.strip() for o, _ in outs}
    assert paths == {str(data_dir/'mnist_sample')}
    assert sorted(p.name for p in data_dir.iterdir()) == ['.mnist_sample.lock', 'mnist_sample']  # no temporary folders left
    assert ckd.count_pngs(data_dir/'mnist_sample', COUNTS) == COUNTS
    assert store.check_folder(data_dir/'mnist_sample', full=True) is None
    # the four did not each write their own copy: one build, so every file has one inode and one mtime
    assert len((data_dir/'mnist_sample'/'labels.csv').read_text().splitlines()) == 14435

def _fresh(code, data_dir):
    "Call mnist_sample_path in a new process (so nothing is remembered from earlier calls)."
    r = run_py("import warnings; warnings.simplefilter('always')\n"
               "from coursekit.data import mnist_sample_path; from coursekit.store import check_folder\n"
               "p = mnist_sample_path(use_fastai=False); assert check_folder(p) is None; print(p)\n" + code)
    assert r.returncode == 0, r.stderr
    return r

@pytest.mark.parametrize('damage', ['truncate', 'flip', 'delete', 'manifest', 'half-built'])
def test_corrupted_cache_is_detected_and_rebuilt(data_dir, damage):
    p = ckd.mnist_sample_path(use_fastai=False)
    png = p/'train'/'7'/sorted(os.listdir(p/'train'/'7'))[0]
    good = png.read_bytes()
    if damage == 'truncate': png.write_bytes(good[:len(good)//2])
    elif damage == 'flip': png.write_bytes(good[:-20] + bytes(b ^ 0xFF for b in good[-20:]))  # same size
    elif damage == 'delete': png.unlink()
    elif damage == 'manifest': (p/store.MANIFEST).write_text('{not json')
    elif damage == 'half-built': (p/store.MANIFEST).unlink()  # a folder someone copied without finishing
    assert store.check_folder(p, full=True) is not None
    r = _fresh('', data_dir)
    assert 'rebuilding' in r.stderr
    assert png.read_bytes() == good
    assert store.check_folder(p, full=True) is None and ckd.count_pngs(p, COUNTS) == COUNTS

def test_corruption_found_within_one_process_by_size(data_dir):
    p = ckd.mnist_sample_path(use_fastai=False)
    f = p/'labels.csv'; f.write_text(f.read_text()[:100])
    with pytest.warns(UserWarning, match='rebuilding'): ckd.mnist_sample_path(use_fastai=False)
    assert len(f.read_text().splitlines()) == 14435

def test_fastai_download_is_used_when_complete(data_dir, tmp_path, monkeypatch):
    fa = tmp_path/'fastai_home'; monkeypatch.setenv('FASTAI_HOME', str(fa))
    ours = ckd.mnist_sample_path(use_fastai=False)
    import shutil
    shutil.copytree(ours, fa/'data'/'mnist_sample')
    assert ckd.mnist_sample_path() == fa/'data'/'mnist_sample'
    (fa/'data'/'mnist_sample'/'valid'/'3'/'18.png').unlink()  # incomplete: not used, and not touched
    assert ckd.mnist_sample_path() == ours
    assert not (fa/'data'/'mnist_sample'/'valid'/'3'/'18.png').exists()
    # fastai's config.ini can move the data folder
    (fa/'config.ini').write_text('[DEFAULT]\ndata = elsewhere\n')
    assert ckd.fastai_data_dir() == fa/'elsewhere'

def test_mnist_folder_has_ten_classes_and_matches_arrays(data_dir):
    p = ckd.mnist_path(use_fastai=False)
    x_tr, y_tr, x_va, y_va = ckd.load_mnist()
    for split, y in [('training', y_tr), ('testing', y_va)]:
        counts = ckd.count_pngs(p, [f'{split}/{d}' for d in range(10)])
        assert list(counts.values()) == np.bincount(y.numpy(), minlength=10).tolist()
        assert all(n > 0 for n in counts.values())
    b = store.bundle()
    i = int(np.nonzero(~ckd.mnist_valid_mask(b['test_y']))[0][0])
    assert (np.array(Image.open(p/'training'/str(b['test_y'][i])/f'{i}.png')) == b['test_x'][i]).all()

def test_mnist_sample_folder_matches_arrays(data_dir):
    p = ckd.mnist_sample_path(use_fastai=False)
    x_tr, y_tr, x_va, y_va = ckd.load_mnist_sample()
    rows = [l.split(',') for l in (p/'labels.csv').read_text().splitlines()[1:]]
    train = [r for r in rows if r[0].startswith('train/')]
    first = np.array(Image.open(p/train[0][0]))
    assert (first == x_tr[0].numpy()).all() and int(train[0][1]) == y_tr[0]

def test_bundle_matches_shared_sources():
    src = ROOT.parent/'shared'/'data'
    if not src.exists(): pytest.skip('../shared/data is not beside this checkout')
    r = subprocess.run([sys.executable, str(ROOT/'tools'/'bundle_data.py'), '--src', str(src), '--check'],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr

def test_readme_is_generated_from_index():
    r = subprocess.run([sys.executable, str(ROOT/'tools'/'make_readme.py'), '--check'], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr

NO_NET = ("import socket\n"
          "def _no(*a, **k): raise OSError('network access attempted')\n"
          "socket.socket.connect = _no; socket.create_connection = _no; socket.getaddrinfo = _no\n")

def test_wheel_contains_data_and_loads_offline(tmp_path):
    wheels = tmp_path/'wheels'
    r = subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation', '-w', str(wheels), str(ROOT)],
                       capture_output=True, text=True, timeout=600, env={**os.environ, 'PIP_NO_INDEX': '1'})
    assert r.returncode == 0, r.stderr
    whl, = wheels.glob('coursekit_cnn-*.whl')  # the distribution's name; the package inside is coursekit
    with zipfile.ZipFile(whl) as z:
        info = z.getinfo('coursekit/data_files/mnist.npz')
        names = z.namelist()
    assert 2e6 < info.file_size < 8e6
    assert 'coursekit/data.py' in names and not any('nbs/' in n for n in names)
    # a fresh virtualenv with only the wheel; its dependencies are borrowed read-only from this environment
    env_dir = tmp_path/'venv'
    venv.create(env_dir, with_pip=False)
    py = env_dir/'bin'/'python'
    site = subprocess.run([str(py), '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'],
                          capture_output=True, text=True).stdout.strip()
    with zipfile.ZipFile(whl) as z: z.extractall(site)
    deps = subprocess.run([sys.executable, '-c', 'import torch, os; print(os.path.dirname(os.path.dirname(torch.__file__)))'],
                          capture_output=True, text=True).stdout.strip()
    code = NO_NET + (
        "import coursekit, coursekit.data as d, os\n"
        f"assert coursekit.__file__.startswith({site!r}), coursekit.__file__\n"
        "x, y, xv, yv = d.load_mnist_sample(); assert x.shape == (12396, 28, 28)\n"
        "assert d.load_mnist()[0].shape[0] == 8004\n"
        "p = d.mnist_sample_path(); assert d.count_pngs(p, d.MNIST_SAMPLE_COUNTS) == d.MNIST_SAMPLE_COUNTS\n"
        "assert d.sample_image('cat').shape == (3, 300, 451)\n"
        "print('ok', p)\n")
    r = run_py(code, python=str(py), env={'PYTHONPATH': deps, 'COURSEKIT_DATA': str(tmp_path/'cache'),
                                           'FASTAI_HOME': str(tmp_path/'nofastai')}, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith('ok ' + str(tmp_path/'cache'))

def test_sample_images_all_load_offline():
    names = sorted(ckd.SAMPLE_IMAGES)
    code = NO_NET + ("import coursekit.data as d\n"
                     f"for n in {names!r}:\n"
                     "    t = d.sample_image(n); assert t.ndim == 3 and t.shape[0] == 3 and 0 <= t.min() and t.max() <= 1, n\n"
                     "print('ok')")
    r = run_py(code)
    assert r.returncode == 0 and 'ok' in r.stdout, r.stderr

def test_sample_image_unknown_name_lists_valid_ones():
    with pytest.raises(ValueError, match=r"unknown name 'dog'.*astronaut.*cat"): ckd.sample_image('dog')

def test_loaders_return_copies():
    x, *_ = ckd.load_mnist_sample()
    x.zero_()
    assert ckd.load_mnist_sample()[0].sum() > 0

def test_fast_and_standard_dls_agree(data_dir):
    import torch
    fast = ckd.mnist_dls('mnist', bs=128, device='cpu')
    std = ckd.mnist_dls('mnist', bs=128, device='cpu', fast=False, num_workers=0)
    assert list(std.vocab) == fast.vocab
    def rows(dl):
        xs, ys = zip(*[(x.as_subclass(torch.Tensor).flatten(1), y.as_subclass(torch.Tensor)) for x, y in dl])
        return sorted(map(tuple, torch.cat([torch.cat(xs), torch.cat(ys)[:, None].float()], 1).tolist()))
    assert rows(fast.valid) == rows(std.valid)
    xb, yb = fast.one_batch()
    assert xb.shape == (128, 1, 28, 28) and xb.dtype == torch.float32 and yb.dtype == torch.int64
    assert len(fast.train) == 8004 // 128  # drop_last for training, like fastai

def test_mnist_dls_rejects_bad_arguments():
    with pytest.raises(ValueError, match="data must be 'mnist_sample' or 'mnist'"): ckd.mnist_dls('cifar')
    with pytest.raises(ValueError, match='bs must be'): ckd.mnist_dls(bs=0)

def test_loaders_do_not_import_data():
    "coursekit.data imports coursekit.loaders (the base class of TensorDataLoader), never the reverse."
    r = run_py("import sys, coursekit.loaders; assert 'coursekit.data' not in sys.modules; print('ok')")
    assert r.returncode == 0 and 'ok' in r.stdout, r.stderr

def test_every_tensor_loader_speaks_fastai():
    "A TensorDataLoader made directly (as augment and gpu_check do) has fastai's whole DataLoader API."
    import torch
    from coursekit.data import TensorDataLoader
    dl = TensorDataLoader(torch.zeros(5, 1, 2, 2), torch.zeros(5, dtype=torch.long), bs=2, vocab=['a'])
    assert [len(b[0]) for b in dl] == [2, 2, 1] and dl.n == 5 and len(dl.dataset) == 5 and dl.n_inp == 1
    assert dl.new(torch.zeros(3, 2, 2)).x.shape == (3, 1, 2, 2) and dl.decode_batch(dl.one_batch())[0][1] == 'a'
    assert all(callable(getattr(dl, m)) for m in ('show_batch', 'show_results', '_pre_show_batch'))

def _graded(grade, fn, capsys):
    ok = grade(fn)
    return ok, capsys.readouterr().out.strip()

def test_grade_valid_mask_says_what_is_wrong(capsys):
    import numpy as np
    assert _graded(ckd.grade_valid_mask, ckd.mnist_valid_mask, capsys) == (True, 'valid_mask: correct!')
    ok, msg = _graded(ckd.grade_valid_mask, lambda labels, every: np.arange(len(labels)) % every == every - 1, capsys)
    assert not ok and 'not stratified' in msg and msg.startswith('valid_mask([0, 0, 1,'), msg
    ok, msg = _graded(ckd.grade_valid_mask, lambda labels, every: ~ckd.mnist_valid_mask(labels, every), capsys)
    assert not ok and 'inverted' in msg, msg
    positions = lambda labels, every: np.nonzero(ckd.mnist_valid_mask(labels, every))[0]
    ok, msg = _graded(ckd.grade_valid_mask, positions, capsys)
    assert not ok and 'return a boolean mask' in msg, msg  # a wrong shape: positions, not a mask
    ok, msg = _graded(ckd.grade_valid_mask, lambda labels, every: ckd.mnist_valid_mask(labels, 5), capsys)
    assert not ok and msg == ('valid_mask(30 random labels 0-3, 3): one item in 5 of each class, not one in 3: '
                              'use the argument `every`'), msg
    ok, msg = _graded(ckd.grade_valid_mask, lambda labels, every: np.zeros((2, 2), bool), capsys)
    assert not ok and 'wrong shape: expected (11,), got (2, 2)' in msg, msg
    with pytest.raises(TypeError, match='grade_valid_mask: fn must be callable'): ckd.grade_valid_mask(None)

def test_grade_n_batches_says_what_is_wrong(capsys):
    right = lambda n, bs, d: n // bs if d else -(-n // bs)
    assert _graded(ckd.grade_n_batches, right, capsys) == (True, 'n_batches: correct!')
    ok, msg = _graded(ckd.grade_n_batches, lambda n, bs, d: n // bs, capsys)
    assert not ok and msg == ('n_batches(10, 4, drop_last=False): the last batch, of 2 items, is missing: without '
                              'drop_last it counts too (round n / bs up)'), msg
    ok, msg = _graded(ckd.grade_n_batches, lambda n, bs, d: -(-n // bs), capsys)
    assert not ok and 'n_batches(10, 4, drop_last=True): drop_last drops the incomplete batch of 2 items' in msg, msg
    ok, msg = _graded(ckd.grade_n_batches, lambda n, bs, d: n // bs + (0 if d else 1), capsys)
    assert not ok and 'n_batches(12, 4, drop_last=False): one too many' in msg, msg
    ok, msg = _graded(ckd.grade_n_batches, lambda n, bs, d: (n // bs, n % bs), capsys)
    assert not ok and 'wrong shape: expected (), got (2,)' in msg, msg

def test_grade_float_batch_says_what_is_wrong(capsys):
    assert _graded(ckd.grade_float_batch, lambda x: x[:, None].float() / 255, capsys) == (True, 'to_batch: correct!')
    for fn, words in [
            (lambda x: x.float() / 255, 'no channel axis'), (lambda x: x[None].float() / 255, 'channel axis is first'),
            (lambda x: x[..., None].float() / 255, 'channels last'), (lambda x: x[:, None].float(), 'not scaled'),
            (lambda x: x[:, None] / 256, 'divided by 256'), (lambda x: x[:, None] // 255, 'integer division'),
            (lambda x: 1 - x[:, None] / 255, 'swapped'), (lambda x: x[:, None].double() / 255, 'torch.float64'),
            (lambda x: (x[:, None] / 255).numpy(), 'but ndarray: a model takes a torch.float32 tensor (use torch.as_'),
            (lambda x: x[:2, None] / 255, 'wrong shape: expected (5, 1, 28, 28), got (2, 1, 28, 28)')]:
        ok, msg = _graded(ckd.grade_float_batch, fn, capsys)
        assert not ok and msg.startswith('to_batch(5 digits, uint8 (5, 28, 28))') and words in msg, (words, msg)
