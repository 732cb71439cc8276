"""Token trees: building, combining, storing and partitioning them (above data and compression).

==================  ===============================================================
``tree``            :class:`TokenTree`: the exact tree of a dataset, layer by layer
``build``           :func:`build_tree` from token sequences
``assemble``        the tree from its windows: keys, sort, emit (kernels in ``_sort_kernels``, ``_kernels``)
``combine``         the joint tree of several datasets, and mixtures on it
``storage``         saving and loading trees (``.npz`` without pickle)
``partition``       splitting a build by first tokens
``partitioned``     trees built part by part and joined
``distributed``     partitioned builds on a Dask cluster
``reference``       a plain-Python reference build, for the tests
``dataset_codes``   a dataset's Huffman code lengths read off its tree
``springs``         the piggyback hypothesis in a token tree: carriers of behaviour as springs
==================  ===============================================================
"""
