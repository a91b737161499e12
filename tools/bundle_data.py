"""Build the compact data bundle shipped inside the package: `coursekit/data_files/mnist.npz`.

Run from the repository root with the shared data folder beside it:

    python tools/bundle_data.py [--src ../shared/data] [--check]

The sources (see ../shared/data/README.md) are verified against their published sha256 first. The bundle holds
uint8 arrays only: the official MNIST test split (10,000 images and labels), and fastai's MNIST_SAMPLE as
(split, digit, file number) rows in the order of its labels.csv, with the pixels of its training images. Its
validation images are the 3s and 7s of the test split (file number = index into the test split, checked pixel
for pixel here), so they are stored as indices, not twice. `--check` rebuilds in memory and compares with the
committed bundle instead of writing it.
"""
import argparse, csv, gzip, hashlib, io, json, sys, tarfile
from pathlib import Path
import numpy as np
from PIL import Image

SOURCES = {  # sha256 published in ../shared/data/README.md
    'mnist_sample.tgz': 'f2d6c36c8abe89ab95f00f71ac92d9b85d8df26bb68b19828db2ea4a846dc561',
    'mnist_test/t10k-images-idx3-ubyte.gz': '167310007f03058885c7e95e6c0b19c20de5c7fd3031f4cbdadc9014a523d80b',
    'mnist_test/t10k-labels-idx1-ubyte.gz': 'fc607395669ec21321ea83e4b82c0544b7e8e63ff5b34337c06bc0a17cc0da3c',
}
DEST = Path(__file__).resolve().parent.parent/'coursekit'/'data_files'/'mnist.npz'

def read_idx(path, magic, offset):
    raw = gzip.open(path).read()
    got = int.from_bytes(raw[:4], 'big')
    if got != magic: sys.exit(f'{path}: magic {got}, expected {magic}')
    return np.frombuffer(raw, np.uint8, offset=offset)

def build(src):
    for name, sha in SOURCES.items():
        got = hashlib.sha256((src/name).read_bytes()).hexdigest()
        if got != sha: sys.exit(f'{src/name}: sha256 {got}, expected {sha}')
    test_x = read_idx(src/'mnist_test/t10k-images-idx3-ubyte.gz', 2051, 16).reshape(-1, 28, 28)
    test_y = read_idx(src/'mnist_test/t10k-labels-idx1-ubyte.gz', 2049, 8)
    split, digit, ident, train_x = [], [], [], []
    with tarfile.open(src/'mnist_sample.tgz') as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}  # one pass over the stream
        rows = list(csv.reader(io.StringIO(files['mnist_sample/labels.csv'].decode())))
        assert rows[0] == ['name', 'label'], rows[0]
        for name, label in rows[1:]:
            sp, d, fn = name.split('/')
            assert d in '37' and label == str('37'.index(d)), (name, label)
            px = np.array(Image.open(io.BytesIO(files['mnist_sample/' + name])))
            assert px.shape == (28, 28) and px.dtype == np.uint8, name
            i = int(fn[:-len('.png')])
            if sp == 'valid':  # the 3s and 7s of the official test split
                assert test_y[i] == int(d) and (test_x[i] == px).all(), name
            else: train_x.append(px)
            split.append(('train', 'valid').index(sp)); digit.append(int(d)); ident.append(i)
        assert len(rows) - 1 == len([m for m in files if m.endswith('.png')])
    meta = dict(sources=SOURCES, licence='CC BY-SA 3.0',
                attribution='MNIST: Yann LeCun, Corinna Cortes and Christopher J. C. Burges; MNIST_SAMPLE: fastai')
    return dict(test_x=test_x, test_y=test_y, sample_split=np.array(split, np.uint8),
                sample_digit=np.array(digit, np.uint8), sample_id=np.array(ident, np.int32),
                sample_train_x=np.stack(train_x), meta=np.array(json.dumps(meta)))

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--src', type=Path, default=Path('../shared/data'))
    ap.add_argument('--check', action='store_true', help='compare with the committed bundle, write nothing')
    a = ap.parse_args()
    arrays = build(a.src)
    if a.check:
        with np.load(DEST) as old:
            bad = [k for k in arrays if k not in old or not np.array_equal(old[k], arrays[k])]
        sys.exit(f'bundle differs in {bad}' if bad else print('bundle matches the sources'))
    DEST.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(DEST, **arrays)
    print(f'wrote {DEST.name}: {DEST.stat().st_size/1e6:.2f} MB')
