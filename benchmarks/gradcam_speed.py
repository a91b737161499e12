"""Grad-CAM cost against a plain forward pass: resnet18 (random weights), batch of 8 at 224x224.

Prints one JSON line: best-of-n seconds of a forward pass (eval, no_grad) and of coursekit's grad_cam on layer4,
and their ratio (target: at most 1.3). Not part of CI's pass/fail.

    python benchmarks/gradcam_speed.py [--device cpu|cuda] [--repeats 5]
"""
import argparse, json, platform, time, warnings
warnings.filterwarnings('ignore')
import torch
from torchvision.models import resnet18
from coursekit.cam import grad_cam

def best(f, n, dev):
    ts = []
    for _ in range(n):
        if dev.type == 'cuda': torch.cuda.synchronize()
        t = time.perf_counter(); f()
        if dev.type == 'cuda': torch.cuda.synchronize()
        ts.append(time.perf_counter() - t)
    return min(ts)

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--device', default='cpu'); ap.add_argument('--repeats', type=int, default=5)
    a = ap.parse_args()
    dev = torch.device(a.device)
    torch.manual_seed(0)
    m, x = resnet18().eval().to(dev), torch.randn(8, 3, 224, 224, device=dev)
    fwd = lambda: torch.no_grad()(m)(x)
    cam = lambda: grad_cam(m, x, m.layer4)
    fwd(); cam()  # warm-up
    t_f, t_c = best(fwd, a.repeats, dev), best(cam, a.repeats, dev)
    print(json.dumps(dict(benchmark='gradcam_speed', device=str(dev), machine=platform.machine(), threads=torch.get_num_threads(),
                          model='resnet18', batch=8, size=224, forward_s=round(t_f, 4), grad_cam_s=round(t_c, 4), ratio=round(t_c / t_f, 3))))

if __name__ == '__main__': main()
