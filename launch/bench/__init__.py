"""Benchmarks that measure alternatives side by side in one run, as ratios: one
module per `classroom bench` command (serving, learner, soak, sweep, episode), each
with its ``run_*`` measurement, its report and its ``bench_*_main`` entry."""
