//! TOML inputs, chosen by the first byte: pool manifests (`PoolPlan::from_toml`, with
//! validation), experiment files (`Experiment::from_toml`) and grouping files
//! (`Grouping::from_toml`).
#![no_main]

use std::path::Path;

use datm_lang::Grouping;
use datm_pool::pipeline::Experiment;
use datm_pool::PoolPlan;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    match which % 3 {
        0 => {
            if let Ok(plan) = PoolPlan::from_toml(text, "fuzz.toml") {
                let _ = (plan.to_toml(), plan.grouping(), plan.directions());
            }
        }
        1 => {
            if let Ok(e) = Experiment::from_toml(text, Path::new("fuzz/experiment.toml")) {
                let _ = e.systems();
            }
        }
        _ => {
            if let Ok(g) = Grouping::from_toml(text, "fuzz.toml") {
                let _ = g.to_toml();
            }
        }
    }
});
