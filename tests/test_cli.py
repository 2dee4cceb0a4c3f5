"`fastai-featimp`, end to end: an exported learner and a CSV in, tables, CSV files and plots out"
import os, shutil, subprocess, sys, warnings
from pathlib import Path
import numpy as np, pandas as pd, pytest, torch
from fastai.learner import load_learner
from fastai_featimp.cli import main, parser, subcommands

root = Path(__file__).parent.parent
features = ['x1', 'x3', 'x4', 'noise1', 'noise2', 'grp']
png_magic = b'\x89PNG\r\n\x1a\n'


@pytest.fixture(scope='module')
def files(regression, tmp_path_factory):
    "The regression learner exported, its validation rows as a CSV (columns in training order), and the folder"
    learn,df = regression
    tmp = tmp_path_factory.mktemp('cli')
    learn.export(tmp/'export.pkl')
    df.iloc[-400:].to_csv(tmp/'data.csv', index=False)
    return tmp/'export.pkl', tmp/'data.csv', tmp


def command(*args):
    "Run `python -m fastai_featimp.cli args` on this checkout in a fresh process"
    env = {**os.environ, 'PYTHONPATH': os.pathsep.join([str(root), os.environ.get('PYTHONPATH', '')]), 'MPLBACKEND': 'Agg'}
    return subprocess.run([sys.executable, '-m', 'fastai_featimp.cli', *map(str, args)], env=env, capture_output=True, text=True)


def test_permutation_process(files, regression):
    "A real process prints the table on stdout only, writes the CSV and the PNG, and its numbers are the API's"
    export,data,tmp = files
    done = command('permutation', export, data, '--seed', '3', '--repeats', '3', '--out', tmp/'imp.csv', '--plot', tmp/'imp.png')
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split()[:2] == ['feature', 'importance'] and len(lines) == 1 + len(features)
    assert sorted(l.split()[0] for l in lines[1:]) == sorted(features)
    assert '█' in done.stderr and '█' not in done.stdout  # the progress bar went to stderr
    assert 'rmse increase when shuffled' in done.stderr and 'seed 3' in done.stderr
    written = pd.read_csv(tmp/'imp.csv')
    expected = regression[0].permutation_importance(df=pd.read_csv(data), n_repeats=3, seed=3, show_progress=False).results
    assert written.feature.tolist() == expected.feature.tolist()
    np.testing.assert_allclose(written[['importance', 'std', 'ci_low', 'ci_high']], expected[['importance', 'std', 'ci_low', 'ci_high']], rtol=1e-9)
    assert written.set_index('feature').loc['x3', 'columns'] == 'x3+x3_na'
    assert (tmp/'imp.png').read_bytes()[:8] == png_magic


def test_error_process(files):
    "A real process with bad input exits 1 with one line on stderr and no traceback"
    export,data,tmp = files
    done = command('permutation', export, tmp/'missing.csv')
    assert done.returncode == 1 and done.stdout == ''
    assert 'Traceback' not in done.stderr
    assert done.stderr.splitlines()[-1] == f"fastai-featimp permutation: error: no such file: {str(tmp/'missing.csv')!r}"


def test_prediction(files, regression, capsys):
    "`prediction` gives `by='prediction'`'s numbers, needs no label column, and takes `--groups`"
    export,data,tmp = files
    df = pd.read_csv(data).drop(columns='y')
    df.to_csv(tmp/'unlabelled.csv', index=False)
    assert main(['prediction', str(export), str(tmp/'unlabelled.csv'), '--seed', '1', '--repeats', '2',
                 '--groups', 'signal=x1,x3', '--quiet', '--out', str(tmp/'pred.csv')]) == 0
    out,err = capsys.readouterr()
    assert err == '' and 'signal' in out
    expected = regression[0].permutation_importance(df=df, by='prediction', n_repeats=2, seed=1, groups={'signal': ['x1', 'x3']},
                                                    show_progress=False).results
    written = pd.read_csv(tmp/'pred.csv')
    assert written.feature.tolist() == expected.feature.tolist() and written.feature.iloc[0] == 'signal'
    np.testing.assert_allclose(written.importance, expected.importance, rtol=1e-9)


