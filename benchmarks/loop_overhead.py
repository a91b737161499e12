"""How much fastai's Learner costs over a bare PyTorch loop: `train_cnn` against a hand-written loop with the same
model, the same data tensors, AdamW + OneCycleLR (fastai's defaults: betas (0.9, 0.99), eps 1e-5, weight decay 0.01,
25x warm-up division, 1e5 final division, cosine annealing, 25% warm-up) and the same batches, at bs 64 and 512.

Prints one JSON line per batch size: steady-state seconds per epoch (best epoch after the first, best of the
alternating repeats), the ratio, and
the thread settings it ran with. Not part of CI.

    python benchmarks/loop_overhead.py [--epochs 3] [--device cpu|cuda] [--threads N]
"""
import argparse, json, os, platform, time, warnings
warnings.filterwarnings('ignore')
import torch
import torch.nn.functional as F
from coursekit.core import resolve_device
from coursekit.cnn import train_cnn, default_model
from coursekit.data import load_mnist

def bare_loop(xt, yt, xv, yv, bs, epochs, lr, dev, seed=42):
    "Seconds per epoch and final accuracy of a plain loop: shuffled batches, AdamW, OneCycleLR, then validation."
    torch.manual_seed(seed)
    model = default_model('mnist').to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.99), eps=1e-5, weight_decay=0.01)
    steps = len(xt) // bs
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps, pct_start=0.25,
                                                div_factor=25., final_div_factor=1e5, base_momentum=0.85, max_momentum=0.95)
    times = []
    for _ in range(epochs):
        t0 = time.perf_counter(); model.train()
        order = torch.randperm(len(xt), device=dev)
        for i in range(steps):
            idx = order[i * bs:(i + 1) * bs]
            loss = F.cross_entropy(model(xt[idx]), yt[idx])
            opt.zero_grad(set_to_none=True); loss.backward(); opt.step(); sched.step()
        model.eval(); correct = torch.zeros((), device=dev)
        with torch.no_grad():
            for i in range(0, len(xv), bs): correct += (model(xv[i:i + bs]).argmax(1) == yv[i:i + bs]).sum()
        acc = float(correct) / len(xv)  # one sync per epoch, as train_cnn's
        times.append(time.perf_counter() - t0)
    return min(times[1:] or times), acc

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--epochs', type=int, default=3); ap.add_argument('--device', default=None)
    ap.add_argument('--threads', type=int, default=None, help='torch.set_num_threads (default: leave as is)')
    ap.add_argument('--repeats', type=int, default=3, help='alternate the two this many times, keep the best of each')
    a = ap.parse_args()
    if a.threads: torch.set_num_threads(a.threads)
    dev = resolve_device(a.device)
    x_tr, y_tr, x_va, y_va = load_mnist()
    prep = lambda x: (x[:, None].float() / 255).to(dev)
    xt, yt, xv, yv = prep(x_tr), y_tr.to(dev), prep(x_va), y_va.to(dev)
    for bs in (64, 512):
        lr = 0.01
        t_bare = t_ck = float('inf')
        for _ in range(a.repeats):  # alternating, so that a change in the machine's load hits both alike
            t, acc_bare = bare_loop(xt, yt, xv, yv, bs, a.epochs, lr, dev); t_bare = min(t_bare, t)
            learn = train_cnn('mnist', epochs=a.epochs, lr=lr, bs=bs, device=dev, progress=False)
            hist = learn.epoch_history.history
            t_ck = min(t_ck, min(h['seconds'] for h in hist[1:] or hist))
        print(json.dumps(dict(benchmark='loop_overhead', device=str(dev), machine=platform.machine(), bs=bs, epochs=a.epochs,
                              threads=torch.get_num_threads(), omp_wait_policy=os.environ.get('OMP_WAIT_POLICY', 'default'),
                              bare_s=round(t_bare, 3), coursekit_s=round(t_ck, 3), ratio=round(t_ck / t_bare, 3),
                              bare_accuracy=round(acc_bare, 4), coursekit_accuracy=round(hist[-1]['valid_accuracy'], 4))), flush=True)

if __name__ == '__main__': main()
