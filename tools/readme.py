"""Write `README.md` from the executed `nbs/index.ipynb` (nbdev's README source; quarto, which nbdev would use, is not needed).

Markdown cells are copied as they are, code cells become Python blocks followed by their saved outputs: text in a plain
block, plots as PNG files in `nbs/images/` (`index_<cell id>.png`) that the README links to. Cells marked `#| hide` are
left out, and so is what a cell writes to stderr (warnings). Run `make readme` after `python tools/run_nbs.py
nbs/index.ipynb` (`make docs` does both); `tests/test_readme.py` fails while the README and its images disagree with
the notebook.
"""
import base64, json
from pathlib import Path

root = Path(__file__).resolve().parent.parent
images_dir = root/'nbs'/'images'


def _text(v): return ''.join(v) if isinstance(v, list) else v


def _outputs(cell):
    "The README parts of `cell`'s saved outputs, and the images they link to as {file name: PNG bytes}"
    parts, images = [], {}
    for o in cell.get('outputs', []):
        if o['output_type'] == 'stream':
            if o['name'] == 'stdout' and _text(o['text']).strip(): parts.append(f"```\n{_text(o['text']).strip()}\n```")
            continue
        data = o.get('data', {})
        if 'image/png' in data:
            name = f"index_{cell['id']}{'_' + str(len(images) + 1) if images else ''}.png"
            images[name] = base64.b64decode(_text(data['image/png']))
            parts.append(f'![]({images_dir.relative_to(root).as_posix()}/{name})')
        elif 'text/markdown' in data: parts.append(_text(data['text/markdown']).strip())
        elif 'text/plain' in data: parts.append(f"```\n{_text(data['text/plain']).strip()}\n```")
    return parts, images


def render(nb=root/'nbs'/'index.ipynb'):
    "The README's text from the notebook `nb`, and its images as {file name: PNG bytes}"
    parts, images = [], {}
    for cell in json.loads(Path(nb).read_text())['cells']:
        lines = ''.join(cell['source']).splitlines()
        if any(l.strip() in ('#| hide', '#|hide') for l in lines): continue
        text = '\n'.join(l for l in lines if not l.startswith('#|')).strip()
        if not text: continue
        if cell['cell_type'] == 'markdown': parts.append(text); continue
        parts.append(f'```python\n{text}\n```')
        outs, imgs = _outputs(cell)
        parts += outs; images |= imgs
    return '\n\n'.join(parts) + '\n', images


def readme(nb=root/'nbs'/'index.ipynb'):
    "The README's text from the notebook `nb`"
    return render(nb)[0]


def write():
    "Write README.md and its images, removing images of the notebook's cells that are gone"
    text, images = render()
    images_dir.mkdir(exist_ok=True)
    for old in images_dir.glob('index_*.png'):
        if old.name not in images: old.unlink()
    for name, png in images.items(): (images_dir/name).write_bytes(png)
    (root/'README.md').write_text(text)


if __name__ == '__main__': write()
