"""Run nbdev's docs processing (what `nbdev_docs` and `nbdev_preview` do before they hand over to Quarto) on every
notebook, without Quarto. `nbdev_proc_nbs` itself first tries to download and install Quarto when it is missing
(and then runs `pip install -e .`): this does the same steps minus that one, so it never downloads anything.
The processed notebooks go to `_proc/` (ignored by git); the committed `nbs/_quarto.yml`, `nbs/nbdev.yml` and
`nbs/sidebar.yml` are the docs configuration Quarto reads."""
import sys
from nbdev.config import get_config
from nbdev.doclinks import _build_modidx
from nbdev.quarto import refresh_quarto_yml, nbdev_sidebar
from nbdev.serve import proc_nbs

if __name__ == '__main__':
    cfg = get_config()
    refresh_quarto_yml()           # nbdev.yml from settings.ini; _quarto.yml is ours (committed), kept as it is
    _build_modidx()
    nbdev_sidebar.__wrapped__(path=cfg.nbs_path)  # custom_sidebar = True: our sidebar.yml is kept
    proc_nbs(cfg.nbs_path, n_workers=int(sys.argv[1]) if len(sys.argv) > 1 else 1)
    print(f'docs-check: nbdev processed every notebook into {cfg.config_path/"_proc"}')
