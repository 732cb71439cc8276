"""Infrastructure, the bottom layer: everything else may import it, it imports nothing of tokentree.

==================  ===============================================================
``errors``          the exception types, each naming the problem and the fix
``checks``          argument checks shared by the public functions
``progress``        progress bars that stay quiet off a terminal and work in Jupyter
``outputs``         atomic writes of files and output folders, never over unrelated files
``results``         records: frozen results with ``to_dict`` / ``to_json`` / ``from_dict``
``npy_direct``      reading ``.npy`` files without pickle, memory-mapped where possible
``optional``        optional dependencies imported on first use, with their install line
``version``         the package version
``pages``           handing the pages of arrays a loop is done with back to the system
==================  ===============================================================
"""
