"""Weight-sharing supernets (torch): one-shot training and scoring (``oneshot``), elastic layers,
the FBNet and MCUNet supernets, FBNet's DNAS, the training data and distributed training."""
