"""Distributed training: the MultiWorkerMirroredStrategy worker, TFJob specs and launchers."""
