"README.md is the quick-start notebook, converted with its outputs, and starts with the two commands a newcomer runs"
import importlib.util, re
from pathlib import Path

root = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location('readme', root/'tools'/'readme.py')
tool = importlib.util.module_from_spec(spec); spec.loader.exec_module(tool)


def test_readme_matches_index():
    assert (root/'README.md').read_text() == tool.readme(), "README.md is stale: run `make readme`"


def test_readme_starts_with_the_two_commands():
    lines = [l for l in (root/'README.md').read_text().splitlines() if l.strip()]
    assert lines[0].startswith('# ') and lines[1:5] == ['```', 'make demo', 'make test', '```']


def test_readme_images_are_the_notebooks():
    linked = re.findall(r'!\[[^\]]*\]\(([^)\s]+)\)', (root/'README.md').read_text())
    images = tool.render()[1]
    assert linked, "the README shows no plot: run `make docs`"
    for link in linked:
        path = root/link
        assert path.is_file(), f"README.md links to {link}, which does not exist: run `make readme`"
        assert path.read_bytes() == images.get(path.name), f"{link} is not the notebook's plot: run `make readme`"
