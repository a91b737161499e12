"""Cost of recording activation statistics: an epoch without statistics, with coursekit's ActivationRecorder and with
fastai's ActivationStats (with_hist=True), on the fast data path, for the 10-class model without batchnorm
(5 hooked layers) and with it (10 hooked layers). First, what one batch's five rows cost to compute alone (mean,
std, the shares and the 40-bin histogram of outputs the shapes of the five layers'): with fastai's arithmetic
(`torch.histc` and `.item()`), with the recorder's whole-tensor operations (`summarize` and one `bincount`, its GPU
path) and with its CPU path (one compiled pass per output). Not part of CI's pass/fail.

    OMP_NUM_THREADS=1 python benchmarks/stats_overhead.py [--epochs 3] [--bs 64] [--repeats 3] [--device cpu|cuda]

Each repeat trains the three configurations one after the other (alternating, so that a change in the machine's load
hits all three alike) and keeps each one's fastest epoch after the first (the first warms up). An epoch is measured
twice: wall-clock seconds and CPU seconds of this process (`time.process_time()`, which a busy machine disturbs much
less; with one thread it is the work done). A ratio is taken within one repeat; printed: its median over the repeats
and its spread (min-max). One line per ratio, then everything as one JSON line.
"""
import argparse, json, os, platform, statistics, time, warnings
warnings.filterwarnings('ignore')
import torch
import torch.nn as nn
from types import SimpleNamespace
from fastai.callback.core import Callback
from fastai.callback.hook import ActivationStats as FastaiActivationStats
from coursekit.core import resolve_device
from coursekit.cnn import train_cnn, default_model
from coursekit.stats import ActivationRecorder, summarize

class EpochClock(Callback):
    "Wall and CPU seconds of each epoch (training and validation)."
    order = -100  # before every other callback's before_epoch
    def before_fit(self): self.wall, self.cpu = [], []
    def before_epoch(self): self.t0, self.c0 = time.perf_counter(), time.process_time()
    def after_epoch(self):
        if torch.cuda.is_available(): torch.cuda.synchronize()
        self.wall.append(time.perf_counter() - self.t0); self.cpu.append(time.process_time() - self.c0)

CONFIGS = {'none': lambda: [], 'ours': lambda: [ActivationRecorder()],
           'fastai': lambda: [FastaiActivationStats(with_hist=True)]}

def best_epoch(cbs, epochs, bs, device, bn):
    "(wall, cpu) seconds of the fastest epoch after the first."
    clock = EpochClock()
    train_cnn('mnist', epochs=epochs, bs=bs, lr=0.06, device=device, cbs=cbs + [clock], progress=False,
              model=default_model('mnist', bn=bn))
    return min(clock.wall[1:] or clock.wall), min(clock.cpu[1:] or clock.cpu)

def summary(values):
    return dict(median=round(statistics.median(values), 3), min=round(min(values), 3), max=round(max(values), 3),
                each=[round(v, 3) for v in values])

def measure(bn, a, dev):
    "Per repeat, each configuration's best epoch; the ratios to 'none' within each repeat."
    runs = {k: [] for k in CONFIGS}
    for _ in range(a.repeats):
        for name, cbs in CONFIGS.items(): runs[name].append(best_epoch(cbs(), a.epochs, a.bs, dev, bn))
    out = dict(model='simple_cnn 10-class' + (' + batchnorm' if bn else ''), hooked_layers=10 if bn else 5)
    for i, clock in enumerate(('wall', 'cpu')):
        out[f'{clock}_seconds_per_epoch'] = {k: summary([r[i] for r in v]) for k, v in runs.items()}
        for k in ('ours', 'fastai'):
            out[f'{k}_vs_none_{clock}'] = summary([o[i] / n[i] for o, n in zip(runs[k], runs['none'])])
    return out

SHAPES = [(64, 8, 14, 14), (64, 16, 7, 7), (64, 32, 4, 4), (64, 64, 2, 2), (64, 10, 1, 1)]  # the five layers' outputs

def row_costs(repeats, n_batches=20):
    """Milliseconds per batch of five outputs (20 batches of random ones, so that not all are in the cache): median of
    `repeats` alternating rounds, per way of computing the rows."""
    g = torch.Generator().manual_seed(0)
    batches = [[torch.randn(s, generator=g) * 2 for s in SHAPES] for _ in range(n_batches)]
    rec = ActivationRecorder()  # its record made by hand for five layers, as `_start` makes it in a fit
    rec.learn = SimpleNamespace(model=nn.Sequential(*[nn.Conv2d(1, 1, 1) for _ in SHAPES]), dls=SimpleNamespace(train=[0]))
    rec._start()
    def fastai_way(o): return (o.mean().item(), o.std().item(), (o <= 0.05).long().sum().item() / o.numel(),
                               o.histc(40, 0, 10))
    def whole_tensor(o):
        s, v = rec._buffers(o); summarize(o, rec.thresh, rec.dead_below, scratch=s); return rec._histogram(o, s, v)
    ways = {'fastai (histc, .item())': fastai_way, 'whole-tensor (bincount)': whole_tensor,
            'one pass': lambda o: rec._record_cpu(0, o)}
    for f in ways.values():
        for o in batches[0]: f(o)  # warm-up: buffers, the compiled pass loaded
    times = {k: [] for k in ways}
    for _ in range(repeats):
        for k, f in ways.items():
            t0 = time.perf_counter()
            for b in batches:
                for o in b: f(o)
            times[k].append((time.perf_counter() - t0) / n_batches * 1e3)
    return {k: summary(v) for k, v in times.items()}

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--epochs', type=int, default=3); ap.add_argument('--bs', type=int, default=64)
    ap.add_argument('--repeats', type=int, default=3); ap.add_argument('--device', default=None)
    a = ap.parse_args()
    dev = resolve_device(a.device)
    res = dict(benchmark='stats_overhead', device=str(dev), machine=platform.machine(), bs=a.bs, epochs=a.epochs,
               repeats=a.repeats, threads=torch.get_num_threads(),
               omp_num_threads=os.environ.get('OMP_NUM_THREADS', 'unset'), models=[])
    if dev.type == 'cpu' and torch.get_num_threads() > 1:
        print(f'note: {torch.get_num_threads()} threads; CPU time adds them up (set OMP_NUM_THREADS=1)')
    if dev.type == 'cpu':
        res['rows_ms_per_batch'] = rows = row_costs(max(a.repeats, 5))
        print('one batch\'s five rows, ms: ' + '; '.join(f"{k} {v['median']:.3f} ({v['min']:.3f}-{v['max']:.3f})"
                                                       for k, v in rows.items()), flush=True)
    for bn in (False, True):
        m = measure(bn, a, dev); res['models'].append(m)
        for clock in ('wall', 'cpu'):
            s = m[f'{clock}_seconds_per_epoch']
            print(f"{m['model']:32s} {clock:4s}: none {s['none']['median']:.3f} s/epoch; " + '; '.join(
                f"{k} {s[k]['median']:.3f} s, {m[f'{k}_vs_none_{clock}']['median']:.3f}x "
                f"({m[f'{k}_vs_none_{clock}']['min']:.3f}-{m[f'{k}_vs_none_{clock}']['max']:.3f})"
                for k in ('ours', 'fastai')), flush=True)
    print(json.dumps(res))

if __name__ == '__main__': main()