def test_dependence(files, regression, capsys):
    "`dependence` gives `partial_dependence`'s grid and numbers, and saves a plot with ICE curves"
    export,data,tmp = files
    assert main(['dependence', str(export), str(data), 'x1', '--points', '5', '--ice', '10', '--seed', '0', '--quiet',
                 '--out', str(tmp/'pd.csv'), '--plot', str(tmp/'pd.png')]) == 0
    out,_ = capsys.readouterr()
    expected = regression[0].partial_dependence('x1', df=pd.read_csv(data), n_points=5, show_progress=False).results
    written = pd.read_csv(tmp/'pd.csv')
    assert out.split('\n')[0].split() == ['x1', 'y'] and len(out.strip().split('\n')) == 6
    np.testing.assert_allclose(written[['x1', 'y']], expected[['x1', 'y']], rtol=1e-6)
    assert (tmp/'pd.png').read_bytes()[:8] == png_magic


def test_target(files, regression, capsys):
    "`--target` names a label column called otherwise, even when another column carries the learner's label name"
    export,data,tmp = files
    df = pd.read_csv(data)
    df.rename(columns={'y': 'outcome'}).assign(y=0.).to_csv(tmp/'renamed.csv', index=False)
    args = ['--seed', '0', '--repeats', '2', '--quiet']
    assert main(['permutation', str(export), str(data), '--out', str(tmp/'a.csv'), *args]) == 0
    assert main(['permutation', str(export), str(tmp/'renamed.csv'), '--target', 'outcome', '--out', str(tmp/'b.csv'), *args]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(tmp/'a.csv'), pd.read_csv(tmp/'b.csv'))


@pytest.fixture(scope='module')
def bad_files(files, tmp_path_factory):
    "A folder of the good inputs and those the command must refuse: no pickle, a pickle of no learner, CSVs missing columns"
    export,data,_ = files
    tmp = tmp_path_factory.mktemp('bad')
    for f in (export, data): shutil.copy(f, tmp)
    (tmp/'garbage.pkl').write_bytes(b'not a pickle at all')
    torch.save({'a': 1}, tmp/'dict.pkl')
    df = pd.read_csv(data)
    df.drop(columns='x4').to_csv(tmp/'no_x4.csv', index=False)
    df.drop(columns='y').to_csv(tmp/'no_y.csv', index=False)
    (tmp/'empty.csv').write_text('')
    return tmp


@pytest.mark.parametrize('args,message', [
    (['permutation', 'missing.pkl', 'data.csv'], "no such file: 'missing.pkl'"),
    (['permutation', 'export.pkl', 'missing.csv'], "no such file: 'missing.csv'"),
    (['permutation', 'garbage.pkl', 'data.csv'], "cannot load 'garbage.pkl' as an exported fastai learner"),
    (['permutation', 'dict.pkl', 'data.csv'], "cannot load 'dict.pkl' as an exported fastai learner: 'dict' object has no attribute 'dls'"),
    (['permutation', 'export.pkl', 'empty.csv'], "cannot read 'empty.csv' as CSV"),
    (['prediction', 'export.pkl', 'no_x4.csv'], "no_x4.csv has no column 'x4', which the learner needs"),
    (['permutation', 'export.pkl', 'no_y.csv'], "no_y.csv has no label column 'y'; name it with --target"),
    (['permutation', 'export.pkl', 'data.csv', '--target', 'label'], "data.csv has no label column 'label'"),
    (['permutation', 'export.pkl', 'data.csv', '--target', 'y', 'x1'], "the learner has 1 label column(s) (y); --target names 2"),
    (['permutation', 'export.pkl', 'data.csv', '--metric', 'accuracy'], "unknown `metric` 'accuracy'"),
    (['permutation', 'export.pkl', 'data.csv', '--repeats', '0'], "`n_repeats` must be at least 1, got 0"),
    (['prediction', 'export.pkl', 'data.csv', '--groups', 'a=x1,nope'], "unknown feature 'nope'"),
    (['dependence', 'export.pkl', 'data.csv', 'x2'], "unknown feature 'x2'; the features are: grp, x1, x3, x4, noise1, noise2"),
    (['dependence', 'export.pkl', 'data.csv', 'x1', 'x3', 'x4'], "`feature` must be one feature name or a list of two"),
    (['dependence', 'export.pkl', 'data.csv', 'x1', 'x3', '--ice', '5'], "ICE curves need a single feature"),
    (['permutation', 'export.pkl', 'data.csv', '--out', 'nowhere/imp.csv'], "cannot write 'nowhere/imp.csv': no folder 'nowhere'"),
    (['permutation', 'export.pkl', 'data.csv', '--plot', 'imp.xyz'], "cannot save a plot as 'imp.xyz'"),
])
def test_bad_input(bad_files, monkeypatch, capsys, args, message):
    "Each bad input exits 1 with one line on stderr that names the problem, and prints nothing on stdout"
    monkeypatch.chdir(bad_files)
    assert main(args + ['--quiet']) == 1
    out,err = capsys.readouterr()
    assert out == '' and err.count('\n') == 1, err
    assert err.startswith(f'fastai-featimp {args[0]}: error: ') and message in err, err
    assert not any(bad_files.glob('imp.*'))


