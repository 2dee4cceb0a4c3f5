"Everything public in fastai_featimp; importing it adds the importance methods to `Learner`"
from .core import *
from .engine import *
from .result import *
from .permutation import *
