"""Careless and hostile input (issue #25): huge, odd and lying photo files, ambiguous class names, a model shared
by threads, a data cache with planted files or a full disk. Each gets a clear error or a right result."""
import os, struct, subprocess, sys, threading, zlib
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
from PIL import Image
from coursekit.imagenet import as_image, imagenet_class, short_side_size, MAX_PIXELS

def png_claiming(w, h) -> bytes:
    "A tiny PNG whose header claims w x h pixels (a decompression bomb's calling card)."
    chunk = lambda t, d: struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d) & 0xffffffff)
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 0, 0, 0, 0))
            + chunk(b'IDAT', zlib.compress(b'\x00' * 16)) + chunk(b'IEND', b''))

def test_a_lying_header_is_refused_at_once(tmp_path):
    (tmp_path/'bomb.png').write_bytes(png_claiming(100_000, 100_000))
    assert len((tmp_path/'bomb.png').read_bytes()) < 100
    with pytest.raises(ValueError, match='bomb.png is too large to read'): as_image(tmp_path/'bomb.png')

def test_16_bit_grey_is_scaled_by_its_range(tmp_path):
    a = np.array([[0, 1000, 65535]], dtype=np.uint16).repeat(4, 0)
    Image.fromarray(a).save(tmp_path/'g16.png')
    x = as_image(tmp_path/'g16.png')
    assert x.shape == (3, 4, 3) and torch.allclose(x[:, 0], torch.tensor([0, 1000 / 65535, 1.]).expand(3, 3))

@pytest.mark.parametrize('arr,words', [(np.full((8, 8), 300.5, np.float32), 'floating-point pixels (mode F'),
                                       (np.full((8, 8), 70000, np.int32), '32-bit integer pixels (mode I')])
def test_pixels_without_a_fixed_range_are_refused_by_mode(tmp_path, arr, words):
    Image.fromarray(arr).save(tmp_path/'x.tif')
    with pytest.raises(ValueError, match=words.replace('(', r'\(')): as_image(tmp_path/'x.tif')

def test_float_pixels_in_0_1_are_read(tmp_path):
    Image.fromarray(np.full((8, 8), 0.25, np.float32)).save(tmp_path/'f.tif')
    assert torch.allclose(as_image(tmp_path/'f.tif'), torch.full((3, 8, 8), 0.25))

@pytest.mark.parametrize('h,w', [(5, 5000), (100_000, 1), (1, 300)])
def test_extreme_aspect_ratios_are_refused(h, w):
    with pytest.raises(ValueError, match='crop it first'): short_side_size(h, w)

def test_a_long_strip_decodes_small(tmp_path):
    Image.fromarray(np.zeros((1, 100_000), np.uint8)).save(tmp_path/'strip.png')  # 3 KB on disk
    assert as_image(tmp_path/'strip.png').shape == (3, 1, 100_000)  # what it is; short_side_size refuses it

PEAK = '''
import resource, sys, torch
from coursekit.imagenet import as_image, imagenet_batch
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
x = imagenet_batch(sys.argv[1])
print(x.shape[0], (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)
'''

def test_a_huge_jpeg_costs_little_memory(tmp_path):
    rng = np.random.default_rng(0)
    big = np.kron(rng.integers(0, 255, (750, 750, 3), dtype=np.uint8), np.ones((16, 16, 1), np.uint8))  # 12000^2
    Image.fromarray(big).save(tmp_path/'big.jpg', quality=80); del big
    r = subprocess.run([sys.executable, '-c', PEAK, str(tmp_path/'big.jpg')], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    n, mb = r.stdout.split()
    assert n == '1' and float(mb) < 600, f'{mb} MB above the imports'

def test_large_png_is_reduced_to_max_pixels(tmp_path):
    Image.fromarray(np.zeros((3000, 4000), np.uint8)).save(tmp_path/'p.png')  # 12 MP > MAX_PIXELS
    x = as_image(tmp_path/'p.png')
    assert x.shape[1] * x.shape[2] <= MAX_PIXELS and x.shape[2] / x.shape[1] == pytest.approx(4 / 3, rel=0.01)

@pytest.mark.parametrize('name,want', [('cardigan', 474), ('Cardigan', 264), ('474', 474), (' 7 ', 7), (7, 7)])
def test_class_names_exact_match_wins(name, want):
    assert imagenet_class(name) == want

@pytest.mark.parametrize('name,words', [('CARDIGAN', 'Cardigan (264), cardigan (474)'), ('²', 'not an ImageNet class'),
                                        ('٣', 'not an ImageNet class'), ('1000', 'class id in [0, 999]'),
                                        ('-1', 'not an ImageNet class'), (True, 'class name or id'),
                                        ('tabbby', 'close names: tabby')])
def test_class_names_ambiguous_or_odd_are_refused(name, words):
    with pytest.raises((ValueError, TypeError)) as e: imagenet_class(name)
    assert words in str(e.value)

# ---------------- one model, many threads ----------------

def test_grad_cam_from_threads_on_one_model():
    from coursekit.cam import grad_cam
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 8, 3), nn.ReLU(),
                      nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5))
    m.train()
    xs = [torch.randn(2, 3, 12, 12, generator=torch.Generator().manual_seed(i)) for i in range(6)]
    want = [grad_cam(m, x, m[4]).raw for x in xs]
    bn = (m[1].running_mean.clone(), m[1].running_var.clone())
    got, errors = {}, []
    def work(t):
        try:
            for k in range(10): got[(t, k)] = grad_cam(m, xs[(t + k) % 6], m[4]).raw
        except Exception as e: errors.append(e)
    threads = [threading.Thread(target=work, args=(t,)) for t in range(6)]
    for t in threads: t.start()
    for t in threads: t.join()
    assert not errors and len(got) == 60
    assert all(torch.allclose(v, want[(t + k) % 6], atol=1e-6) for (t, k), v in got.items())
    assert all(mod.training for mod in m.modules())  # the model's mode as it was
    assert torch.equal(m[1].running_mean, bn[0]) and torch.equal(m[1].running_var, bn[1])