def test_bad_command_line(capsys):
    "A malformed command line exits 2 with argparse's usage message"
    for argv in (['lime', 'a.pkl', 'b.csv'], ['permutation', 'a.pkl'], ['permutation', 'a.pkl', 'b.csv', '--repeats', 'many']):
        with pytest.raises(SystemExit) as e: main(argv)
        assert e.value.code == 2 and 'usage: fastai-featimp' in capsys.readouterr().err


@pytest.mark.parametrize('name', list(subcommands))
def test_help(name, capsys):
    "Each subcommand's `--help` documents every option with a sentence"
    with pytest.raises(SystemExit) as e: main([name, '--help'])
    assert e.value.code == 0
    out = capsys.readouterr().out
    sub = parser()._subparsers._group_actions[0].choices[name]
    for action in sub._actions:
        assert action.help and len(action.help.split()) >= 4, action.dest
        assert (action.option_strings[-1] if action.option_strings else action.dest) in out
    assert subcommands[name].help in " ".join(out.split())


def test_main_help(capsys):
    "`fastai-featimp --help` lists the subcommands and the exit statuses"
    with pytest.raises(SystemExit) as e: main(['--help'])
    out = capsys.readouterr().out
    assert e.value.code == 0 and all(n in out for n in subcommands) and 'Exit status' in out


def test_shap_and_sage(files, tmp_path, capsys):
    "Shapley values and SAGE of an exported learner, with the data's own rows as background"
    export, data, _ = files
    out = tmp_path/'shap.csv'
    assert main(['shap', str(export), str(data), '--seed', '0', '--n-background', '20', '--out', str(out), '--quiet']) == 0
    table = pd.read_csv(out)
    assert set(table.feature) == {'grp', 'x1', 'x3', 'x4', 'noise1', 'noise2'}
    assert main(['sage', str(export), str(data), '--seed', '0', '--n-background', '20', '--quiet']) == 0
    assert 'x1' in capsys.readouterr().out


@pytest.fixture(scope='module')
def shop_files(tmp_path_factory):
    "A learner on categorical features of each kind a CSV changes (digit strings, words, integers, booleans), exported, and its rows as a CSV"
    from test_files import files_df, kinds
    from conftest import train_tabular
    from fastai.tabular.all import rmse
    df = files_df()
    learn = train_tabular(df, kinds, ['x'], 'y', metrics=rmse, epochs=20, layers=(16,), n_valid=80)
    tmp = tmp_path_factory.mktemp('shop')
    learn.export(tmp/'shop.pkl')
    clean = df.iloc[-80:]
    clean.to_csv(tmp/'shop.csv', index=False)
    unseen = clean.copy()
    unseen.loc[unseen.index[::4], 'store'] = '99'
    unseen.to_csv(tmp/'unseen.csv', index=False)
    return learn, clean, tmp


