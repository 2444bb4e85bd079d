"""What a search optimises and constrains: gene spaces with vectorised per-gene metrics and LUT
latency models (``space``), accuracy from a supernet or a predictor (``accuracy``), and block
latency at other widths (``widths``)."""
