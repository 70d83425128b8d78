//! A pool on a Slurm cluster: a submit script that trains every adapter as a job array,
//! then chains the DATM merge and the translate/score job behind it with `afterok`.
//!
//! The printed script is plain `bash`. Run, it writes the job files into a folder of the
//! pool, submits the array (split into as many arrays as the cluster's `MaxArraySize`
//! needs, each throttled with `%N` when asked), then the merge job and the evaluation job
//! with `sbatch --parsable --dependency=afterok:…`, and prints every job id it submitted.

use std::fmt::Write as _;

use crate::plan::{PoolPlan, Strategy};
use crate::PoolError;

/// Slurm's default `MaxArraySize`: array indices run from 0 to this minus one. The submit
/// script asks the cluster (`scontrol show config`) and falls back to this.
pub const DEFAULT_MAX_ARRAY_SIZE: usize = 1001;

/// What the emitted jobs run and how they are submitted.
#[derive(Debug, Clone)]
pub struct SlurmJobs {
    /// The datm binary the jobs call, unless `$DATM` is set when the script runs.
    pub datm: String,
    /// The pool plan every array task trains from.
    pub plan: String,
    /// The pool directory (`--out` of `pool train`): adapters, manifests, job files, logs.
    pub pool: String,
    /// Arguments after `pool train --plan PLAN --only ID` (model, data, out, settings).
    pub train_args: Vec<String>,
    /// Extra `#SBATCH` options (without the prefix) for the training and evaluation jobs,
    /// e.g. `--gres=gpu:1`; the merge job runs on the CPU without them.
    pub sbatch_options: Vec<String>,
    /// Array tasks running at once (`%N`), unlimited when `None`.
    pub throttle: Option<usize>,
    /// Chain `pool merge --groupwise` (DATM) after the array, with these extra arguments.
    pub merge: Option<Vec<String>>,
    /// Chain `pool translate` after the merge (or after the array), with these arguments
    /// after `--pool MANIFEST` (model, data, out, decoding).
    pub evaluate: Option<Vec<String>>,
}

/// The submit script for `plan` (see the module documentation).
pub fn submit_script(plan: &PoolPlan, jobs: &SlurmJobs) -> Result<String, PoolError> {
    let ids: Vec<&str> = plan
        .adapters
        .iter()
        .filter(|a| a.is_trained())
        .map(|a| a.id.as_str())
        .collect();
    if ids.is_empty() {
        return Err(PoolError::Plan("the plan has no adapters to train".into()));
    }
    if jobs.merge.is_some() && plan.strategy != Strategy::Dat {
        return Err(PoolError::Plan(format!(
            "a DATM merge needs a dat plan, not {}",
            plan.strategy
        )));
    }
    let dir = format!("{}/slurm", jobs.pool);
    let name = format!("datm-{}", plan.strategy);
    let mut s = String::from("#!/bin/bash\n");
    let _ = writeln!(
        s,
        "# Submits the {} adapters of a {} pool as a Slurm job array{}{}.\n\
         # Run it with bash; it prints the ids of the jobs it submitted.",
        ids.len(),
        plan.strategy,
        if jobs.merge.is_some() {
            ", then the DATM merge"
        } else {
            ""
        },
        if jobs.evaluate.is_some() {
            ", then translation and scoring"
        } else {
            ""
        },
    );
    s.push_str("set -euo pipefail\n");
    let _ = writeln!(s, "DATM=\"${{DATM:-{}}}\"", shell_quote(&jobs.datm));
    let _ = writeln!(s, "JOBS={}", shell_quote(&dir));
    s.push_str("mkdir -p \"$JOBS\"\n");

    let train = format!(
        "IDS=({})\nID=\"${{IDS[$((DATM_ARRAY_OFFSET + SLURM_ARRAY_TASK_ID))]}}\"\n\
         exec \"$DATM\" pool train --plan {} --only \"$ID\"{}\n",
        ids.iter()
            .map(|id| shell_quote(id))
            .collect::<Vec<_>>()
            .join(" "),
        shell_quote(&jobs.plan),
        words(&jobs.train_args)
    );
    job_file(
        &mut s,
        "train",
        &name,
        "%A_%a",
        &jobs.sbatch_options,
        &train,
    );
    submit_array(&mut s, ids.len(), jobs.throttle);
    s.push_str("AFTER=$(IFS=:; echo \"${TRAIN[*]}\")\n");
    s.push_str("echo \"train: ${TRAIN[*]} (${#TRAIN[@]} array job(s))\"\n");

    let mut manifest = format!("{}/pool.toml", jobs.pool);
    if let Some(extra) = &jobs.merge {
        let body = format!(
            "exec \"$DATM\" pool merge --groupwise --plan {} --pool {}{}\n",
            shell_quote(&manifest),
            shell_quote(&jobs.pool),
            words(extra)
        );
        job_file(&mut s, "merge", &name, "%j", &[], &body);
        submit_after(&mut s, "merge");
        manifest = format!("{}/datm.toml", jobs.pool);
    }
    if let Some(args) = &jobs.evaluate {
        let body = format!(
            "exec \"$DATM\" pool translate --pool {}{}\n",
            shell_quote(&manifest),
            words(args)
        );
        job_file(&mut s, "evaluate", &name, "%j", &jobs.sbatch_options, &body);
        submit_after(&mut s, "evaluate");
    }
    Ok(s)
}

