"""Check and time coursekit on a CUDA machine, in one command (under 8 minutes on one GPU).

1. the environment: GPU, torch / CUDA versions, coursekit version, threads;
2. the CUDA tests (`pytest -m cuda`) and the notebooks' `#| cuda` cells (`nbdev_test --flags cuda`);
3. training on the fast path: the 10-class batchnorm model, 3 epochs after a warm-up epoch, in fp32, bf16 and with
   channels_last, and the MNIST_SAMPLE model: seconds per epoch, images/s, accuracy, peak GPU memory;
4. host-device synchronisations per training batch (`torch.cuda.set_sync_debug_mode('warn')`): a plain fastai
   Learner, `train_cnn`, and `train_cnn` with `ActivationRecorder`, and the time the statistics cost;
5. Grad-CAM against a forward pass: resnet18 (random weights) and the pretrained EfficientNet-Lite0, batch 8 and 64;
6. one JSON report and a Markdown table in --out; the exit code is 1 if any check failed.

`--cpu-dry-run` runs every step on the CPU with tiny sizes (CI runs it, so the script cannot rot between GPU runs).

On a machine with PyTorch + CUDA but no internet, with the wheels from `tools/gpu_wheels.sh` in `.whl/`:

    python3 -m pip install -q --no-index --no-deps --target /tmp/ck .whl/*.whl && export PYTHONPATH=/tmp/ck:$PWD
    python3 tools/gpu_check.py --out runs/gpu_check
"""
import argparse, json, os, platform, subprocess, sys, time, traceback, warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the checkout's coursekit, also when it is not installed
warnings.filterwarnings('ignore', message='.*torch.jit.script.*is deprecated')
warnings.filterwarnings('ignore', message=".*'mode.chained_assignment' option is deprecated")

import torch
import torch.nn.functional as F

def sync(dev):
    if dev.type == 'cuda': torch.cuda.synchronize()

def peak_mb(dev):
    return round(torch.cuda.max_memory_allocated() / 2**20, 1) if dev.type == 'cuda' else None

def reset_peak(dev):
    if dev.type == 'cuda': torch.cuda.reset_peak_memory_stats()

def environment(dev) -> dict:
    import coursekit
    env = dict(python=platform.python_version(), machine=platform.machine(), torch=torch.__version__,
               cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version() if torch.cuda.is_available() else None,
               coursekit=coursekit.__version__, device=str(dev), threads=torch.get_num_threads(),
               omp_wait_policy=os.environ.get('OMP_WAIT_POLICY', 'default'))
    if dev.type == 'cuda':
        p = torch.cuda.get_device_properties(dev)
        env.update(gpu=p.name, gpu_memory_gb=round(p.total_memory / 2**30, 1), multiprocessors=p.multi_processor_count)
    return env

def run_cmd(cmd, timeout) -> dict:
    "Run a command from the checkout's root; its exit code, seconds and the end of its output."
    t = time.perf_counter()
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                       env={**os.environ, 'PYTHONPATH': os.pathsep.join([str(ROOT), os.environ.get('PYTHONPATH', '')])})
    return dict(command=' '.join(map(str, cmd)), exit_code=r.returncode, seconds=round(time.perf_counter() - t, 1),
                output_tail=(r.stdout + r.stderr)[-1500:])

def cuda_tests(dry: bool) -> dict:
    "pytest -m cuda, and nbdev_test --flags cuda on the notebooks that have `#| cuda` cells."
    res = {'pytest': run_cmd([sys.executable, '-m', 'pytest', '-q', '-m', 'cuda', '-p', 'no:cacheprovider', 'tests'], 600)}
    res['pytest']['ok'] = res['pytest']['exit_code'] in ((0, 5) if dry else (0,))  # 5: nothing collected
    nbs = [p for p in sorted((ROOT/'nbs').glob('*.ipynb')) if '#| cuda' in p.read_text()]
    nbdev_test = Path(sys.executable).parent/'nbdev_test'
    cmd = [str(nbdev_test) if nbdev_test.exists() else 'nbdev_test', '--flags', 'cuda', '--n_workers', '1']
    res['notebooks'] = [dict(run_cmd(cmd + ['--path', str(p)], 900), notebook=p.name) for p in nbs]
    for r in res['notebooks']: r['ok'] = r['exit_code'] == 0
    res['ok'] = res['pytest']['ok'] and all(r['ok'] for r in res['notebooks'])
    return res

