"Encoding raw rows: `encode_frame` gives the very tensors `learn.dls.test_dl` gives after `check_frame`, and `encoded_data` falls back to it"

import numpy as np, pandas as pd, pytest, torch
from fastai.tabular.all import *
from fastai_featimp.all import *
from fastai_featimp.engine import encodable, encode_frame, encoded_data, test_dataloader
from fastai_featimp.coalitions import explained_data


def mixed_df(n=300, seed=0):
    "Every kind of column the trust and files suites use: digit strings, words, integers, booleans, missing values in both kinds"
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({'store': rng.choice(['1', '2', '3', '10'], n), 'word': rng.choice(['low', 'mid', 'high'], n),
                       'n': rng.choice([1, 2, 3], n), 'flag': rng.random(n) < 0.5,
                       'x1': rng.normal(size=n), 'x2': rng.normal(size=n).astype(np.float32), 'cnt': rng.integers(0, 9, n)})
    df['y'] = df.x1 + df.n + 0.1*rng.normal(size=n)
    df['y2'] = df.x2 - df.flag
    df['label'] = np.where(df.x1 + rng.normal(size=n) > 0, 'yes', 'no')
    df.loc[rng.random(n) < 0.1, 'x1'] = np.nan
    df.loc[rng.random(n) < 0.1, 'x2'] = np.nan
    df.loc[rng.random(n) < 0.05, 'word'] = np.nan
    return df

cats,conts = ['store', 'word', 'n', 'flag'],['x1', 'x2', 'cnt']

def learner(df, y_names='y', y_block=None, procs=(Categorify, FillMissing, Normalize)):
    "An untrained learner on `df` (encoding does not depend on the weights), the last 60 rows held out"
    dls = TabularDataLoaders.from_df(df, procs=list(procs), cat_names=list(cats), cont_names=list(conts), y_names=y_names, y_block=y_block,
                                     valid_idx=list(range(len(df)-60, len(df))), bs=64)
    return tabular_learner(dls, layers=[8])

def fastai_route(learn, df, with_labels=True, unseen='error'):
    "The dataloader fastai's own `test_dl` makes of the checked frame"
    return test_dataloader(learn, df, with_labels=with_labels, unseen=unseen)

def assert_same(learn, df, with_labels=True, unseen='error'):
    "Our tensors, encoded straight from `df`'s columns, and fastai's: equal bit for bit, in the same dtypes, with the same index"
    assert encodable(learn, with_labels)
    a,b = encode_frame(learn.dls.train_ds, df, with_labels, unseen),TabularTensors.from_dl(fastai_route(learn, df, with_labels, unseen))
    assert len(a.ys) == len(b.ys) == (len(learn.dls.train_ds.y_names) and with_labels and 1)
    for x,y in zip([a.cats, a.conts, *a.ys], [b.cats, b.conts, *b.ys]): assert x.dtype == y.dtype and torch.equal(x, y)
    assert a.index.equals(b.index) and a.unseen == b.unseen
    return a

@pytest.fixture(scope='module')
def data(): return mixed_df()

@pytest.fixture(scope='module')
def reg(data): return learner(data)

def test_regression(reg, data):
    a = assert_same(reg, data.iloc[::-1])  # a shuffled index too
    assert (a.cats[:, 1] == 0).sum() == data.word.isna().sum()  # missing words are `#na#`
    assert_same(reg, data.dropna())  # no missing value to fill: the columns keep their dtypes
    assert_same(reg, data.astype({'x1': 'Float64', 'cnt': float}))

@pytest.mark.parametrize('spelling', ['store as int', 'store as float with NaN', 'store as category', 'n as str', 'n as float',
                                      'n as Int64', 'flag as str', 'flag as boolean', 'word as category'])
