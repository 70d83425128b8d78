//! Bootstrap confidence intervals, paired bootstrap resampling and approximate
//! randomization, reproducing sacrebleu's `significance.py` (numpy PCG64 streams included).