def small_dls(data, bs, dev, n):
    "The first `n` training and validation images of `data` as fast DataLoaders (for the dry run)."
    from fastai.data.core import DataLoaders
    from coursekit.core import DATASETS
    from coursekit.data import TensorDataLoader, load_mnist, load_mnist_sample
    x_tr, y_tr, x_va, y_va = (load_mnist_sample if data == 'mnist_sample' else load_mnist)()
    prep = lambda x: (x[:n, None].float() / 255).to(dev)
    vocab = list(DATASETS[data])
    return DataLoaders(TensorDataLoader(prep(x_tr), y_tr[:n].to(dev), bs=bs, shuffle=True, drop_last=True, vocab=vocab),
                       TensorDataLoader(prep(x_va), y_va[:n].to(dev), bs=bs, vocab=vocab), device=dev)

def training(dev, dry: bool) -> list:
    "Seconds per epoch after a warm-up epoch, images/s, accuracy and peak memory for each configuration."
    from coursekit.cnn import train_cnn
    epochs, bs, rows = (2, 32, []) if dry else (4, 512, [])  # the first epoch is the warm-up
    configs = [('mnist', 'fp32', False), ('mnist', 'bf16', False), ('mnist', 'fp32', True), ('mnist_sample', 'fp32', False)]
    for data, precision, cl in configs:
        if dev.type != 'cuda': precision = 'fp32'  # mixed precision needs CUDA; the dry run exercises the rest
        reset_peak(dev)
        dls = small_dls(data, bs, dev, 256) if dry else None
        learn = train_cnn(data, epochs=epochs, lr=0.01 if data == 'mnist_sample' else 0.1, bs=bs, device=dev,
                          precision=precision, channels_last=cl, progress=False, dls=dls)
        h = learn.epoch_history.history
        secs = sum(e['seconds'] for e in h[1:]) / len(h[1:])
        n_train = len(learn.dls.train) * bs
        rows.append(dict(data=data, precision=precision, channels_last=cl, epochs_timed=len(h) - 1, batch_size=bs,
                         seconds_per_epoch=round(secs, 4), images_per_second=round(n_train / secs),
                         valid_accuracy=round(h[-1]['valid_accuracy'], 4), peak_memory_mb=peak_mb(dev)))
    return rows

def syncs_per_batch(fit, dev) -> float | None:
    "Host-device synchronisations per training batch during `fit()` (CUDA's sync debug mode), or None on the CPU."
    if dev.type != 'cuda': fit(); return None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        torch.cuda.set_sync_debug_mode('warn')
        try: learn = fit()
        finally: torch.cuda.set_sync_debug_mode('default')
    n = sum('synchroniz' in str(w.message) for w in caught)
    return round(n / (learn.n_epoch * len(learn.dls.train)), 2)

def synchronisations(dev, dry: bool) -> dict:
    "Syncs per training batch: plain fastai, train_cnn, train_cnn + ActivationRecorder; and the statistics' cost."
    from fastai.learner import Learner
    from fastai.metrics import accuracy
    from coursekit.cnn import train_cnn, default_model
    from coursekit.stats import ActivationRecorder
    bs = 32 if dry else 512
    dls = lambda: small_dls('mnist', bs, dev, 256) if dry else None
    def plain():
        from coursekit.data import mnist_dls
        learn = Learner(dls() or mnist_dls('mnist', bs=bs, device=dev), default_model('mnist').to(dev),
                        loss_func=F.cross_entropy, metrics=accuracy)
        with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(2, 0.1)
        return learn
    run = lambda cbs: train_cnn('mnist', epochs=2, lr=0.1, bs=bs, device=dev, progress=False, cbs=cbs, dls=dls())
    res = dict(plain_fastai=syncs_per_batch(plain, dev), train_cnn=syncs_per_batch(lambda: run([]), dev),
               train_cnn_with_stats=syncs_per_batch(lambda: run([ActivationRecorder()]), dev))
    if res['train_cnn'] is not None:
        res['ours_per_batch'] = round(res['train_cnn_with_stats'] - res['plain_fastai'], 2)  # what our callbacks add
    times = {}
    for k, make in [('no_stats', lambda: []), ('with_stats', lambda: [ActivationRecorder()])]:
        times[k] = min(e['seconds'] for e in run(make()).epoch_history.history[1:])
    res.update(seconds_per_epoch=times, stats_overhead=round(times['with_stats'] / times['no_stats'], 3))
    return res

