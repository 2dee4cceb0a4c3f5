"The notebooks' saved outputs are those of their current code, and hold nothing that depends on the machine or the run"
import base64, importlib.util, re
from pathlib import Path

import pytest
from fastcore.nbio import read_nb

root = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location('run_nbs', root/'tools'/'run_nbs.py')
tool = importlib.util.module_from_spec(spec); spec.loader.exec_module(tool)

notebooks = sorted((root/'nbs').glob('*.ipynb'))
max_png = 100_000  # bytes of one saved plot
abs_path = re.compile(r'(?<![\w.~/-])/(?:work|tmp|home|root|Users|private|var|opt|usr)/')


def _text(v): return ''.join(v) if isinstance(v, list) else v


def problems(cell):
    "What is wrong with the saved outputs of code `cell`, each as a phrase"
    for o in cell.outputs:
        kind = o['output_type']
        if kind == 'error': yield f"holds an error: {o.get('ename')}: {o.get('evalue')}"
        texts = [_text(o.get('text', ''))] + [_text(v) for k, v in o.get('data', {}).items() if k.startswith('text/')]
        for t in texts:
            if m := abs_path.search(t): yield f'shows an absolute path ({t[m.start():m.start() + 40]!r})'
            if '<progress' in t or '\r' in t: yield 'shows a progress bar'
        if any(k.startswith('application/vnd.jupyter.widget') for k in o.get('data', {})): yield 'holds widget state'
        if (png := o.get('data', {}).get('image/png')) and len(base64.b64decode(_text(png))) > max_png:
            yield f'holds a PNG larger than {max_png:,} bytes'
        if o.get('execution_count') is not None: yield 'has an execution count'
    if cell.get('execution_count') is not None: yield 'has an execution count'
    if 'execution' in cell.metadata: yield 'records execution times'


@pytest.mark.parametrize('path', notebooks, ids=[p.name for p in notebooks])
def test_outputs_are_fresh_and_clean(path):
    nb = read_nb(path)
    runs = tool.runs(nb)
    errors = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != 'code': continue
        where = f'{path.name}, cell {i} (id {cell.id})'
        saved = cell.metadata.get(tool.key, {}).get('source_hash')
        if not runs(cell):
            if cell.outputs or saved: errors.append(f'{where} is not run but keeps outputs of an earlier run')
            continue
        if saved is None: errors.append(f'{where} has never been executed')
        elif saved != tool.source_hash(cell.source): errors.append(f'{where} changed since its outputs were saved')
        errors += [f'{where} {p}' for p in problems(cell)]
    assert not errors, '\n'.join(errors) + f'\nrun `make docs NBS=nbs/{path.name}`'


def test_problems_are_found():
    "Each kind of forbidden output is caught"
    nb = read_nb(root/'nbs'/'index.ipynb')
    cell = next(c for c in nb.cells if c.cell_type == 'code')
    png = base64.b64encode(bytes(max_png + 1)).decode()
    cell.outputs = [dict(output_type='stream', name='stdout', text=['saved to /tmp/x.csv\n', ' |███---| 50%\r']),
                    dict(output_type='display_data', metadata={}, data={'text/html': ['<progress value=1>'],
                         'application/vnd.jupyter.widget-view+json': {}, 'image/png': png})]
    found = ' '.join(problems(cell))
    for p in ('absolute path', 'progress bar', 'widget state', 'PNG larger'): assert p in found, p
    cell.outputs = [dict(output_type='stream', name='stdout', text=['fastai/learner.py: 1/2 done\n'])]
    assert not list(problems(cell))
