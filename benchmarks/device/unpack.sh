# Sourced by the run_*.sh scripts on the GPU machine: unpack the carried packages and check that they import.
#   source benchmarks/device/unpack.sh PACK_DIR [MODULES]
# PACK_DIR holds pkgs.tar.xz and distinfo.tar.xz (README.md: how to make them); MODULES (comma-separated, default
# the training code) are imported besides torch, and e3nn's and PySCF's versions are printed where they are among
# them. Exits 3 when unpacking fails, 4 when an import does.
export PYTHONUNBUFFERED=1
mkdir -p /tmp/site && tar xJf "$1/pkgs.tar.xz" -C /tmp/site && tar xJf "$1/distinfo.tar.xz" -C /tmp/site || exit 3
export PYTHONPATH=/tmp/site:$PWD
python3 -c "
import importlib, sys, torch
mods = [importlib.import_module(m) for m in sys.argv[1].split(',')]
print('torch', torch.__version__, 'cuda', torch.cuda.is_available(),
      *[f'{m.__name__} {m.__version__}' for m in mods if m.__name__ in ('e3nn', 'pyscf')])
" "${2:-tracegrad_ase.model.train}" || exit 4
