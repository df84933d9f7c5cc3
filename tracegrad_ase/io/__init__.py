"""Layer 2, files: the one atomic writer (:mod:`.atomic`), our HDF5 format and data-set folders (:mod:`.h5`),
and the DeepH folder format (:mod:`.deeph`). Imports only :mod:`tracegrad_ase.core`."""
