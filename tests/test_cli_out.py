"`coursekit train --out`: all or nothing. Killed, interrupted or concurrent runs leave the previous complete set."
import json, os, signal, subprocess, sys, time
from pathlib import Path
import pytest

BIN = Path(sys.executable).parent
FILES = {'metrics.json', 'loss.png', 'layer_stats.png', 'color_dim.png', 'gradcam.png'}

def start(out, seed, *extra):
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    return subprocess.Popen([str(BIN/'coursekit'), 'train', '--epochs', '1', '--bs', '256', '--device', 'cpu',
                             '--seed', str(seed), '--out', str(out), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)

def snapshot(out):
    return {p.name: p.read_bytes() for p in Path(out).iterdir()}

def staging(out, old=()):
    "The run's staging folders beside `out` (those not in `old`, left by earlier killed runs)."
    return [p for p in Path(out).parent.glob(f'.{Path(out).name}.tmp-*') if p.is_dir() and p not in old]

def wait_for(cond, proc, timeout=300):
    t = time.time()
    while not cond():
        if proc.poll() is not None: pytest.fail(f'the run ended before the point to interrupt it: {proc.stderr.read()}')
        if time.time() - t > timeout: pytest.fail('timed out')
        time.sleep(0.01)

@pytest.fixture(scope='module')
def first(tmp_path_factory):
    out = tmp_path_factory.mktemp('runs')/'latest'
    p = start(out, 1); p.communicate(timeout=600)
    assert p.returncode == 0
    assert set(os.listdir(out)) == FILES
    return out, snapshot(out)

@pytest.mark.parametrize('point', ['training', 'writing figures'])
def test_a_killed_run_leaves_the_previous_set(first, point):
    out, before = first
    old = staging(out); p = start(out, 2)
    if point == 'training': wait_for(lambda: staging(out, old), p)
    else: wait_for(lambda: any((s/'metrics.json').exists() for s in staging(out, old)), p)
    p.kill(); p.wait()
    assert snapshot(out) == before  # byte for byte: neither mixed nor half-written
    assert not any(n.startswith('.') for n in os.listdir(out))

def test_ctrl_c_exits_130_with_one_line(first):
    out, before = first
    old = staging(out); p = start(out, 3)
    wait_for(lambda: staging(out, old), p)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    assert 'interrupted' in err and 'Traceback' not in err and err.strip().count('\n') == 0, err
    assert snapshot(out) == before and not staging(out)

def test_two_runs_at_once(tmp_path):
    out = tmp_path/'shared'
    a = start(out, 4); wait_for(lambda: staging(out), a)
    b = start(out, 5); _, err_b = b.communicate(timeout=300)
    assert b.returncode == 2 and 'being written by another run' in err_b
    a.communicate(timeout=600)
    assert a.returncode == 0 and set(os.listdir(out)) == FILES
    assert json.loads((out/'metrics.json').read_text())['seed'] == 4

def test_a_complete_rerun_replaces_the_set_whole(first, tmp_path):
    out = tmp_path/'again'
    for seed in (6, 7):
        p = start(out, seed); p.communicate(timeout=600); assert p.returncode == 0
        assert set(os.listdir(out)) == FILES and json.loads((out/'metrics.json').read_text())['seed'] == seed
    assert not staging(out)

@pytest.mark.parametrize('args,msg', [(('--seed', '1' * 25), 'argument --seed: must be in [0, 2**32 - 1]'),
                                      (('--device', 'meta'), 'cpu, cuda or mps'),
                                      (('--seed', '-1'), 'argument --seed: must be in')])
def test_cli_bad_values_exit_2(tmp_path, args, msg):
    r = subprocess.run([str(BIN/'coursekit'), 'train', '--out', str(tmp_path/'x'), *args], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 2 and msg in r.stderr and r.stderr.count('\n') == 1, r.stderr
    assert not (tmp_path/'x').exists()