/// Appends commands writing `$JOBS/<step>.sbatch`, a batch script running `body`.
fn job_file(s: &mut String, step: &str, name: &str, log: &str, options: &[String], body: &str) {
    let _ = writeln!(s, "cat > \"$JOBS/{step}.sbatch\" <<'DATM_JOB'");
    s.push_str("#!/bin/bash\n");
    let _ = writeln!(s, "#SBATCH --job-name={name}-{step}");
    let _ = writeln!(s, "#SBATCH --output={step}-{log}.log");
    for opt in options {
        let _ = writeln!(s, "#SBATCH {opt}");
    }
    s.push_str("set -euo pipefail\n");
    s.push_str(body);
    s.push_str("DATM_JOB\n");
}

/// Appends the submission of the training array: `n` tasks in arrays of at most the
/// cluster's `MaxArraySize`, their job ids collected in `TRAIN`.
fn submit_array(s: &mut String, n: usize, throttle: Option<usize>) {
    let throttle = throttle.map(|t| format!("%{t}")).unwrap_or_default();
    let _ = writeln!(
        s,
        "MAX=$(scontrol show config 2>/dev/null | awk '$1 == \"MaxArraySize\" {{print $3}}')\n\
         MAX=${{MAX:-{DEFAULT_MAX_ARRAY_SIZE}}}\n\
         TRAIN=()\n\
         for ((OFF = 0; OFF < {n}; OFF += MAX)); do\n  \
           LAST=$(( {n} - OFF < MAX ? {n} - OFF - 1 : MAX - 1 ))\n  \
           ID=$(cd \"$JOBS\" && sbatch --parsable --array=\"0-$LAST{throttle}\" \
         --export=\"ALL,DATM=$DATM,DATM_ARRAY_OFFSET=$OFF\" train.sbatch)\n  \
           TRAIN+=(\"${{ID%%;*}}\")\n\
         done"
    );
}

/// Appends the submission of `$JOBS/<step>.sbatch` after the jobs in `$AFTER`, which then
/// becomes this job.
fn submit_after(s: &mut String, step: &str) {
    let _ = writeln!(
        s,
        "ID=$(cd \"$JOBS\" && sbatch --parsable --dependency=\"afterok:$AFTER\" \
         --export=\"ALL,DATM=$DATM\" {step}.sbatch)\n\
         AFTER=\"${{ID%%;*}}\"\n\
         echo \"{step}: $AFTER\""
    );
}

/// `args` as shell words, each preceded by a space.
fn words(args: &[String]) -> String {
    args.iter()
        .map(|a| format!(" {}", shell_quote(a)))
        .collect()
}

/// Quotes a word for POSIX shells when it holds anything but safe characters.
pub fn shell_quote(word: &str) -> String {
    let safe = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if safe {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}