shop_calls = {  # each subcommand, and the call of the library that must give its numbers on the clean frame
    'permutation': (['--seed', '0', '--repeats', '2'], lambda l, df: l.permutation_importance(df=df, n_repeats=2, seed=0, show_progress=False)),
    'prediction': (['--seed', '0', '--repeats', '2'], lambda l, df: l.permutation_importance(df=df.drop(columns='y'), by='prediction', n_repeats=2,
                                                                                               seed=0, show_progress=False)),
    'dependence': (['store', '--seed', '0'], lambda l, df: l.partial_dependence('store', df=df, seed=0, show_progress=False)),
    'shap': (['--seed', '0', '--n-background', '20'], lambda l, df: l.shap_values(df=df, background=df, n_background=20, seed=0, show_progress=False)),
    'sage': (['--seed', '0', '--n-background', '20', '--max-permutations', '64'],
             lambda l, df: l.sage_importance(df=df, background=df, n_background=20, max_permutations=64, seed=0, show_progress=False)),
}


@pytest.mark.parametrize('name', list(shop_calls))
def test_csv_kinds(shop_files, name, capsys):
    "Each subcommand reads the categorical columns as the learner saw them: the clean frame's numbers, and nothing on stderr with --quiet"
    learn, clean, tmp = shop_files
    args, call = shop_calls[name]
    assert main([name, str(tmp/'shop.pkl'), str(tmp/'shop.csv'), *args, '--quiet', '--out', str(tmp/f'{name}.csv')]) == 0
    out, err = capsys.readouterr()
    assert err == '' or (name == 'sage' and err.count('\n') == 1 and 'did not converge' in err), err
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        expected = call(learn, clean)
    written = pd.read_csv(tmp/f'{name}.csv', dtype={'store': str})
    numeric = expected.results.select_dtypes('number').columns
    np.testing.assert_allclose(written[numeric].to_numpy(float), expected.results[numeric].to_numpy(float), rtol=1e-9)
    if name == 'dependence': assert written.store.tolist() == ['1', '10', '2', '3']
    else: assert written.feature.tolist() == expected.results.feature.tolist() and 'store' in written.feature.tolist()
    assert out.splitlines()[0].split()[0] == written.columns[0]


def test_unseen_command(shop_files, capsys):
    "A category the learner never saw stops the command with one line that names it and the command's own option; --unseen na goes on and says so, even with --quiet"
    learn, clean, tmp = shop_files
    base = ['permutation', str(tmp/'shop.pkl'), str(tmp/'unseen.csv'), '--seed', '0', '--repeats', '2', '--quiet']
    assert main(base) == 1
    out, err = capsys.readouterr()
    assert out == '' and err.count('\n') == 1
    assert "categorical column 'store' of '" in err and 'unseen.csv' in err and "'99' (str)" in err and '20 of 80 rows (25.0%)' in err and '--unseen na' in err, err
    assert "unseen='na'" not in err
    assert main(base + ['--unseen', 'na']) == 0
    out, err = capsys.readouterr()
    assert err == "fastai-featimp permutation: warning: read as missing (#na#), with --unseen na, values the learner never saw: 'store' in 20 row(s)\n"
    assert out.splitlines()[0].split()[:2] == ['feature', 'importance']


def test_sage_not_converged(shop_files, capsys):
    "SAGE that stopped before converging is reported on stderr even with --quiet, naming an option the command has"
    learn, clean, tmp = shop_files
    assert main(['sage', str(tmp/'shop.pkl'), str(tmp/'shop.csv'), '--seed', '0', '--n-background', '10', '--max-permutations', '4', '--quiet']) == 0
    out, err = capsys.readouterr()
    assert err.count('\n') == 1 and err.startswith('fastai-featimp sage: warning: SAGE did not converge in 4 permutations'), err
    assert 'raise --max-permutations (now 4)' in err and 'max_permutations' not in err
    assert 'x' in out.split()


