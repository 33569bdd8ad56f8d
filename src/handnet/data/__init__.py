"""Data in, checked: arrays, files, and data larger than memory.

=================  ==========================================================
module             what it holds
=================  ==========================================================
``validation``     checks of user arrays (shape, dtype, finiteness), clear errors
``dataset``        ``Dataset`` (what a reader returns), ``DataFileError``, bounded text
``csv_reader``     CSV files: header or not, columns by name or position, missing cells
``files``          NPZ, NPY and IDX files, and ``load_dataset`` (any format, by content)
``preprocessing``  imputation and one-hot text columns, learned and saved with a model
``streaming``      ``RowBlocks``: out-of-core data (memmap, zarr, h5py, Dask)
``blocks``         a full-batch loss and gradient summed over row blocks
``cluster``        the same sums on Dask workers (needs ``handnet[dask]``)
=================  ==========================================================

Synthetic and bundled data sets are in :mod:`handnet.datasets`.
"""