# ---------------- the data cache ----------------

@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv('COURSEKIT_DATA', str(tmp_path/'cache'))
    return tmp_path/'cache'

FILES = lambda: [(f'train/3/{i}.png', bytes([i]) * 10) for i in range(3)]

def test_a_planted_file_is_noticed_and_removed(cache):
    from coursekit.store import check_folder, materialise
    p = materialise('set', FILES)
    (p/'train'/'3'/'evil.png').write_bytes(b'x' * 10)
    assert check_folder(p, full=False) == 'train/3/evil.png is not part of the data set (1 such file(s))'
    with pytest.warns(UserWarning, match='rebuilding'): materialise('set', FILES)
    assert not (p/'train'/'3'/'evil.png').exists() and check_folder(p) is None

def test_a_users_folder_of_the_same_name_is_kept(cache):
    from coursekit.store import materialise
    (cache/'set').mkdir(parents=True); (cache/'set'/'thesis.tex').write_text('mine')
    with pytest.raises(OSError, match='not part of the data set .thesis.tex'): materialise('set', FILES)
    assert (cache/'set'/'thesis.tex').read_text() == 'mine' and sorted(os.listdir(cache)) == ['.set.lock', 'set']

def test_a_full_disk_names_the_folder_and_leaves_nothing(cache):
    from coursekit.store import materialise
    def files():
        yield 'a.png', b'1'
        raise OSError(28, 'No space left on device')
    with pytest.raises(OSError, match=f'cannot write the data folder {cache}/set .No space left on device'):
        materialise('set', files)
    assert sorted(os.listdir(cache)) == ['.set.lock']

def test_staging_lookalikes_in_the_cache_are_kept(cache):
    from coursekit.store import materialise
    (cache/'.set.tmp-mine').mkdir(parents=True); (cache/'.set.tmp-mine'/'keep.txt').write_text('mine')
    materialise('set', FILES)
    assert (cache/'.set.tmp-mine'/'keep.txt').read_text() == 'mine'

# ---------------- the command line, on hostile photos ----------------

def test_cli_gradcam_hostile_photos_one_line_each_and_the_rest_go_on(tmp_path):
    from coursekit.data import sample_image
    (tmp_path/'bomb.png').write_bytes(png_claiming(100_000, 100_000))
    Image.fromarray(np.zeros((5, 5000), np.uint8)).save(tmp_path/'strip.png')
    Image.fromarray(np.full((8, 8), 300.5, np.float32)).save(tmp_path/'depth.tif')
    Image.fromarray((np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 16)).save(tmp_path/'scan16.png')
    Image.fromarray((sample_image('cat').permute(1, 2, 0) * 255).byte().numpy()).save(tmp_path/'cat.jpg')
    (tmp_path/'folder.jpg').mkdir()
    bad = ['bomb.png', 'strip.png', 'depth.tif', 'folder.jpg']
    r = subprocess.run([str(Path(sys.executable).parent/'coursekit'), 'gradcam', *bad, 'scan16.png', 'cat.jpg',
                        '--out', 'out'], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert r.returncode == 2 and 'Traceback' not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == len(bad) and all(l.startswith('coursekit gradcam: error: ') for l in lines), lines
    assert all(b in l for b, l in zip(bad, lines)), lines
    assert 'too large to read' in lines[0] and 'crop it first' in lines[1] and 'no fixed range' in lines[2]
    assert sorted(p.name for p in (tmp_path/'out').iterdir()) == ['.coursekit-run.json', 'cat-gradcam.png',
                                                                  'gradcam.json', 'scan16-gradcam.png']