def gradcam_speed(dev, dry: bool) -> list:
    "Best-of-3 seconds of a forward pass and of grad_cam at the last feature maps, and their ratio."
    from torchvision.models import resnet18
    from coursekit.cam import grad_cam
    from coursekit.imagenet import imagenet_classifier
    size, batches = (64, [2]) if dry else (224, [8, 64])
    rows = []
    for name, make, layer in [('resnet18 (random)', lambda: resnet18(), 'layer4'),
                              ('EfficientNet-Lite0 (pretrained)', imagenet_classifier, 'bn2')]:
        m = make().eval().to(dev)
        for b in batches:
            x = torch.randn(b, 3, size, size, device=dev)
            def best(f):
                f(); ts = []  # warm-up
                for _ in range(3): sync(dev); t = time.perf_counter(); f(); sync(dev); ts.append(time.perf_counter() - t)
                return min(ts)
            reset_peak(dev); t_f = best(lambda: torch.no_grad()(m)(x)); mem_f = peak_mb(dev)
            reset_peak(dev); t_g = best(lambda: grad_cam(m, x, layer)); mem_g = peak_mb(dev)
            rows.append(dict(model=name, layer=layer, batch=b, size=size, forward_s=round(t_f, 5), grad_cam_s=round(t_g, 5),
                             ratio=round(t_g / t_f, 3), forward_peak_mb=mem_f, grad_cam_peak_mb=mem_g))
    return rows

def markdown(report) -> str:
    env, lines = report['environment'], []
    lines.append(f"# coursekit GPU check: {env.get('gpu', env['device'])}\n")
    lines.append(f"torch {env['torch']}, CUDA {env['cuda']}, coursekit {env['coursekit']}, python {env['python']}; "
                 f"{'dry run on the CPU' if report['dry_run'] else 'GPU run'}; all checks passed: {report['ok']}\n")
    if 'training' in report['results']:
        lines += ['| data | precision | channels_last | s/epoch | images/s | accuracy | peak MB |', '|---|---|---|---|---|---|---|']
        lines += [f"| {r['data']} | {r['precision']} | {r['channels_last']} | {r['seconds_per_epoch']} | "
                  f"{r['images_per_second']} | {r['valid_accuracy']} | {r['peak_memory_mb']} |" for r in report['results']['training']]
    if 'synchronisations' in report['results']:
        s = report['results']['synchronisations']
        lines.append(f"\nsyncs per training batch: plain fastai {s['plain_fastai']}, train_cnn {s['train_cnn']}, "
                     f"with ActivationRecorder {s['train_cnn_with_stats']}; statistics cost {s['stats_overhead']}x\n")
    if 'gradcam' in report['results']:
        lines += ['| model | batch | forward s | grad_cam s | ratio |', '|---|---|---|---|---|']
        lines += [f"| {r['model']} | {r['batch']} | {r['forward_s']} | {r['grad_cam_s']} | {r['ratio']} |"
                  for r in report['results']['gradcam']]
    for k, v in report['errors'].items(): lines.append(f'\n**{k} failed**: {v.splitlines()[-1] if v else ""}')
    return '\n'.join(lines) + '\n'

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--cpu-dry-run', action='store_true', help='every step on the CPU with tiny sizes (for CI)')
    ap.add_argument('--out', default='runs/gpu_check', help='folder for report.json and report.md')
    ap.add_argument('--skip', nargs='*', default=[], choices=['tests', 'training', 'synchronisations', 'gradcam'])
    a = ap.parse_args(argv)
    if not a.cpu_dry_run and not torch.cuda.is_available():
        print('gpu_check: no CUDA GPU here; use --cpu-dry-run to exercise the script on the CPU', file=sys.stderr)
        return 2
    dev, dry = torch.device('cpu' if a.cpu_dry_run else 'cuda'), a.cpu_dry_run
    report = dict(dry_run=dry, environment=environment(dev), results={}, errors={})
    print(json.dumps(report['environment']), flush=True)
    steps = [('tests', cuda_tests), ('training', training), ('synchronisations', synchronisations), ('gradcam', gradcam_speed)]
    for name, step in steps:
        if name in a.skip: continue
        t = time.perf_counter()
        try:
            res = step(dry) if name == 'tests' else step(dev, dry)
            report['results'][name] = res
            if isinstance(res, dict) and res.get('ok') is False: report['errors'][name] = 'a command failed (see results)'
        except Exception: report['errors'][name] = traceback.format_exc()
        print(f'{name}: {"failed" if name in report["errors"] else "ok"} ({time.perf_counter() - t:.0f} s)', flush=True)
    report['ok'] = not report['errors']
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    (out/'report.json').write_text(json.dumps(report, indent=2))
    (out/'report.md').write_text(markdown(report))
    print(markdown(report))
    return 0 if report['ok'] else 1

if __name__ == '__main__': sys.exit(main())
