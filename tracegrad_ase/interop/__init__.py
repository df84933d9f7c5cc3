"""Adapters to other packages: :mod:`.pymatgen` (structures, band structures, DOS), :mod:`.phonopy` (thermal
displacements, force constants, gap(T)) and :mod:`.plots` (every figure). They use the calculator's public
attributes only."""
