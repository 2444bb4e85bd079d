"""Hardware-targeted architecture search on measured LUTs.

``evolution`` (random search, regularised evolution, OFA-style constrained evolution) works on
any ``GeneSpace`` with vectorised objectives and constraints (``space``); ``nb201`` benchmarks
methods on NAS-Bench-201's real accuracies and latencies; ``targeting`` shows that a LUT's
winner is fastest on its own device; ``dnas`` is FBNet's differentiable search (torch).
"""
