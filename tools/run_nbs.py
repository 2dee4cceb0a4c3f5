"""Re-execute the notebooks in `nbs/` in place, so their saved outputs document the package without running anything.

`python tools/run_nbs.py [NOTEBOOK ...]` (all of `nbs/` by default; `make docs` also rewrites the README) runs each
notebook in a fresh process, as `nbdev-test` would: working directory `nbs/`, the checkout first on the path,
`MPLBACKEND=Agg`, one torch thread. Plots are saved as PNG at 72 dpi; progress bars, widget state, memory addresses,
epoch times and absolute paths are kept out of the outputs and execution counts are cleared, so a re-run changes a
notebook only where its results changed. A cell with `#| eval: false` (or `skip_exec` in the notebook's front
matter) is not run and keeps no output. Every run cell records the hash of its source in `metadata.featimp`, which
`tests/test_docs.py` compares to tell a stale output. A notebook whose run raises is left untouched.
"""
import argparse, base64, hashlib, io, os, re, subprocess, sys, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from fastcore.nbio import does_cell_eval, fm_default_eval, nb_frontmatter, read_nb, write_nb
from PIL import Image

root = Path(__file__).resolve().parent.parent
nbs = root/'nbs'
dpi = 72
key = 'featimp'  # the cell metadata key of the source hash

# Run in the notebook's shell before its first cell, and shows no output. The warnings left out are those pytest's
# settings ignore, and those torch and fastai raise about themselves (deprecations, pandas' read-only arrays)
setup = f"""
import warnings, torch, matplotlib, fastprogress.fastprogress
torch.set_num_threads(1)
matplotlib.rcParams['figure.dpi'] = {dpi}
fastprogress.fastprogress.NO_BAR = True
for c in (FutureWarning, DeprecationWarning): warnings.filterwarnings('ignore', category=c)
warnings.filterwarnings('ignore', category=UserWarning, module=r'(torch|fastai)\\.')
"""

dropped_data = ('application/vnd.jupyter.widget-view+json', 'application/vnd.jupyter.widget-state+json')
epoch_time = re.compile(r'(?m)^(epoch\s.*?)\s*\btime\s*$|^(\d+\s.*?)\s+\d\d:\d\d\s*$')


def source_hash(source):
    "The hash a run cell records of its source"
    return hashlib.sha1(source.encode()).hexdigest()


def runs(nb):
    "Predicate for the code cells of `nb` that a docs run executes: those nbdev evaluates, `notest` ones included"
    fm = nb_frontmatter(nb)
    if str(fm.get('skip_exec', '')).lower() == 'true': return lambda cell: False
    dflt = fm_default_eval(fm)
    return lambda cell: cell.cell_type == 'code' and does_cell_eval(cell, dflt)


def overprint(text):
    "`text` without what a carriage return sends back to be overwritten: progress bars, or nothing when only they are left"
    return '\n'.join(l.rsplit('\r', 1)[-1] for l in text.replace('\r\n', '\n').split('\n'))


def clean_text(text):
    "Output text without run-dependent parts: overwritten progress, epoch times, addresses, machine paths"
    text = overprint(text)
    text = epoch_time.sub(lambda m: m.group(1) or m.group(2), text)
    text = re.sub(r'\bat 0x[0-9a-fA-F]+', 'at 0x...', text)
    text = re.sub(r'[^\s\'"(]*/(?:site|dist)-packages/', '', text)
    return text.replace(str(root) + '/', '').replace(str(root), '.')


def _text(v): return ''.join(v) if isinstance(v, list) else v


def small_png(b64):
    "The base64 PNG `b64` with its colours reduced to a palette of 256, which plots do not miss, a third of the size"
    buf = io.BytesIO()
    Image.open(io.BytesIO(base64.b64decode(b64))).convert('RGBA').quantize(256).save(buf, 'PNG', optimize=True)
    return base64.b64encode(buf.getvalue()).decode() + '\n'


def clean_output(out):
    "`out` without what depends on the run or the machine, or None when nothing is left"
    out = dict(out)
    if out['output_type'] == 'stream':
        text = clean_text(_text(out['text']))
        return dict(out, text=text.splitlines(True)) if text.strip() else None
    data = {k: v for k, v in out.get('data', {}).items() if k not in dropped_data}
    if '<progress' in _text(data.get('text/html', '')): return None
    data = {k: clean_text(_text(v)).splitlines(True) if k.startswith('text/') else v for k, v in data.items()}
    if 'image/png' in data: data['image/png'] = small_png(_text(data['image/png']))
    if not data: return None
    out = dict(out, data=data, metadata={k: v for k, v in out.get('metadata', {}).items() if k in data})
    if 'execution_count' in out: out['execution_count'] = None
    return out


def run_notebook(path):
    "Execute the notebook at `path` in this process and save it in place; raise if a cell fails"
    from execnb.shell import CaptureShell  # IPython, only where notebooks run
    nb = read_nb(path)
    run = runs(nb)
    shell = CaptureShell(path, mpl_format='png')
    shell.run(setup)
    if shell.exc is not None: raise shell.exc
    os.chdir(nbs)
    for cell in nb.cells:
        if cell.cell_type != 'code': continue
        cell.execution_count, cell.outputs = None, []
        cell.metadata.pop(key, None)
        if not run(cell): continue
        shell.cell(cell)
        if shell.exc is not None: raise RuntimeError(f'{Path(path).name}, cell {cell.id}:\n{shell.prettytb(fname=path)}')
        cell.metadata.pop('execution', None)
        cell.execution_count = None
        cell.outputs = [o for o in map(clean_output, cell.outputs) if o is not None]
        cell.metadata[key] = {'source_hash': source_hash(cell.source)}
    shell.close()
    write_nb(nb, path)


def run_in_child(path):
    "Run the notebook at `path` in a fresh process; its seconds, or raise with its error"
    env = dict(os.environ, MPLBACKEND='Agg', OMP_NUM_THREADS='1', MKL_NUM_THREADS='1', PYTHONHASHSEED='0',
               PYTHONPATH=os.pathsep.join([str(root)] + [p for p in [os.environ.get('PYTHONPATH')] if p]))
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, '--in-process', str(path)], env=env,
                          capture_output=True, text=True)
    if proc.returncode: raise RuntimeError(f'{path.name} failed:\n{proc.stdout}{proc.stderr}')
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('notebooks', nargs='*', type=Path, help='notebooks to run (default: every one in nbs/)')
    parser.add_argument('--jobs', type=int, default=2, help='notebooks run at once')
    parser.add_argument('--in-process', action='store_true', help='run the one notebook given in this process')
    args = parser.parse_args()
    if args.in_process: return run_notebook(args.notebooks[0].resolve())
    paths = [p.resolve() for p in args.notebooks] or sorted(nbs.glob('*.ipynb'))
    failed = []
    def one(path):
        try: print(f'{path.name}: {run_in_child(path):.0f} s', flush=True)
        except RuntimeError as e: failed.append(path.name); print(e, file=sys.stderr, flush=True)
    with ThreadPoolExecutor(args.jobs) as pool: list(pool.map(one, paths))
    if failed: sys.exit(f'failed, left as they were: {" ".join(failed)}')


if __name__ == '__main__': main()
