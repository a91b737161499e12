"""What our backward pass costs: forward + backward of `conv2d_scratch` (unfold + matmul, chapter 3b) against
`F.conv2d` on the five convolutions of `simple_cnn` with MNIST's 28x28 digits (1->4 channels on 28x28, 4->8 on
14x14, 8->16 on 7x7, 16->32 on 4x4, 32->2 on 2x2; 3x3 kernels, stride 2, padding 1; the first layer's input needs no
gradient, as in training), at bs 64 and 512; then seconds per epoch of `train_cnn` on MNIST_SAMPLE with `simple_cnn`
and with its `scratch_copy`. The two contenders alternate in every repeat, so that a change in the machine's load
hits both alike.

Prints one JSON line per measurement: the best and median seconds of each, the ratio of the medians and its spread
(the smallest and largest ratio of one repeat's pair), and the thread settings it ran with; then a short summary of
the medians and ratios, with the device, processor architecture, torch version and threads. Not part of CI.

    OMP_NUM_THREADS=1 python benchmarks/conv_backward_speed.py [--repeats 7] [--epochs 2] [--train-repeats 2]
                                                                [--device cpu|cuda] [--threads N]
"""
import argparse, json, os, platform, statistics, time, warnings
warnings.filterwarnings('ignore')
import torch
import torch.nn.functional as F
from coursekit.core import resolve_device
from coursekit.backward import conv2d_scratch, scratch_copy
from coursekit.cnn import simple_cnn, train_cnn

LAYERS = [(1, 4, 28), (4, 8, 14), (8, 16, 7), (16, 32, 4), (32, 2, 2)]  # simple_cnn's convs: C_in, C_out, input size

def layer_inputs(bs, dev, seed=0):
    "For each layer: input (needing a gradient except the first), weight, bias and an output gradient."
    g = torch.Generator().manual_seed(seed)
    rand = lambda *shape, grad=True: torch.randn(*shape, generator=g).to(dev).requires_grad_(grad)
    return [(rand(bs, ci, n, n, grad=i > 0), rand(co, ci, 3, 3), rand(co), rand(bs, co, (n + 1) // 2, (n + 1) // 2, grad=False))
            for i, (ci, co, n) in enumerate(LAYERS)]

def sync(dev):
    if dev.type == 'cuda': torch.cuda.synchronize()

def fwd_bwd(conv, layers, inner, dev):
    "Seconds for one forward + backward of all five layers, averaged over `inner` calls."
    sync(dev); t0 = time.perf_counter()
    for _ in range(inner):
        for x, w, b, g in layers:
            out = conv(x, w, b, stride=2, padding=1)
            torch.autograd.grad(out, [t for t in (x, w, b) if t.requires_grad], g)
    sync(dev)
    return (time.perf_counter() - t0) / inner

def alternate(contenders, repeats):
    "Call each of `contenders` (name: function returning seconds) once per repeat, in alternating order."
    times = {n: [] for n in contenders}
    for r in range(repeats):
        for n in (list(contenders) if r % 2 == 0 else list(contenders)[::-1]): times[n].append(contenders[n]())
    return times

def summary(times, ours='scratch', theirs='torch'):
    ratios = [a / b for a, b in zip(times[ours], times[theirs])]
    out = {f'{n}_{k}_s': round(f(v), 5) for n, v in times.items() for k, f in (('best', min), ('median', statistics.median))}
    return dict(out, ratio=round(statistics.median(times[ours]) / statistics.median(times[theirs]), 3),
                ratio_min=round(min(ratios), 3), ratio_max=round(max(ratios), 3))

def summary_lines(results, env):
    "The medians and ratios of `results` (the printed measurements) in a few lines, and what they ran on."
    unit = lambda s: f'{s * 1000:.1f} ms' if s < 1 else f'{s:.2f} s'
    lines = []
    for r in results:
        fwd = r['what'].startswith('forward')
        what = f"forward+backward, 5 convs, bs {r['bs']}:" if fwd else 'train_cnn, mnist_sample, per epoch:'
        ours, theirs = ('conv2d_scratch', 'F.conv2d') if fwd else ('ScratchConv2d', 'nn.Conv2d')
        lines.append(f"{what:<36} {theirs} {unit(r['torch_median_s'])}, {ours} {unit(r['scratch_median_s'])} "
                     f"({r['ratio']:.2f}x; {r['repeats']} repeats, each {r['ratio_min']:.2f}-{r['ratio_max']:.2f}x)"
                     + (f", accuracy {r['torch_accuracy']} / {r['scratch_accuracy']}" if 'torch_accuracy' in r else ''))
    lines.append(f"(medians; {env['device']}, {env['machine']}, torch {env['torch']}, {env['threads']} thread(s), "
                 f"OMP_NUM_THREADS={env['omp_num_threads']})")
    return lines

def epoch_seconds(make, epochs, dev):
    "Steady-state seconds per epoch (the best epoch after the first) and the final validation accuracy."
    hist = train_cnn('mnist_sample', epochs, 0.01, model=make, device=dev, progress=False).epoch_history.history
    return min(h['seconds'] for h in hist[1:] or hist), hist[-1]['valid_accuracy']

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--repeats', type=int, default=7, help='alternating repeats of the forward + backward timing')
    ap.add_argument('--epochs', type=int, default=2)
    ap.add_argument('--train-repeats', type=int, default=2, help='alternating repeats of the training runs (0: skip)')
    ap.add_argument('--device', default=None)
    ap.add_argument('--threads', type=int, default=None, help='torch.set_num_threads (default: leave as is)')
    a = ap.parse_args()
    if a.threads: torch.set_num_threads(a.threads)
    dev = resolve_device(a.device)
    env = dict(device=str(dev), machine=platform.machine(), torch=torch.__version__, threads=torch.get_num_threads(),
               omp_num_threads=os.environ.get('OMP_NUM_THREADS', 'unset'),
               omp_wait_policy=os.environ.get('OMP_WAIT_POLICY', 'default'))
    results = []
    for bs in (64, 512):
        layers, inner = layer_inputs(bs, dev), max(1, 640 // bs)
        for conv in (F.conv2d, conv2d_scratch): fwd_bwd(conv, layers, 1, dev)  # warm-up
        times = alternate({'torch': lambda: fwd_bwd(F.conv2d, layers, inner, dev),
                           'scratch': lambda: fwd_bwd(conv2d_scratch, layers, inner, dev)}, a.repeats)
        results.append(dict(benchmark='conv_backward_speed', what='forward+backward, 5 convs', bs=bs,
                            repeats=a.repeats, **summary(times), **env))
        print(json.dumps(results[-1]), flush=True)
    if a.train_repeats:
        acc = {}
        def run(name, make):
            s, acc[name] = epoch_seconds(make, a.epochs, dev)
            return s
        times = alternate({'torch': lambda: run('torch', simple_cnn),
                           'scratch': lambda: run('scratch', lambda: scratch_copy(simple_cnn()))}, a.train_repeats)
        results.append(dict(benchmark='conv_backward_speed', what='train_cnn seconds per epoch, mnist_sample', bs=64,
                            epochs=a.epochs, repeats=a.train_repeats, **summary(times),
                            torch_accuracy=round(acc['torch'], 4), scratch_accuracy=round(acc['scratch'], 4), **env))
        print(json.dumps(results[-1]), flush=True)
    print('\n'.join(summary_lines(results, env)))

if __name__ == '__main__': main()
