"""Search methods and the searches built from them: the registry every caller reads
(``registry``), evolution and random search, the query-efficient NB201 baselines, and the
searches of each space family (chain: ``verified``, ``targeting``; elastic: ``subnets``;
cell: ``cells``, ``nb201``)."""
