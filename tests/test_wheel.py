"The wheel built offline holds every module and installs without an index, as in a Kaggle kernel with no internet"
import configparser, os, shutil, subprocess, sys, zipfile
from email.parser import Parser
from pathlib import Path

import pytest

root = Path(__file__).resolve().parent.parent
pytest.importorskip('setuptools', reason='an offline build (--no-build-isolation) uses the environment\'s setuptools')


@pytest.fixture(scope='module')
def wheel(tmp_path_factory):
    "The wheel `pip wheel` builds from a copy of the checkout, so no stale `build/` of an earlier build leaks in"
    tmp = tmp_path_factory.mktemp('wheel')
    src = tmp/'src'
    shutil.copytree(root, src, ignore=shutil.ignore_patterns('.git', '.venv', '.venv-*', 'build', 'dist', '*.egg-info', '__pycache__',
                                                             '_proc', '_docs', '.pytest_cache'))
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', str(src), '--no-deps', '--no-build-isolation', '--no-index',
                    '-q', '-w', str(tmp/'dist')], check=True)
    wheels = list((tmp/'dist').glob('fastai_featimp-*.whl'))
    assert len(wheels) == 1, wheels
    return wheels[0]


def test_wheel_holds_every_module(wheel):
    on_disk = {p.relative_to(root).as_posix() for p in (root/'fastai_featimp').rglob('*.py')}
    in_wheel = {n for n in zipfile.ZipFile(wheel).namelist() if n.endswith('.py')}
    assert in_wheel == on_disk, f'missing: {sorted(on_disk - in_wheel)}, extra: {sorted(in_wheel - on_disk)}'


def test_wheel_metadata(wheel):
    settings = configparser.ConfigParser(); settings.read(root/'settings.ini')
    with zipfile.ZipFile(wheel) as z:
        meta = Parser().parsestr(z.read(next(n for n in z.namelist() if n.endswith('.dist-info/METADATA'))).decode())
    assert meta['Name'] == 'fastai_featimp'
    assert meta['Version'] == settings['DEFAULT']['version']
    assert wheel.name == f"fastai_featimp-{meta['Version']}-py3-none-any.whl"
    assert any(r.startswith('fastai') for r in meta.get_all('Requires-Dist'))


def test_wheel_installs_without_an_index(wheel, tmp_path):
    target = tmp_path/'site'
    subprocess.run([sys.executable, '-m', 'pip', 'install', '--no-index', '--no-deps', '-q', '--target', str(target),
                    str(wheel)], check=True)
    env = dict(os.environ, PYTHONPATH=str(target))
    code = 'import fastai_featimp, fastai.tabular.all as f; print(fastai_featimp.__file__, hasattr(f.Learner, "permutation_importance"))'
    out = subprocess.run([sys.executable, '-c', code], env=env, cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    file, patched = out.split()
    assert Path(file).is_relative_to(target) and patched == 'True'
