"""Cost of recording activation statistics: seconds per epoch without statistics, with coursekit's ActivationRecorder
and with fastai's ActivationStats (with_hist=True), on the fast data path. Prints one JSON line. Not part of CI's
pass/fail.

    python benchmarks/stats_overhead.py [--epochs 3] [--bs 64] [--device cpu|cuda]

Steady state: the fastest epoch after the first, each configuration run `--repeats` times, best kept;
for the 10-class simple_cnn without batchnorm (5 hooked layers) and with it (10 hooked layers).
"""
import argparse, json, os, platform, warnings
warnings.filterwarnings('ignore')
import torch
from fastai.callback.hook import ActivationStats as FastaiActivationStats
from coursekit.core import resolve_device
from coursekit.cnn import train_cnn, default_model
from coursekit.stats import ActivationRecorder

def epoch_seconds(cbs_fn, epochs, bs, device, repeats, bn):
    best = float('inf')
    for _ in range(repeats):
        learn = train_cnn('mnist', epochs=epochs, bs=bs, lr=0.06, device=device, cbs=cbs_fn(), progress=False,
                          model=default_model("mnist", bn=bn))
        best = min(best, min(h['seconds'] for h in learn.epoch_history.history[1:]))
    return best

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--epochs', type=int, default=3); ap.add_argument('--bs', type=int, default=64)
    ap.add_argument('--repeats', type=int, default=2); ap.add_argument('--device', default=None)
    a = ap.parse_args()
    dev = resolve_device(a.device)
    res = dict(benchmark='stats_overhead', device=str(dev), machine=platform.machine(), bs=a.bs, epochs=a.epochs,
               threads=torch.get_num_threads(), omp_wait_policy=os.environ.get('OMP_WAIT_POLICY', 'default'), models=[])
    for bn in (False, True):  # 5 hooked layers (convs) or 10 (convs and batchnorms)
        t = {name: epoch_seconds(f, a.epochs, a.bs, dev, a.repeats, bn) for name, f in
             [('none', lambda: []), ('ours', lambda: [ActivationRecorder()]), ('fastai', lambda: [FastaiActivationStats(with_hist=True)])]}
        res['models'].append(dict(model='simple_cnn 10-class' + (' + batchnorm' if bn else ''), seconds_per_epoch={k: round(v, 3) for k, v in t.items()},
                                  ours_vs_none=round(t['ours'] / t['none'], 3), fastai_vs_none=round(t['fastai'] / t['none'], 3),
                                  ours_vs_fastai=round(t['ours'] / t['fastai'], 3)))
    print(json.dumps(res))

if __name__ == '__main__': main()
