"Real files: categorical columns read back from a CSV with other dtypes, and categories the learner never saw, through every entry point"
import numpy as np, pandas as pd, pytest
from fastai.tabular.all import *
from copy import deepcopy
import fastai_featimp
from fastai_featimp.checks import InputError, InputTypeError, check_frame
from conftest import train_tabular

kinds = ['store', 'word', 'n', 'flag']  # digit strings, words, integers, booleans


def files_df(n=400, seed=3):
    "A regression whose categorical features are of each kind a CSV changes or keeps: digit strings, words, integers, booleans"
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({'store': rng.choice(['1', '2', '3', '10'], n), 'word': rng.choice(['low', 'mid', 'high'], n),
                       'n': rng.choice([1, 2, 3], n), 'flag': rng.random(n) < 0.5, 'x': rng.normal(size=n)})
    df['y'] = (df.store.map({'1': -1., '2': 0., '3': 1., '10': 2.}) + df.word.map(dict(low=-1., mid=0., high=1.))
               + 0.5*df.n + df.flag + df.x + 0.1*rng.normal(size=n))
    return df


@pytest.fixture(scope='module')
def shop():
    "A learner on `files_df`, its validation rows as built, and the same rows written to a CSV and read back as a user would"
    df = files_df()
    learn = train_tabular(df, kinds, ['x'], 'y', metrics=rmse, epochs=20, layers=(16,), n_valid=80)
    clean = df.iloc[-80:]
    return learn, clean, csv_roundtrip(clean)


def csv_roundtrip(df):
    "`df` written with `to_csv` and read back with `pd.read_csv`, as a user reads a file"
    import io
    buf = io.StringIO(); df.to_csv(buf, index=False); buf.seek(0)
    return pd.read_csv(buf).set_axis(df.index)


def test_csv_changes_dtypes(shop):
    "The premise: the CSV reads the digit strings back as integers, which the learner's vocabulary does not hold"
    learn, clean, read = shop
    assert read.store.dtype == np.int64 and pd.api.types.is_string_dtype(clean.store)
    assert 1 not in learn.dls.train_ds.classes['store'].o2i and '1' in learn.dls.train_ds.classes['store'].o2i
    assert pd.api.types.is_string_dtype(read.word) and read.n.dtype == np.int64 and read.flag.dtype == bool


def respellings(clean):
    "The clean frame with each categorical kind spelled as another dtype would read it"
    return {
        'store as int': clean.assign(store=clean.store.astype(int)),
        'store as float with NaN': clean.assign(store=clean.store.astype(float).where(clean.index % 7 != 0)),
        'store as category': clean.assign(store=clean.store.astype('category')),
        'word as category': clean.assign(word=pd.Categorical(clean.word, categories=['mid', 'high', 'low'])),
        'n as str': clean.assign(n=clean.n.astype(str)),
        'n as float': clean.assign(n=clean.n.astype(float)),
        'n as Int64': clean.assign(n=clean.n.astype('Int64')),
        'flag as str': clean.assign(flag=clean.flag.astype(str)),
        'flag as boolean': clean.assign(flag=clean.flag.astype('boolean')),
    }


def encoded(learn, df):
    "The category codes the learner's procs give `df` after `check_frame`"
    return learn.dls.test_dl(check_frame(df, learn.dls.train_ds)).dataset.cats.to_numpy()


@pytest.mark.parametrize('name', list(respellings(files_df().iloc[:20])))
def test_respelled_categories_encode_alike(shop, name):
    "A category spelled with another dtype gets the same code as in the clean frame (NaN stays missing, as in training)"
    learn, clean, _ = shop
    df = respellings(clean)[name]
    got, want = encoded(learn, df), encoded(learn, clean)
    missing = df[kinds].isna().to_numpy()
    assert (got[missing] == 0).all()
    np.testing.assert_array_equal(got[~missing], want[~missing])


def entry_points(fit=lambda l: l.fit(1, 1e-2)):
    "Every entry point that takes `df`, as a call of (learn, df, **kwargs) returning its result, with small settings and a seed"
    return {
        'permutation': lambda l, df, **k: l.permutation_importance(df=df, n_repeats=2, seed=0, show_progress=False, **k),
        'prediction': lambda l, df, **k: l.permutation_importance(df=df, by='prediction', n_repeats=2, seed=0, show_progress=False, **k),
        'correlation': lambda l, df, **k: l.feature_correlation(df=df, **k),
        'dependence': lambda l, df, **k: l.partial_dependence('store', df=df, show_progress=False, **k),
        'value': lambda l, df, **k: l.value_importance('word', df=df, show_progress=False, **k),
        'effects': lambda l, df, **k: l.accumulated_local_effects('store', df=df, show_progress=False, **k),
        'interactions': lambda l, df, **k: l.interaction_strength(df=df, n_rows=40, n_background=20, seed=0, show_progress=False, **k),
        'dropcolumn': lambda l, df, **k: l.drop_column_importance(fit, df=df, seeds=[0], show_progress=False, **k),
        'shap': lambda l, df, **k: l.shap_values(df=df.iloc[:8], background=df, n_background=80, seed=0, show_progress=False, **k),
        'sage': lambda l, df, **k: l.sage_importance(df=df, background=df, n_background=80, n_permutations=16, seed=0,
                                                      show_progress=False, **k),
    }


def numbers(res):
    "The numbers of a result, as one array, to compare two results"
    if hasattr(res, 'matrix'): return res.matrix.to_numpy(dtype=float)
    if hasattr(res, 'all_values'): return res.all_values
    return res.results.select_dtypes('number').to_numpy(dtype=float)


