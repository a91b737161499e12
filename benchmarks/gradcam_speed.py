"""Grad-CAM cost against a plain forward pass, batch of 8 at 224x224:

- resnet18 (random weights): grad_cam on layer4;
- the pretrained EfficientNet-Lite0 (`imagenet_classifier`): grad_cam at its last feature maps (bn2, 7x7) and at an
  earlier stage (blocks.4, 14x14).

Prints one JSON line per model: best-of-n seconds of a forward pass (eval, no_grad) and of grad_cam, their ratio
(target: at most 1.3 at the last layer), and the peak memory each needs: on CUDA `max_memory_allocated`, on the CPU
the rise of peak resident memory (Linux VmHWM, reset after set-up) in a fresh subprocess per case. Not part of CI.

    python benchmarks/gradcam_speed.py [--device cpu|cuda] [--repeats 5]
"""
import argparse, json, os, platform, subprocess, sys, time, warnings
warnings.filterwarnings('ignore')
import torch
from torchvision.models import resnet18
from coursekit.cam import grad_cam
from coursekit.imagenet import imagenet_classifier

CASES = {'resnet18': ('resnet18', ['layer4']), 'efficientnet_lite0': ('imagenet', ['bn2', 'blocks.4'])}

def build(name, dev):
    torch.manual_seed(0)
    m = (resnet18() if name == 'resnet18' else imagenet_classifier()).eval().to(dev)
    return m, torch.randn(8, 3, 224, 224, device=dev)

def run(m, x, what):
    return torch.no_grad()(m)(x) if what == 'forward' else grad_cam(m, x, what)

def best(f, n, dev):
    ts = []
    for _ in range(n):
        if dev.type == 'cuda': torch.cuda.synchronize()
        t = time.perf_counter(); f()
        if dev.type == 'cuda': torch.cuda.synchronize()
        ts.append(time.perf_counter() - t)
    return min(ts)

def peak_mb(name, what, dev):
    "Extra memory one call needs: CUDA's allocator peak, or on the CPU the rise of peak RSS in a fresh process."
    if dev.type == 'cuda':
        m, x = build(name, dev); torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated(); run(m, x, what); torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    code = (f'import torch; from benchmarks.gradcam_speed import build, run, rss_kb, reset_peak\n'
            f'm, x = build({name!r}, torch.device("cpu")); reset_peak(); before = rss_kb("VmRSS")\n'
            f'run(m, x, {what!r}); print((rss_kb("VmHWM") - before) / 1024)')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout
    return float(out.strip().splitlines()[-1])

def rss_kb(field: str) -> int:
    "VmRSS (resident now) or VmHWM (peak resident since the last reset) of this process, in kB (Linux)."
    return int(next(l for l in open('/proc/self/status') if l.startswith(field)).split()[1])

def reset_peak():
    "Reset the kernel's peak-RSS mark (VmHWM), so that it measures from here (Linux 4.0+)."
    with open('/proc/self/clear_refs', 'w') as f: f.write('5')

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--device', default='cpu'); ap.add_argument('--repeats', type=int, default=5)
    a = ap.parse_args()
    dev = torch.device(a.device)
    for name, (label, layers) in CASES.items():
        m, x = build(name, dev)
        row = dict(benchmark='gradcam_speed', device=str(dev), machine=platform.machine(), threads=torch.get_num_threads(),
                   omp_wait_policy=os.environ.get('OMP_WAIT_POLICY', 'default'),
                   model=name, batch=8, size=224)
        for what in ['forward'] + layers:
            run(m, x, what)  # warm-up
            row[f'{what}_s'] = round(best(lambda: run(m, x, what), a.repeats, dev), 4)
            row[f'{what}_peak_mb'] = round(peak_mb(name, what, dev), 1)
            if what != 'forward': row[f'{what}_ratio'] = round(row[f'{what}_s'] / row['forward_s'], 3)
        print(json.dumps(row), flush=True)

if __name__ == '__main__': main()
