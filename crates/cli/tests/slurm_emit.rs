//! `pool train --emit slurm`: the submit script runs every job on the device asked for and
//! passes the training settings on; a device name that is not one fails before anything is
//! written. (scripts/slurm-test.sh runs such a script on a real one-node Slurm.)

mod common;

use common::{datm, model, run};

#[test]
fn emitted_jobs_carry_the_device_and_settings() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.toml");
    let text = datm(&["pool", "plan", "--strategy", "dat", "--langs", "de,fr"]);
    std::fs::write(&plan, text).unwrap();
    let model = model();
    let emit = |device: &[&str]| {
        let mut args = vec![
            "pool",
            "train",
            "--plan",
            plan.to_str().unwrap(),
            "--model",
            model.to_str().unwrap(),
            "--data",
            "data",
            "--out",
            "pool",
            "--emit",
            "slurm",
            "--evaluate",
            "eval",
            "--gradient-checkpointing",
        ];
        args.extend(device);
        run(&args)
    };
    for (flags, want) in [
        (&["--device", "cuda:1"][..], "cuda:1"),
        (&["--devices", "cuda:0,cuda:1"][..], "cuda"),
        (&[][..], "cpu"),
    ] {
        let out = emit(flags);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let script = String::from_utf8(out.stdout).unwrap();
        let train = script
            .lines()
            .find(|l| l.contains("pool train --plan"))
            .unwrap();
        assert!(train.contains(&format!("--device {want} ")), "{train}");
        assert!(train.contains("--gradient-checkpointing"), "{train}");
        let translate = script
            .lines()
            .find(|l| l.contains("pool translate"))
            .unwrap();
        assert!(
            translate.contains(&format!("--device {want}")),
            "{translate}"
        );
    }
    let out = emit(&["--device", "gpu"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("expected cpu, cuda or cuda:N"),
        "{err}"
    );
}
