"Every method gives, on fixed seeds, the numbers it gave before the batched engine (`tests/golden.json`), to float rounding"
import json
from pathlib import Path
import numpy as np, pytest
from golden import compute

recorded = json.loads((Path(__file__).parent/'golden.json').read_text())


@pytest.fixture(scope='module')
def today(): return compute()


@pytest.mark.parametrize('case', sorted(recorded))
def test_same_numbers_as_before(today, case):
    "Same rows (matched by feature or value; near-zero importances may swap places) and the same numbers"
    old, new = recorded[case], today[case]
    key = next(k for k in old if isinstance(old[k][0], str)) if any(isinstance(v[0], str) for v in old.values()) else None
    if key is None:
        for col in old: np.testing.assert_allclose(new[col], old[col], rtol=1e-4, atol=1e-6, err_msg=f'{case}.{col}')
        return
    assert sorted(new[key]) == sorted(old[key])
    order = [new[key].index(k) for k in old[key]]
    for col in old:
        if col == key: continue
        np.testing.assert_allclose(np.asarray(new[col])[order], old[col], rtol=1e-4, atol=1e-6, err_msg=f'{case}.{col}')