def test_streams_process(shop_files):
    "A real process: the table alone on stdout; on stderr progress, the summary and one line per warning (none at all with --quiet, not even torch's on import)"
    learn, clean, tmp = shop_files
    done = command('permutation', tmp/'shop.pkl', tmp/'shop.csv', '--seed', '0', '--repeats', '2')
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split()[:2] == ['feature', 'importance'] and len(lines) == 6
    shown = [l.split('\r')[-1].strip() for l in done.stderr.splitlines()]  # what a terminal shows of each line
    assert any(s.startswith('importance: rmse increase when shuffled') for s in shown), done.stderr
    progress = lambda s: s in ('', '█') or s.startswith('|') and s.endswith(']')
    assert all(progress(s) or s.startswith('importance:') or s.startswith('fastai-featimp') for s in shown), done.stderr
    assert all(s.startswith('fastai-featimp') for s in shown if 'Warning' in s), done.stderr  # one line each, named
    assert 'warnings.warn(' not in done.stderr and 'Traceback' not in done.stderr
    quiet = command('permutation', tmp/'shop.pkl', tmp/'shop.csv', '--seed', '0', '--repeats', '2', '--quiet')
    assert quiet.returncode == 0 and quiet.stderr == '' and quiet.stdout == done.stdout


def test_internal_error_process(shop_files):
    "An exception the package did not raise as an input error is a bug: its traceback is shown, not dressed as a user error"
    learn, clean, tmp = shop_files
    env = {**os.environ, 'PYTHONPATH': os.pathsep.join([str(root), os.environ.get('PYTHONPATH', '')]), 'MPLBACKEND': 'Agg'}
    script = ("import sys, fastai_featimp.cli as cli, fastai_featimp.permutation as p\n"
              "def broken(*args, **kwargs): raise ValueError('a bug deep inside')\n"
              "p.PermutationImportance.compute = classmethod(broken)\n"
              f"sys.exit(cli.main(['permutation', {str(tmp/'shop.pkl')!r}, {str(tmp/'shop.csv')!r}, '--quiet']))")
    done = subprocess.run([sys.executable, '-c', script], env=env, capture_output=True, text=True)
    assert done.returncode == 1 and done.stdout == ''
    assert 'Traceback (most recent call last)' in done.stderr and 'ValueError: a bug deep inside' in done.stderr
    assert 'fastai-featimp permutation: error' not in done.stderr


def test_internal_error(shop_files, monkeypatch, capsys):
    "In Python, `main` lets an exception that is not an `InputError` through, ValueError and TypeError included"
    learn, clean, tmp = shop_files
    import fastai_featimp.permutation as p
    for error in (RuntimeError, ValueError, TypeError):
        def broken(*args, **kwargs): raise error('a bug')
        monkeypatch.setattr(p.PermutationImportance, 'compute', classmethod(broken))
        with pytest.raises(error, match='a bug'): main(['permutation', str(tmp/'shop.pkl'), str(tmp/'shop.csv'), '--quiet'])
    assert capsys.readouterr().err == ''


def test_sample_weight(files, regression, capsys):
    "`--sample-weight` names a column of the CSV: the numbers are the API's with that column as `sample_weight`; a missing column is a one-line error"
    export,data,tmp = files
    df = pd.read_csv(data).assign(w=lambda d: 1 + d.x4.abs())
    df.to_csv(tmp/'weighted.csv', index=False)
    assert main(['permutation', str(export), str(tmp/'weighted.csv'), '--seed', '3', '--repeats', '2', '--sample-weight', 'w',
                 '--quiet', '--out', str(tmp/'weighted_out.csv')]) == 0
    written = pd.read_csv(tmp/'weighted_out.csv')
    expected = regression[0].permutation_importance(df=df, n_repeats=2, seed=3, sample_weight='w', show_progress=False).results
    unweighted = regression[0].permutation_importance(df=df, n_repeats=2, seed=3, show_progress=False).results
    np.testing.assert_allclose(written.set_index('feature').importance, expected.set_index('feature').importance.loc[written.feature], rtol=1e-9)
    assert not np.allclose(expected.set_index('feature').importance, unweighted.set_index('feature').importance.loc[expected.feature])
    capsys.readouterr()
    assert main(['prediction', str(export), str(tmp/'weighted.csv'), '--sample-weight', 'wt', '--quiet']) == 1
    out,err = capsys.readouterr()
    assert out == '' and "`sample_weight` names column 'wt'" in err and len(err.strip().splitlines()) == 1
