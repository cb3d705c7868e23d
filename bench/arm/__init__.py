"""ARM (aarch64) measurements: runner.py builds and runs ncnn under QEMU user mode beside its C
sources (runner.cpp, insn_count.c, CMakeLists.txt, layers.txt); counts.py counts guest instructions
per layer; estimate.py turns counts into labelled ms estimates for calibrated devices."""
