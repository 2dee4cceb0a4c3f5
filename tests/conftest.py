"Small real fastai learners shared by the test modules"
import matplotlib
matplotlib.use('Agg')
import numpy as np, pandas as pd, pytest
from fastai.tabular.all import *
import fastai_featimp


@pytest.fixture(scope='session', autouse=True)
def one_thread():
    "Networks this small train fastest on one torch thread, the more so on a shared machine"
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def pytest_collection_modifyitems(items):
    "Collect only tests defined in the test modules, not fastcore's `test_*` helpers that star-imports bring in"
    items[:] = [i for i in items if getattr(getattr(i, 'function', None), '__module__', None) == i.module.__name__]


def ground_truth_df(n=3000, seed=0):
    "Regression: strong `x1`, categorical `grp`, `x3` with missing values that matter, weak `x4`, two noise columns"
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({'x1': rng.normal(size=n), 'x3': rng.normal(size=n), 'x4': rng.normal(size=n),
                       'noise1': rng.normal(size=n), 'noise2': rng.normal(size=n),
                       'grp': rng.choice(list('pqrs'), n)})
    df['y'] = (3*df.x1 + df.grp.map(dict(p=-2., q=0., r=1., s=2.)) + 1.5*df.x3 + 0.4*df.x4
               + 0.1*rng.normal(size=n))
    df.loc[rng.random(n) < 0.1, 'x3'] = np.nan
    return df


def train_tabular(df, cat_names, cont_names, y_names, y_block=None, metrics=None, epochs=10, layers=(64, 32), seed=0,
                  n_valid=None, procs=(Categorify, FillMissing, Normalize)):
    "A fitted `tabular_learner` on `df`, the last `n_valid` rows (default a fifth) held out"
    set_seed(seed, reproducible=True)
    n_valid = n_valid or len(df)//5
    dls = TabularDataLoaders.from_df(df, procs=list(procs), cat_names=cat_names, cont_names=cont_names,
                                     y_names=y_names, y_block=y_block, bs=128,
                                     valid_idx=list(range(len(df)-n_valid, len(df))))
    learn = tabular_learner(dls, layers=list(layers), metrics=metrics)
    with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(epochs, 1e-2)
    return learn


@pytest.fixture(scope='session')
def regression():
    "A regression learner on `ground_truth_df` with `rmse` as metric, and its data"
    df = ground_truth_df()
    learn = train_tabular(df, ['grp'], ['x1', 'x3', 'x4', 'noise1', 'noise2'], 'y', metrics=rmse)
    return learn, df


def classification_df(n=3000, seed=1):
    "Binary classification: `a` matters most, the category `kind` next, `b` a little, `junk` not at all"
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({'a': rng.normal(size=n), 'b': rng.normal(size=n), 'junk': rng.normal(size=n),
                       'kind': rng.choice(['u', 'v', 'w'], n)})
    logit = 3*df.a + df.kind.map(dict(u=-1.5, v=0., w=1.5)) + 0.5*df.b
    df['label'] = np.where(rng.random(n) < 1/(1+np.exp(-logit)), 'yes', 'no')
    return df


@pytest.fixture(scope='session')
def classification():
    "A binary classifier with accuracy and ROC AUC metrics, and its data"
    df = classification_df()
    learn = train_tabular(df, ['kind'], ['a', 'b', 'junk'], 'label', y_block=CategoryBlock(),
                          metrics=[accuracy, RocAucBinary()])
    return learn, df
