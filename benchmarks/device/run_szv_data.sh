#!/bin/bash
# One GPU-machine session for graphene-szv (issue 13, session 35): PySCF ground truth for
# calculators/graphene-szv/recipes/train_large4.yaml on the machine's CPU cores (PROCS processes of THREADS threads,
# stopped at a deadline; unfinished cells are left to `tracegrad generate` here), and graphene-szv's training
# throughput by batch size and width on the GPU, with a one-thread CPU reference on the same machine
# (benchmarks/training_throughput.py). Needs .device/ (carried): pkgs.tar.xz and distinfo.tar.xz
# (benchmarks/device/README.md), and data/szv-sample (2x2-5x5 cells, read by benchmarks/device/szv_throughput*.yaml).
set -u
T0=$(date +%s)
GEN_S=${GEN_S:-450}; PROCS=${PROCS:-7}; THREADS=${THREADS:-2}; DEV=${DEV:-cuda}; STEPS=${STEPS:-10}
source benchmarks/device/unpack.sh .device e3nn,ase,vesin,pyscf,h5py,tracegrad_ase.model.train,tracegrad_ase.engines.pyscf.scf
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null; echo "cores $(nproc), unpacked after $(( $(date +%s) - T0 )) s"
mkdir -p results gen
python3 benchmarks/device/generate_pool.py tracegrad_ase/shipped/graphene-szv/recipes/train_large4.yaml \
    gen/graphene-szv-large4 --procs $PROCS --threads $THREADS --deadline-s $GEN_S > results/gen_large4.log 2>&1 &
GEN=$!
TP="--threads 1 --steps $STEPS --warmup 3 --variants tracegrad"
timeout 240 python3 benchmarks/training_throughput.py benchmarks/device/szv_throughput.yaml $TP --device $DEV --batch-sizes 1 2 4 8 16 --out results/throughput.json 2>&1 | grep -v "^->"
timeout 120 python3 benchmarks/training_throughput.py benchmarks/device/szv_throughput_wide.yaml $TP --device $DEV --batch-sizes 2 8 --out results/throughput.json 2>&1 | grep -v "^->"
timeout 120 python3 benchmarks/training_throughput.py benchmarks/device/szv_throughput.yaml $TP --device cpu --batch-sizes 2 8 --out results/throughput.json 2>&1 | grep -v "^->"
wait $GEN
echo "generation: $(tail -n 1 results/gen_large4.log); all done after $(( $(date +%s) - T0 )) s"
grep FAILED results/gen_large4.log
python3 benchmarks/device/pack.py $OUT results/* 'gen/**/*.h5' --part-mb 15.5 --total-mb 62 --parts 7
echo "packed after $(( $(date +%s) - T0 )) s"
