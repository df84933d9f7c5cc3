"""DFT engines: the seam where a ground-truth code plugs in. Today one, :mod:`.pyscf` (SCF and ground truth,
basis overlaps S(R) for truth and inference). An engine may use core, io and electronic, never the model."""