@pytest.mark.parametrize('name', list(entry_points()))
def test_csv_gives_clean_numbers(shop, name):
    "The frame read back from the CSV gives the clean frame's numbers, bit for bit, and is left as it was"
    learn, clean, read = shop
    call = entry_points()[name]
    before = deepcopy(read)
    a, b = call(learn, clean), call(learn, read)
    np.testing.assert_array_equal(numbers(a), numbers(b))
    assert b.unseen == {}
    pd.testing.assert_frame_equal(read, before)


def with_unseen(clean, kind):
    "The clean frame (read back from a CSV) with a value of column `kind` the learner never saw in every fourth row"
    df = csv_roundtrip(clean)
    new = {'store': 99, 'word': 'extreme', 'n': 7, 'flag': 'maybe'}[kind]
    df[kind] = df[kind].astype(object)
    df.loc[df.index[::4], kind] = new
    return df, new


@pytest.mark.parametrize('kind', kinds)
def test_unseen_refused(shop, kind):
    "A value the learner never saw is refused: the column, the value with its type, its rows and share, and the way out"
    learn, clean, _ = shop
    df, new = with_unseen(clean, kind)
    before = deepcopy(df)
    with pytest.raises(InputError) as e: learn.permutation_importance(df=df, seed=0, show_progress=False)
    msg = str(e.value)
    assert f"categorical column {kind!r} of `df`" in msg and repr(new) in msg and "20 of 80 rows (25.0%)" in msg, msg
    assert "unseen='na'" in msg
    pd.testing.assert_frame_equal(df, before)


@pytest.mark.parametrize('name', list(entry_points()))
def test_unseen_everywhere(shop, name):
    "Every entry point refuses unseen categories by default, and with `unseen='na'` reads them as `#na#` and says so"
    learn, clean, _ = shop
    call = entry_points()[name]
    df, _ = with_unseen(clean, 'store')
    before = deepcopy(df)
    with pytest.raises(InputError, match="categorical column 'store'"): call(learn, df)
    res = call(learn, df, unseen='na')
    n = 20 if name != 'shap' else 2
    want = {'store': n} if name not in ('shap', 'sage') else {'store': n, 'store (background)': 20}
    assert res.unseen == want
    assert "read as missing (#na#) with unseen='na'" in repr(res) and "'store' in" in repr(res)
    pd.testing.assert_frame_equal(df, before)
    with pytest.raises(InputError, match="unknown unseen 'ignore'"): call(learn, df, unseen='ignore')


def test_unseen_na_is_missing(shop):
    "`unseen='na'` gives exactly what the same rows give with the value missing (NaN), which training reads as `#na#`"
    learn, clean, _ = shop
    df, _ = with_unseen(clean, 'word')
    missing = df.assign(word=df.word.where(df.word != 'extreme'))
    a = learn.permutation_importance(df=df, unseen='na', n_repeats=2, seed=1, show_progress=False)
    b = learn.permutation_importance(df=missing, n_repeats=2, seed=1, show_progress=False)
    np.testing.assert_array_equal(numbers(a), numbers(b))
    assert b.unseen == {} and 'unseen' not in repr(b)


def test_background_unseen(shop):
    "Unseen categories in `background=` are refused too, naming the background"
    learn, clean, _ = shop
    bg, _ = with_unseen(clean, 'n')
    with pytest.raises(InputError, match="^categorical column 'n' of `background`"):
        learn.shap_values(df=clean.iloc[:4], background=bg, seed=0, show_progress=False)


def test_values_respelled(shop):
    "`values=` of a categorical feature may be spelled as the CSV spells them: `1` for the category '1'"
    learn, clean, read = shop
    a = learn.partial_dependence('store', df=read, values=[1, 10], show_progress=False)
    b = learn.partial_dependence('store', df=clean, values=['1', '10'], show_progress=False)
    assert a.results.store.tolist() == ['1', '10']
    np.testing.assert_array_equal(numbers(a), numbers(b))
    with pytest.raises(InputError, match="not among the categories of 'store'"):
        learn.partial_dependence('store', df=read, values=[4], show_progress=False)


def test_label_respelled(shop):
    "A classifier whose classes are digit strings scores the CSV's integer labels as its classes"
    df = files_df()
    learn = train_tabular(df, ['word', 'n', 'flag'], ['x', 'y'], 'store', y_block=CategoryBlock(), metrics=accuracy,
                          epochs=1, layers=(8,), n_valid=80)
    clean = df.iloc[-80:]
    read = csv_roundtrip(clean)
    assert read.store.dtype == np.int64
    a = learn.permutation_importance(df=clean, n_repeats=2, seed=0, show_progress=False)
    b = learn.permutation_importance(df=read, n_repeats=2, seed=0, show_progress=False)
    np.testing.assert_array_equal(numbers(a), numbers(b))
    with pytest.raises(InputError, match="label"): learn.permutation_importance(df=read.assign(store=read.store.replace(10, 11)))


def test_one_exception_class():
    "The package's refusals are `InputError`s, which stay `ValueError`s and, for a type, `TypeError`s"
    from fastai_featimp.checks import check_whole
    with pytest.raises(InputTypeError): check_whole('n', 1.5)
    with pytest.raises(TypeError): check_whole('n', 1.5)
    with pytest.raises(InputError): check_whole('n', 0)
    with pytest.raises(ValueError): check_whole('n', 0)
