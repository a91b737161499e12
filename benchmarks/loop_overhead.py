"""How much fastai's Learner costs over a bare PyTorch loop: `train_cnn` against a hand-written loop with the same
model, the same data tensors, AdamW + OneCycleLR (fastai's defaults: betas (0.9, 0.99), eps 1e-5, weight decay 0.01,
25x warm-up division, 1e5 final division, cosine annealing, 25% warm-up) and the same batches, at bs 64 and 512.

The two alternate `--repeats` times, so that a change in the machine's load hits both alike. For each run the
steady-state epoch is the fastest after the first (which pays for warm-up), timed twice: wall-clock seconds and the
process's CPU seconds (`time.process_time`; with one thread, the CPU time is what a busy shared machine inflates
least). Prints one JSON line per batch size: per measure (wall, cpu), the median seconds per epoch of each, the
ratio of every repeat, their median and spread (min, max), and the extra microseconds per training batch; then
`cpu_per_step`, the same for the CPU time from one training batch to the next, the lower decile over the steady
epochs' steps (on a shared machine other processes only ever add time, in bursts that an epoch's total takes in
but that a low quantile of hundreds of steps leaves out); and the thread settings it ran with. Not part of CI.

    python benchmarks/loop_overhead.py [--epochs 3] [--repeats 5] [--bs 64 512] [--device cpu|cuda] [--threads 1]
"""
import argparse, json, os, platform, statistics, time, warnings
warnings.filterwarnings('ignore')
import torch
import torch.nn.functional as F
from fastai.callback.core import Callback
from coursekit.core import resolve_device
from coursekit.cnn import train_cnn, default_model
from coursekit.data import load_mnist

def _sync(dev):
    if dev.type == 'cuda': torch.cuda.synchronize()

class EpochClock(Callback):
    "Wall and CPU seconds of each epoch of a fastai fit (training and validation), and the CPU time of each step."
    order = -100  # first at every event
    def before_fit(self): self.wall, self.cpu, self.steps = [], [], []
    def before_epoch(self): self.w0, self.c0, self.ticks = time.perf_counter(), time.process_time(), []
    def before_batch(self):
        if self.learn.training: self.ticks.append(time.process_time())  # from one training batch to the next
    def after_epoch(self):
        _sync(self.learn.dls.device)
        self.wall.append(time.perf_counter() - self.w0); self.cpu.append(time.process_time() - self.c0)
        self.steps.append([b - a for a, b in zip(self.ticks, self.ticks[1:])])

def bare_loop(xt, yt, xv, yv, bs, epochs, lr, dev, seed=42):
    "Per-epoch wall and CPU seconds and the final accuracy of a plain loop: shuffled batches, AdamW, OneCycleLR."
    torch.manual_seed(seed)
    model = default_model('mnist').to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.99), eps=1e-5, weight_decay=0.01)
    steps = len(xt) // bs
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps, pct_start=0.25,
                                                div_factor=25., final_div_factor=1e5, base_momentum=0.85, max_momentum=0.95)
    wall, cpu, step_times = [], [], []
    for _ in range(epochs):
        w0, c0 = time.perf_counter(), time.process_time(); model.train()
        order, ticks = torch.randperm(len(xt), device=dev), []
        for i in range(steps):
            ticks.append(time.process_time())
            idx = order[i * bs:(i + 1) * bs]
            loss = F.cross_entropy(model(xt[idx]), yt[idx])
            opt.zero_grad(set_to_none=True); loss.backward(); opt.step(); sched.step()
        model.eval(); correct = torch.zeros((), device=dev)
        with torch.no_grad():
            for i in range(0, len(xv), bs): correct += (model(xv[i:i + bs]).argmax(1) == yv[i:i + bs]).sum()
        acc = float(correct) / len(xv)  # one sync per epoch, as train_cnn's
        _sync(dev); wall.append(time.perf_counter() - w0); cpu.append(time.process_time() - c0)
        step_times.append([b - a for a, b in zip(ticks, ticks[1:])])
    return wall, cpu, step_times, acc

def step_time(step_times):
    "The lower decile of the CPU times of the training steps (batch to batch), over the epochs after the first."
    times = sorted(t for epoch in (step_times[1:] or step_times) for t in epoch)
    return times[len(times) // 10]

def steady(times): return min(times[1:] or times)

def summary(bare, ck, n_batches, unit='s', digits=3):
    "Median time of each, every repeat's ratio, their median and spread, and the extra microseconds per batch."
    ratios = [c / b for b, c in zip(bare, ck)]
    extra = [(c - b) / n_batches * 1e6 for b, c in zip(bare, ck)]
    scale = 1e6 if unit == 'us' else 1
    return dict(**{f'bare_{unit}': round(statistics.median(bare) * scale, digits),
                   f'coursekit_{unit}': round(statistics.median(ck) * scale, digits)},
                ratio=round(statistics.median(ratios), 3), ratio_spread=[round(min(ratios), 3), round(max(ratios), 3)],
                ratios=[round(r, 3) for r in ratios], overhead_us_per_train_batch=round(statistics.median(extra)),
                overhead_us_spread=[round(min(extra)), round(max(extra))])

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--epochs', type=int, default=3); ap.add_argument('--device', default=None)
    ap.add_argument('--bs', type=int, nargs='+', default=[64, 512])
    ap.add_argument('--threads', type=int, default=1, help='torch.set_num_threads (0: leave as is)')
    ap.add_argument('--repeats', type=int, default=5, help='alternate the two this many times (at least 3)')
    a = ap.parse_args()
    if a.threads: torch.set_num_threads(a.threads)
    dev = resolve_device(a.device)
    x_tr, y_tr, x_va, y_va = load_mnist()
    prep = lambda x: (x[:, None].float() / 255).to(dev)
    xt, yt, xv, yv = prep(x_tr), y_tr.to(dev), prep(x_va), y_va.to(dev)
    for bs in a.bs:
        lr, runs = 0.01, {k: {'wall': [], 'cpu': [], 'step': []} for k in ('bare', 'ck')}
        for _ in range(max(a.repeats, 3)):
            wall, cpu, step_times, acc_bare = bare_loop(xt, yt, xv, yv, bs, a.epochs, lr, dev)
            runs['bare']['wall'].append(steady(wall)); runs['bare']['cpu'].append(steady(cpu))
            runs['bare']['step'].append(step_time(step_times))
            clock = EpochClock()
            learn = train_cnn('mnist', epochs=a.epochs, lr=lr, bs=bs, device=dev, progress=False, cbs=[clock])
            runs['ck']['wall'].append(steady(clock.wall)); runs['ck']['cpu'].append(steady(clock.cpu))
            runs['ck']['step'].append(step_time(clock.steps))
        n = len(xt) // bs
        print(json.dumps(dict(benchmark='loop_overhead', device=str(dev), machine=platform.machine(), bs=bs,
                              epochs=a.epochs, repeats=max(a.repeats, 3), train_batches=n,
                              threads=torch.get_num_threads(), omp_num_threads=os.environ.get('OMP_NUM_THREADS'),
                              omp_wait_policy=os.environ.get('OMP_WAIT_POLICY', 'default'),
                              **{m: summary(runs['bare'][m], runs['ck'][m], n) for m in ('wall', 'cpu')},
                              cpu_per_step=summary(runs['bare']['step'], runs['ck']['step'], 1, 'us', 0),
                              bare_accuracy=round(acc_bare, 4),
                              coursekit_accuracy=round(learn.epoch_history.history[-1]['valid_accuracy'], 4))),
              flush=True)

if __name__ == '__main__': main()
