"""Command line: click group `sgt`.

Sets `OMP_WAIT_POLICY=PASSIVE` (unless the environment already says otherwise) before any
command imports torch or xgboost: libgomp reads it once, when it loads, and its default of
spinning threads makes a 2-thread XGBoost fit on a busy machine about 11 times slower
(docs/gbt_choice.md). Both the `sgt` script and `python -m sgt` import this package first.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
