"`coursekit train --out`: all or nothing. Killed, interrupted or concurrent runs leave the previous complete set."
import json, os, signal, subprocess, sys, time
from pathlib import Path
import pytest

BIN = Path(sys.executable).parent
FILES = {'metrics.json', 'loss.png', 'layer_stats.png', 'color_dim.png', 'gradcam.png', '.coursekit-run.json'}

def start(out, seed, *extra, cwd=None, env=None):
    env = {**os.environ, 'OMP_NUM_THREADS': '1', **(env or {})}
    return subprocess.Popen([str(BIN/'coursekit'), 'train', '--epochs', '1', '--bs', '256', '--device', 'cpu',
                             '--seed', str(seed), '--out', str(out), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=cwd)

def refused(out, cwd=None, env=None):
    "Run `coursekit train --out out`, expected to be refused before training: (stderr, seconds)."
    t = time.time(); p = start(out, 0, cwd=cwd, env=env); _, err = p.communicate(timeout=300)
    assert p.returncode == 2 and err.count('\n') == 1 and 'Traceback' not in err, err
    return err, time.time() - t

def tree(root):
    "Every path under `root` with its bytes (None for folders): what a user owns there."
    return {str(p.relative_to(root)): (None if p.is_dir() else p.read_bytes()) for p in sorted(Path(root).rglob('*'))}

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
    assert not any(n.startswith('.') for n in os.listdir(out) if n != '.coursekit-run.json')

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


# Nothing the user owns is deleted: --out only ever replaces an empty folder or one a coursekit run wrote.

def test_home_is_refused_and_kept(tmp_path):
    home = tmp_path/'home'; (home/'Documents').mkdir(parents=True)
    (home/'Documents'/'thesis.tex').write_text('years of work'); (home/'.bashrc').write_text('alias x=y')
    before = tree(home)
    err, _ = refused(home, cwd=tmp_path)
    assert f'--out {home} holds files coursekit did not write (.bashrc, Documents)' in err
    assert tree(home) == before and not list(tmp_path.glob('.home.*tmp*'))

def test_tilde_from_the_shell_is_the_home(tmp_path):
    home = tmp_path/'home'; home.mkdir(); (home/'notes.txt').write_text('mine')
    r = subprocess.run(f'"{BIN}/coursekit" train --device cpu --out ~', shell=True, capture_output=True, text=True,
                       cwd=tmp_path, env={**os.environ, 'HOME': str(home)}, timeout=300)
    assert r.returncode == 2 and 'coursekit did not write (' in r.stderr and 'notes.txt' in r.stderr, r.stderr
    assert (home/'notes.txt').read_text() == 'mine'  # (matplotlib may add its caches under ~ when it is imported)

@pytest.mark.parametrize('out,msg', [('.', 'is the current folder or one above it'),
                                     ('', 'must name a folder, got an empty string'),
                                     ('..', 'is the current folder or one above it'),
                                     ('/', 'is the current folder or one above it'),
                                     ('/proc', 'mount point')])
def test_project_folder_and_odd_names_are_refused_before_training(tmp_path, out, msg):
    proj = tmp_path/'project'; proj.mkdir(); (proj/'code.py').write_text('print(1)')
    before = tree(tmp_path)
    err, secs = refused(out, cwd=proj)
    assert msg in err, err
    assert tree(tmp_path) == before

def test_pwd_of_a_project_is_refused(tmp_path):
    (tmp_path/'code.py').write_text('print(1)')
    err, _ = refused(tmp_path, cwd=tmp_path)
    assert 'is the current folder' in err and (tmp_path/'code.py').read_text() == 'print(1)'

def test_a_folder_with_other_files_is_refused(tmp_path):
    out = tmp_path/'results'; out.mkdir(); (out/'code.py').write_text('x = 1'); (out/'data').mkdir()
    err, _ = refused(out)
    assert 'coursekit did not write (code.py, data)' in err and tree(out) == {'code.py': b'x = 1', 'data': None}

def test_a_file_added_to_a_run_folder_is_kept(first, tmp_path):
    out, before = first
    (out/'my-notes.txt').write_text('lr 0.01 looked good')
    try:
        err, _ = refused(out)
        assert 'coursekit did not write (my-notes.txt)' in err
        assert snapshot(out) == {**before, 'my-notes.txt': b'lr 0.01 looked good'}
    finally: (out/'my-notes.txt').unlink()

def test_a_planted_or_foreign_marker_does_not_open_the_folder(tmp_path):
    out = tmp_path/'x'; out.mkdir(); (out/'.coursekit-run.json').write_text('not json'); (out/'a.txt').write_text('a')
    err, _ = refused(out)
    assert 'a.txt' in err and (out/'a.txt').read_text() == 'a'

def test_staging_lookalikes_of_the_user_are_kept(tmp_path):
    out = tmp_path/'latest'
    lookalike = tmp_path/'.latest.tmp-mine'; lookalike.mkdir(); (lookalike/'keep.txt').write_text('mine')
    p = start(out, 1); p.communicate(timeout=600)
    assert p.returncode == 0 and (lookalike/'keep.txt').read_text() == 'mine'

def test_a_symlinked_out_writes_into_its_target(tmp_path):
    target = tmp_path/'store'/'run-a'; target.mkdir(parents=True)
    links = tmp_path/'links'; links.mkdir(); (links/'latest').symlink_to(target)
    for seed in (8, 9):  # the second run replaces the target's content, the link stays
        p = start(links/'latest', seed); _, err = p.communicate(timeout=600); assert p.returncode == 0, err
        assert (links/'latest').is_symlink() and os.readlink(links/'latest') == str(target)
        assert set(os.listdir(target)) == FILES and json.loads((target/'metrics.json').read_text())['seed'] == seed
    assert os.listdir(links) == ['latest']  # no debris beside the link
    assert sorted(os.listdir(target.parent)) == ['.run-a.lock', 'run-a']

def test_sigterm_cleans_up(first):
    out, before = first
    old = staging(out); p = start(out, 3)
    wait_for(lambda: staging(out, old), p)
    time.sleep(1); p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 143, err
    assert 'terminated' in err and 'Traceback' not in err, err
    assert snapshot(out) == before and not staging(out)

def test_a_lock_that_cannot_be_opened_is_named(tmp_path):
    out = tmp_path/'r'; (tmp_path/'.r.lock').mkdir()
    err, _ = refused(out)
    assert f'cannot open the lock file {tmp_path}/.r.lock' in err and not out.exists()
    assert sorted(os.listdir(tmp_path)) == ['.r.lock']
