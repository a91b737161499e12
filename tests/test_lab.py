"""`make lab` starts JupyterLab with nbdev's pre-save hook: a notebook saved from the browser is cleaned on disk as
`nbdev_clean` would clean it (execution counts and metadata), so a learner's Run All does not dirty the repository."""
import json, os, socket, subprocess, sys, time, urllib.request, uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOOK = '--ContentsManager.pre_save_hook=nbdev.clean.clean_jupyter'

def test_make_lab_uses_the_hook():
    recipe = (ROOT/'Makefile').read_text().split('\nlab: install\n')[1].split('\n\n')[0]
    assert HOOK in recipe and 'jupyter lab nbs/' in recipe

def free_port():
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def test_a_saved_notebook_is_cleaned(tmp_path):
    port, token, name = free_port(), uuid.uuid4().hex, f'_lab_test_{uuid.uuid4().hex[:8]}.ipynb'
    env = {**os.environ, 'JUPYTER_CONFIG_DIR': str(tmp_path/'cfg'), 'JUPYTER_DATA_DIR': str(tmp_path/'data'),
           'JUPYTER_RUNTIME_DIR': str(tmp_path/'rt')}
    lab = subprocess.Popen([str(Path(sys.executable).parent/'jupyter'), 'lab', 'nbs/', '--no-browser', HOOK,
                            f'--port={port}', f'--IdentityProvider.token={token}', '--allow-root'],
                           cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    nb = {'cells': [{'cell_type': 'code', 'execution_count': 7, 'id': 'abc', 'source': '1 + 1',
                     'metadata': {'scrolled': True, 'execution': {'iopub.status.busy': '2026-12-01T00:00:00Z'}},
                     'outputs': [{'output_type': 'execute_result', 'execution_count': 7, 'metadata': {},
                                  'data': {'text/plain': '2'}}]}],
          'metadata': {'kernelspec': {'display_name': 'python3', 'language': 'python', 'name': 'python3'},
                       'widgets': {'state': {}}}, 'nbformat': 4, 'nbformat_minor': 5}
    url = f'http://127.0.0.1:{port}/api/contents/{name}?token={token}'
    try:
        for _ in range(120):
            try: urllib.request.urlopen(f'http://127.0.0.1:{port}/api/status?token={token}', timeout=2); break
            except OSError: time.sleep(0.5)
        req = urllib.request.Request(url, data=json.dumps({'type': 'notebook', 'content': nb}).encode(), method='PUT',
                                     headers={'Content-Type': 'application/json'})
        urllib.request.urlopen(req, timeout=30)
        saved = json.loads((ROOT/'nbs'/name).read_text())
    finally:
        lab.terminate(); lab.wait(30)
        (ROOT/'nbs'/name).unlink(missing_ok=True)
    cell = saved['cells'][0]
    assert cell['execution_count'] is None and cell['metadata'] == {} and ''.join(cell['outputs'][0]['data']['text/plain']) == '2'
