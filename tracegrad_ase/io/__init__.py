"""Layer 2, files: the one atomic writer (:mod:`.atomic`), our HDF5 format and data-set folders (:mod:`.h5`),
other programs' Hamiltonian folders: DeepH (:mod:`.deeph`), DeepH-pack's newer layout (:mod:`.deeph_pack`),
DeePTB (:mod:`.deeptb`), what they share (:mod:`.foreign`) and which one a folder is (:mod:`.layouts`).
Imports only :mod:`tracegrad_ase.core`."""