def test_respelled(reg, data, spelling):
    col,kind = spelling.split(' as ')[0],spelling.split(' as ')[1]
    df = data.copy()
    if kind == 'float with NaN': df[col] = df[col].astype(float).where(df.index % 7 != 0)
    else: df[col] = df[col].astype(dict(int=int, str=str, float=float).get(kind, kind))
    assert_same(reg, df)

def test_unseen_na(reg, data):
    df = data.astype({'word': object, 'n': object})
    df.loc[df.index[::4], 'word'],df.loc[df.index[::5], 'n'] = 'extreme',7
    a = assert_same(reg, df, unseen='na')
    assert a.unseen == {'word': 75, 'n': 60}

def test_no_labels(reg, data): assert_same(reg, data.drop(columns=['y']), with_labels=False)

def test_classifier(data):
    learn = learner(data, 'label', CategoryBlock())
    a = assert_same(learn, data)
    assert a.ys[0].flatten().tolist() == (data.label=='yes').astype(int).tolist()  # 'no' is class 0
    assert_same(learn, data.assign(label=data.label.astype('category')))
    assert_same(learn, data.drop(columns='label'), with_labels=False)

def test_multi_target(data): assert_same(learner(data, ['y', 'y2'], RegressionBlock()), data)

def test_fill_strategies(data):
    for fill in (FillMissing(fill_strategy=FillStrategy.mode), FillMissing(fill_strategy=FillStrategy.constant, fill_vals={'x1': 3.5, 'x2': -1}),
                 FillMissing(add_col=False)):
        assert_same(learner(data, procs=(Categorify, fill, Normalize)), data)

def test_without_normalize(data):
    "Raw continuous values: an integer column goes through the frame's common dtype (float64) as `tensor(frame)` takes it"
    big = data.assign(cnt=data.cnt + (2**60 + 2**36 + 1))  # half a float32 step above 2**60, and a bit: float64 first rounds it down to a tie
    a = assert_same(learner(big, procs=(Categorify, FillMissing)), big)
    assert not torch.equal(a.conts[:, 2], torch.from_numpy(big.cnt.to_numpy().astype(np.float32)))  # straight to float32 differs

class Respell(TabularProc):
    "An unusual proc: swaps words 'low' and 'high' before `Categorify`"
    order = 0
    def encodes(self, to): to['word'] = to['word'].map({'low': 'high', 'high': 'low', 'mid': 'mid'})

def test_unusual_proc_falls_back(data):
    "With a proc `encode_frame` does not know, fastai encodes: the codes `check_columns` finds would miss what the proc does"
    learn = learner(data, procs=(Respell, Categorify, FillMissing, Normalize))
    assert not encodable(learn)
    ours,theirs = encoded_data(learn, data),TabularTensors.from_dl(fastai_route(learn, data))
    for x,y in zip([ours.cats, ours.conts, *ours.ys], [theirs.cats, theirs.conts, *theirs.ys]): assert torch.equal(x, y)
    low = (data.word == 'low').to_numpy()
    assert low.any() and (ours.cats[low, 1] == list(learn.dls.train_ds.classes['word']).index('high')).all()

def test_unfilled_missing_falls_back(data):
    "Missing values that no `FillMissing` fills: fastai's route, which keeps them"
    learn = learner(data, procs=(Categorify, Normalize))
    assert encodable(learn) and encode_frame(learn.dls.train_ds, data) is None
    ours = encoded_data(learn, data)
    assert ours.conts.isnan().sum() == data[conts].isna().sum().sum()

def test_empty(reg, data):
    "No rows: empty tensors of the right widths; explaining them is refused, whichever route encodes"
    a = encode_frame(reg.dls.train_ds, data.iloc[:0])
    assert a.cats.shape == (0, 6) and a.conts.shape == (0, 3) and a.ys[0].shape == (0, 1)
    for learn in (reg, learner(data, procs=(Respell, Categorify, FillMissing, Normalize))):
        with pytest.raises(InputError, match='need at least one row to explain, got 0 rows'): explained_data(learn, data.iloc[:0])
