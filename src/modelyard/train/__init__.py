"""Training: Lightning fit, refit, calibration, pruning and distillation, then the
bundle (train.finish) and its registration.

Owns: the LightningModule and DataModules, ``train()`` orchestration (run.SETUPS
maps a kind to its network and DataModule), resume, and finishing a run into a
registered bundle.

May import: ``bundle``, ``calibration``, ``config``, ``data``, ``evaluate``, ``export``,
``features``, ``manifest``, ``mlflow_model``, ``modality``, ``models``, ``monitor``,
``predictor``, ``registry``, ``scoring``, ``tracking``; never ``serve`` beyond what
``modality`` reaches.
"""
