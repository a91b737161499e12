"""Training speed: fastai's DataBlock pipeline over PNGs versus coursekit's tensors-on-device fast path.

Trains the same simple_cnn with the same seed, batch size and number of epochs through both, and prints one JSON
line: per batch size, the steady-state seconds per epoch of each (the fastest epoch after the first, which pays
for warm-up), their ratio, and both final validation accuracies. Not part of CI's pass/fail.

    python benchmarks/train_speed.py [--epochs 3] [--bs 64 512] [--device cpu|cuda]

With a CUDA GPU it also times a full epoch of the 10-class batchnorm model on the fast path (`gpu_mnist_bn`).
"""
import argparse, json, os, platform, warnings
warnings.filterwarnings('ignore')
import torch
from coursekit.core import resolve_device
from coursekit.cnn import train_cnn

def run(fast, bs, epochs, device, data='mnist_sample', **kw):
    learn = train_cnn(data, epochs=epochs, lr=0.01 if data == 'mnist_sample' else 0.1, bs=bs, device=device, fast=fast, progress=False, **kw)
    h = learn.epoch_history.history
    steady = min(e['seconds'] for e in h[1:]) if len(h) > 1 else h[0]['seconds']
    return dict(seconds_per_epoch=round(steady, 3), epochs=[round(e['seconds'], 3) for e in h], valid_accuracy=round(h[-1]['valid_accuracy'], 4))

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--epochs', type=int, default=3)
    ap.add_argument('--bs', type=int, nargs='+', default=[64, 512])
    ap.add_argument('--device', default=None)
    a = ap.parse_args()
    device = resolve_device(a.device)
    res = dict(benchmark='train_speed', device=str(device), cpu_threads=torch.get_num_threads(), omp_wait_policy=os.environ.get('OMP_WAIT_POLICY', 'default'), machine=platform.machine(),
               torch=torch.__version__, epochs=a.epochs, results=[])
    for bs in a.bs:
        png, fast = run(False, bs, a.epochs, device), run(True, bs, a.epochs, device)
        res['results'].append(dict(bs=bs, png=png, fast=fast, speedup=round(png['seconds_per_epoch'] / fast['seconds_per_epoch'], 2)))
    if device.type == 'cuda':
        res['gpu_mnist_bn'] = {p: run(True, 512, 3, device, data='mnist', precision=p, channels_last=(p != 'fp32')) for p in ('fp32', 'bf16')}
    print(json.dumps(res))

if __name__ == '__main__': main()
