__version__ = "0.1.0"

import sys, warnings
from pathlib import Path

def _command_mode():
    "'quiet' or 'loud' when this process is the `fastai-featimp` command (`--quiet` or not), else None"
    argv = getattr(sys, 'orig_argv', sys.argv)
    if Path(sys.argv[0]).name != 'fastai-featimp' and 'fastai_featimp.cli' not in argv: return None
    return 'quiet' if '--quiet' in argv else 'loud'

def _one_line(message, category, *args, **kwargs):
    "A warning as the command prints it: one line on stderr"
    print(f"fastai-featimp: warning: {' '.join(str(message).split())} ({category.__name__})", file=sys.stderr)

if _command_mode() is None: from .all import *
else:  # the command shapes even what torch and fastai warn about on import (`--quiet`: nothing; else one line each)
    with warnings.catch_warnings():
        if _command_mode()=='quiet': warnings.simplefilter('ignore')
        else: warnings.showwarning = _one_line
        from .all import *
