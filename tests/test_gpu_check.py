"tools/gpu_check.py runs every step on the CPU with tiny sizes (--cpu-dry-run), so it cannot rot between GPU runs."
import json, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

def test_gpu_check_dry_run(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT/'tools'/'gpu_check.py'), '--cpu-dry-run', '--out', str(tmp_path)],
                       capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    rep = json.loads((tmp_path/'report.json').read_text())
    assert rep['ok'] and rep['dry_run'] and not rep['errors']
    assert set(rep['results']) == {'tests', 'training', 'synchronisations', 'gradcam'}
    assert [r['data'] for r in rep['results']['training']] == ['mnist'] * 3 + ['mnist_sample']
    assert all(r['seconds_per_epoch'] > 0 and 0 <= r['valid_accuracy'] <= 1 for r in rep['results']['training'])
    assert rep['results']['synchronisations']['stats_overhead'] > 0
    assert {r['model'] for r in rep['results']['gradcam']} == {'resnet18 (random)', 'EfficientNet-Lite0 (pretrained)'}
    assert '| data | precision |' in (tmp_path/'report.md').read_text()

def test_gpu_check_refuses_without_a_gpu_unless_dry():
    import torch
    if torch.cuda.is_available(): return
    r = subprocess.run([sys.executable, str(ROOT/'tools'/'gpu_check.py')], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 2 and 'no CUDA GPU here' in r.stderr
