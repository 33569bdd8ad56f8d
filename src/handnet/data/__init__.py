"""Data in, checked: arrays, files, and data larger than memory.

=================  ==========================================================
module             what it holds
=================  ==========================================================
``validation``     checks of user arrays (shape, dtype, finiteness), clear errors
``files``          CSV, NPZ and IDX files read into arrays
``streaming``      ``RowBlocks``: out-of-core data (memmap, zarr, h5py, Dask)
``blocks``         a full-batch loss and gradient summed over row blocks
``cluster``        the same sums on Dask workers (needs ``handnet[dask]``)
=================  ==========================================================

Synthetic and bundled data sets are in :mod:`handnet.datasets`.
"""
