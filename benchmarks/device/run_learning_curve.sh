#!/bin/bash
# One GPU-machine session (device tool): the carbon learning curve trained on the GPU (4 sizes + a larger model,
# all at once), a GPU training-throughput figure, and PySCF ground truth on the spare CPU cores; results packed
# under $OUT (benchmarks/device/README.md). Needs .device/ (carried): pkgs.tar.xz (pyscf, ase, vesin, e3nn for
# the machine's Python) and data/carbon-dzvp/{graphene,bilayer,diamond,scale-vacua-strain} (float32 copies).
set -u
T0=$(date +%s)
TRAIN_S=${TRAIN_S:-340}      # training time per run (the GPU runs share the card)
GEN_S=${GEN_S:-480}          # PySCF deadline
VS_PROCS=${VS_PROCS:-5}; BL_PROCS=${BL_PROCS:-3}; ORG_PROCS=${ORG_PROCS:-3}; ORG_START=${ORG_START:-0}
source benchmarks/device/unpack.sh .device e3nn,ase,vesin,pyscf,h5py,tracegrad_ase.model.train,tracegrad_ase.engines.pyscf.scf
ln -sfn .device/data data
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader; echo "cores $(nproc)"
mkdir -p results gen
R=tracegrad_ase/shipped
[ $VS_PROCS -gt 0 ] && python3 benchmarks/device/generate_pool.py $R/carbon/recipes/scale_vacua_strain.yaml \
    gen/scale-vacua-strain --procs $VS_PROCS --deadline-s $GEN_S --skip-dir data/carbon-dzvp/scale-vacua-strain \
    > results/gen_vacua_strain.log 2>&1 &
[ $BL_PROCS -gt 0 ] && python3 benchmarks/device/generate_pool.py $R/carbon/recipes/scale_bilayers.yaml gen/scale-bilayers \
    --procs $BL_PROCS --deadline-s $GEN_S > results/gen_bilayers.log 2>&1 &
[ $ORG_PROCS -gt 0 ] && python3 benchmarks/device/generate_pool.py $R/molecules/recipes/organic.yaml gen/molecules-organic \
    --procs $ORG_PROCS --reverse --start $ORG_START --deadline-s $GEN_S > results/gen_organic.log 2>&1 &
timeout ${THROUGHPUT_S:-60} python3 benchmarks/training_throughput.py calculators/carbon/train.yaml --device ${DEVICE:-cuda} --steps 10 \
    --warmup 2 --out results/training_throughput_cuda.json 2>&1 | tail -8
D="data/carbon-dzvp"
COMMON="--split-from calculators/carbon/split.json --data $D/graphene $D/bilayer $D/diamond $D/scale-vacua-strain \
    --device ${DEVICE:-cuda} --threads 1 --stage train --max-time-s $TRAIN_S --runs lc"
timeout $((TRAIN_S + ${TRAIN_MARGIN_S:-100})) python3 benchmarks/learning_curve.py calculators/carbon/train.yaml --sizes 4 8 16 26 --jobs 4 \
    --tag carbon-train $COMMON > results/lc_sizes.log 2>&1 &
timeout $((TRAIN_S + ${TRAIN_MARGIN_S:-100})) python3 benchmarks/learning_curve.py calculators/carbon/train.yaml --sizes 26 --jobs 1 \
    --tag carbon-big --set num_layers=3 --set "muls=[48,24,16,12,8]" $COMMON > results/lc_big.log 2>&1 &
sleep 30; nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader
wait
echo "all done after $(( $(date +%s) - T0 )) s"; tail -n 3 results/*.log
python3 benchmarks/device/pack.py $OUT results/* 'lc/**/checkpoints/best/*' 'lc/**/*.json*' \
    'gen/scale-vacua-strain/**/*.h5' 'gen/scale-bilayers/**/*.h5' 'gen/molecules-organic/**/*.h5' \
    --part-mb 15.5 --total-mb 62 --parts 7
echo "packed after $(( $(date +%s) - T0 )) s"
