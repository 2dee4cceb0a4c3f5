"settings.ini (nbdev's classic form) says what pyproject.toml says"
import configparser
try: import tomllib
except ModuleNotFoundError: import tomli as tomllib  # Python 3.10
from pathlib import Path
import fastai_featimp

root = Path(__file__).parent.parent


def test_settings_match_pyproject():
    proj = tomllib.loads((root/'pyproject.toml').read_text())
    ini = configparser.ConfigParser()
    ini.read(root/'settings.ini')
    s, p, nbdev = ini['DEFAULT'], proj['project'], proj['tool']['nbdev']
    assert s['lib_name'] == s['repo'] == p['name']
    assert s['version'] == fastai_featimp.__version__
    assert s['description'] == p['description']
    assert '>=' + s['min_python'] == p['requires-python']
    assert s['author'] == p['authors'][0]['name'] and s['author_email'] == p['authors'][0]['email']
    assert s['keywords'].split() == p['keywords']
    assert s['requirements'].split() == p['dependencies']
    assert s['dev_requirements'].split() == p['optional-dependencies']['dev']
    assert s['test_requirements'].split() == p['optional-dependencies']['test']
    for key in ('lib_path', 'nbs_path', 'doc_path', 'tst_flags'): assert s[key] == nbdev[key], key
