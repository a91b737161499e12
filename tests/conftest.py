import os, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent

def run_py(code: str, env: dict | None = None, timeout: int = 300, python: str = sys.executable, cwd=None) -> subprocess.CompletedProcess:
    "Run `code` in a fresh Python process (optionally with extra environment variables) and return the result."
    e = {**os.environ, **(env or {})}
    return subprocess.run([python, '-c', code], capture_output=True, text=True, env=e, timeout=timeout, cwd=cwd)

@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    "A private, empty COURSEKIT_DATA cache for one test (and no fastai download to find)."
    d = tmp_path/'cache'
    monkeypatch.setenv('COURSEKIT_DATA', str(d))
    monkeypatch.setenv('FASTAI_HOME', str(tmp_path/'no-fastai'))
    return d

# Property-based tests explore new random cases on every local run; in CI (CI=true) they are derandomized, so a
# submission's result does not depend on luck. A failure found locally is replayed from hypothesis' database.
from hypothesis import settings
settings.register_profile('ci', derandomize=True, deadline=None)
if os.environ.get('CI'): settings.load_profile('ci')
