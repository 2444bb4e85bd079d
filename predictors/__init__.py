"""Predictors trained on measurements: block-level latency for unmeasured shapes, arch-level
latency (LUT sum + in-context correction, MLP, boosting), few-shot transfer to a new device,
and accuracy predictors for search. The workflows that measure with them live in
``lutfarm.workflows``."""
