"""How long the kernel explorer takes from a change to its picture, in a real browser: JupyterLab driven by headless
Chromium (Debian's chromium and chromium-driver). It types a new value into the centre cell of the kernel and
measures, in the browser, the time from the Enter key that commits it to the moment the new picture is in the page;
then it sends a burst of changes and counts the pictures drawn for them.
Usage: python benchmarks/explorer_latency.py [--changes 8]"""
import argparse, json, os, shutil, socket, statistics, subprocess, sys, tempfile, time, urllib.request, uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CELLS = ['import time, torch; torch.set_num_threads(1)\nfrom coursekit.kernels import kernel_explorer\n'
         'ui = kernel_explorer()\n'
         "log = lambda name: open(name, 'a').write(f'{time.perf_counter()}\\n')  # when the kernel got a change, set a picture\n"
         "ui.children[1].children[4].observe(lambda c: log('change.txt'), names='value')\n"
         "ui.children[3].observe(lambda c: log('picture.txt'), names='value')"]
NB = {'cells': [{'cell_type': 'code', 'execution_count': None, 'id': f'c{i}', 'metadata': {}, 'outputs': [],
                 'source': src} for i, src in enumerate(CELLS)],
      'metadata': {'kernelspec': {'display_name': 'python3', 'language': 'python', 'name': 'python3'}},
      'nbformat': 4, 'nbformat_minor': 5}

def free_port():
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def browser(tmp):
    os.environ['SE_OFFLINE'] = 'true'
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    o = webdriver.ChromeOptions(); o.binary_location = shutil.which('chromium')
    for a in ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run',
              '--disable-background-networking', '--disable-component-update', '--disable-sync',
              f'--user-data-dir={tmp}/chrome', '--window-size=1400,1200']: o.add_argument(a)
    return webdriver.Chrome(service=Service(shutil.which('chromedriver')), options=o)

WATCH = '''
window.__shots = [];
const root = document.querySelector('.jp-OutputArea');
new MutationObserver(() => {
  const imgs = [...document.querySelectorAll('.jp-OutputArea img')];
  const src = imgs.map(i => i.src.length + ':' + i.src.slice(-40)).join('|');
  if (src && src !== window.__last) { window.__last = src; window.__shots.push([performance.now(), src]); }
}).observe(document.body, {subtree: true, childList: true, attributes: true, attributeFilter: ['src']});
'''

def main(changes: int):
    tmp = Path(tempfile.mkdtemp(prefix='explorer-'))
    (tmp/'explorer.ipynb').write_text(json.dumps(NB))
    port, token = free_port(), uuid.uuid4().hex
    env = {**os.environ, 'JUPYTER_CONFIG_DIR': str(tmp/'cfg'), 'JUPYTER_DATA_DIR': str(tmp/'data'), 'OMP_NUM_THREADS': '1'}
    lab = subprocess.Popen([str(Path(sys.executable).parent/'jupyter'), 'lab', '--no-browser', f'--port={port}',
                            f'--IdentityProvider.token={token}', '--allow-root', f'--ServerApp.root_dir={tmp}'],
                           env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    d = None
    try:
        for _ in range(240):  # the server: up within a minute or two on a busy machine
            try: urllib.request.urlopen(f'http://127.0.0.1:{port}/api/status?token={token}', timeout=2); break
            except OSError: time.sleep(0.5)
        d = browser(tmp)
        d.get(f'http://127.0.0.1:{port}/lab/tree/explorer.ipynb?token={token}')
        from selenium.webdriver.common.by import By
        from selenium.webdriver.common.keys import Keys
        from selenium.webdriver.support.ui import WebDriverWait
        wait = WebDriverWait(d, 120)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, '.jp-Cell .cm-content'))
        time.sleep(3)
        d.find_element(By.CSS_SELECTOR, '.jp-Cell .cm-content').click()
        d.find_element(By.CSS_SELECTOR, '.jp-Cell .cm-content').send_keys(Keys.SHIFT, Keys.ENTER)
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, '.jp-OutputArea img')) > 0)
        time.sleep(2); d.execute_script(WATCH)
        box = d.find_elements(By.CSS_SELECTOR, '.widget-text input')[4]  # the kernel's centre cell
        d.execute_script("arguments[0].addEventListener('keydown', e => { if (e.key === 'Enter') "
                         "window.__t0 = performance.now(); }, true)", box)  # the moment the value is committed
        lat = []
        for k in range(changes):  # one change at a time: the latency of each
            box.send_keys(Keys.CONTROL, 'a'); box.send_keys(str(k + 2), Keys.ENTER)
            after = 'return window.__shots.filter(s => s[0] > window.__t0).map(s => s[0] - window.__t0)'
            WebDriverWait(d, 60).until(lambda d: d.execute_script(after))
            lat.append(d.execute_script(after)[0])
            time.sleep(0.5)
        n0 = d.execute_script('return window.__shots.length')
        for k in range(5): box.send_keys(Keys.CONTROL, 'a'); box.send_keys(str(20 + k), Keys.ENTER)  # a burst
        time.sleep(8)
        print(f'latency over {changes} changes: median {statistics.median(lat):.0f} ms, '
              f'min {min(lat):.0f}, max {max(lat):.0f} ms; threads: OMP_NUM_THREADS=1')
        print('a burst of 5 changes typed as fast as the browser takes them: pictures drawn',
              d.execute_script('return window.__shots.length') - n0)
        read = lambda name: [float(v) for v in (tmp/name).read_text().split()] if (tmp/name).exists() else []
        got, shown = read('change.txt')[:changes], read('picture.txt')
        kernel = [min(p for p in shown if p > c) - c for c in got if any(p > c for p in shown)]
        print(f'of which in the kernel, from the change to the new picture set (median of {len(kernel)}): '
              f'{1000 * statistics.median(kernel):.0f} ms' if kernel else 'the kernel logged no change')
    finally:
        if d: d.quit()
        lab.terminate(); lab.wait(30); shutil.rmtree(tmp, ignore_errors=True)

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0]); p.add_argument('--changes', type=int, default=8)
    main(p.parse_args().changes)
