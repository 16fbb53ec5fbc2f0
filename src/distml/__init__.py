"""kfp-distml: distributed deep learning on Kubeflow, from dataset to served model.

The core library (this package, minus ``distml.components`` and ``distml.pipelines``)
never imports KFP, so it runs the same inside a pipeline step, a TFJob worker or a laptop.
"""

import os

__version__ = "0.1.0"

if os.environ.get("DISTML_SIGTERM_CANCELS") == "1":  # a task process of `distml run`: see distml.training.cancel
    from distml.training.cancel import cancel_this_process_on_sigterm

    cancel_this_process_on_sigterm()
