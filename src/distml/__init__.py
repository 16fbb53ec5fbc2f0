"""kfp-distml: distributed deep learning on Kubeflow, from dataset to served model.

The core library (this package, minus ``distml.components`` and ``distml.pipelines``)
never imports KFP, so it runs the same inside a pipeline step, a TFJob worker or a laptop.
"""

__version__ = "0.1.0"
