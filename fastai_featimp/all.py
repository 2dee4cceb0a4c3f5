"Everything public in fastai_featimp; importing it adds the importance methods to `Learner`"
from .association import *
from .checks import *
from .units import *
from .scoring import *
from .engine import *
from .result import *
from .correlation import *
from .permutation import *
from .dependence import *
from .dropcolumn import *
from .variance import *
from .coalitions import *
from .shapley import *
from .sage import *
from .effects import *
from .interactions import *
