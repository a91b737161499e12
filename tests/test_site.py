"""`make site`: every notebook rendered to static HTML offline, checked in headless Chromium: every figure loads,
no markdown or HTML source shows as text, every answer is a collapsible <details> that opens. Screenshots go to
$SITE_SHOTS (default: a temporary folder) so that a person can look at them."""
import json, os, re, shutil, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM, DRIVER = shutil.which('chromium'), shutil.which('chromedriver')
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="Debian's chromium and chromium-driver are needed "
                                '(make test installs them)')

@pytest.fixture(scope='module')
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp('site')/'_site'
    r = subprocess.run([sys.executable, str(ROOT/'tools'/'make_site.py'), '--out', str(out)], capture_output=True,
                       text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    return out

@pytest.fixture(scope='module')
def browser(tmp_path_factory):
    os.environ['SE_OFFLINE'] = 'true'  # Selenium Manager must not look for drivers on the network
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    o = webdriver.ChromeOptions()
    o.binary_location = CHROMIUM
    for a in ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-quic',
              '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync',
              f'--user-data-dir={tmp_path_factory.mktemp("chrome")}', '--window-size=1280,1600']: o.add_argument(a)
    d = webdriver.Chrome(service=Service(DRIVER), options=o)
    yield d
    d.quit()

def pages(site): return sorted(p.name for p in site.glob('*.html'))

def test_every_notebook_has_a_page_and_the_index_links_them(site, browser):
    notebooks = sorted(p.stem for p in (ROOT/'nbs').glob('[0-9]*.ipynb'))
    assert [p[:-5] for p in pages(site) if p != 'index.html'] == notebooks
    browser.get((site/'index.html').as_uri())
    links = browser.execute_script("return [...document.querySelectorAll('a')].map(a => a.getAttribute('href'))")
    assert sorted(links) == sorted(f'{n}.html' for n in notebooks)

RAW = re.compile(r'(^|\n)\s*(#{1,4} \S|```|<details>|</?summary>|\*\*\S[^*\n]*\*\*)')

@pytest.mark.parametrize('page', sorted(p.name for p in (ROOT/'nbs').glob('[0-9]*.ipynb')), ids=lambda p: p)
def test_page_shows_figures_and_no_raw_markup(site, browser, page):
    page = page.replace('.ipynb', '.html')
    browser.get((site/page).as_uri())
    imgs = browser.execute_script("return [...document.images].map(i => [i.complete && i.naturalWidth > 0, "
                                  "i.src.slice(0, 40)])")
    assert all(ok for ok, _ in imgs), [s for ok, s in imgs if not ok]
    text = browser.execute_script("return [...document.querySelectorAll('.jp-MarkdownOutput, .jp-RenderedMarkdown')]"
                                  ".map(e => e.innerText).join('\\n')")
    assert text.strip() and not RAW.search(text), RAW.search(text)
    n = browser.execute_script("const d = [...document.querySelectorAll('details')]; d.forEach(x => x.open = true); "
                               "return d.filter(x => x.querySelector('summary') && x.innerText.length > 20).length")
    cells = json.loads((ROOT/'nbs'/page.replace('.html', '.ipynb')).read_text())['cells']
    questions = sum(''.join(c['source']).count('<details>') for c in cells if c['cell_type'] == 'markdown')
    assert n == questions
    shots = Path(os.environ.get('SITE_SHOTS', site.parent/'shots')); shots.mkdir(exist_ok=True)
    browser.save_screenshot(str(shots/page.replace('.html', '.png')))
    if n: browser.execute_script("document.querySelector('details').scrollIntoView()")
    if n: browser.save_screenshot(str(shots/page.replace('.html', '-answers.png')))
