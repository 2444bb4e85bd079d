"""Predictors trained on measurements: block-level latency for unmeasured shapes, arch-level
latency (LUT sum + in-context correction, MLP, boosting), few-shot transfer to a new device,
accuracy predictors for search, and the validation of a LUT against measured networks."""
