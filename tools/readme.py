"""Write `README.md` from `nbs/index.ipynb` (nbdev's README source; quarto, which nbdev would use, is not needed).

Markdown cells are copied as they are, code cells become Python blocks, cells marked `#| hide` are left out.
Run `make readme` after editing the notebook; `tests/test_readme.py` fails while the two disagree.
"""
import json
from pathlib import Path

root = Path(__file__).resolve().parent.parent


def readme(nb=root/'nbs'/'index.ipynb'):
    "The README's text from the notebook `nb`"
    parts = []
    for cell in json.loads(Path(nb).read_text())['cells']:
        lines = ''.join(cell['source']).splitlines()
        if any(l.strip() in ('#| hide', '#|hide') for l in lines): continue
        text = '\n'.join(l for l in lines if not l.startswith('#|')).strip()
        if not text: continue
        parts.append(text if cell['cell_type'] == 'markdown' else f'```python\n{text}\n```')
    return '\n\n'.join(parts) + '\n'


if __name__ == '__main__': (root/'README.md').write_text(readme())
