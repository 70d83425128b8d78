//! AdamW, clipping and the inverse-sqrt schedule against torch values
//! (`tests/fixtures/train/optim.json`, made by `tools/make_train_fixtures.py`).

use candle_core::{Device, Tensor, Var};
use datm_train::optim::{clip_grad_norm, AdamW, AdamWConfig, InverseSqrtSchedule};
use serde_json::Value;

fn fixture() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/train/optim.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn assert_close(got: &[f32], want: &[f32], rel: f32, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let tol = rel * w.abs().max(1e-3);
        assert!((g - w).abs() <= tol, "{what}[{i}]: got {g}, want {w}");
    }
}

#[test]
fn schedule_matches_transformers() {
    for s in fixture()["schedules"].as_array().unwrap() {
        let total = s["total_steps"].as_u64().unwrap() as usize;
        let ratio = s["warmup_ratio"].as_f64().unwrap();
        let sched = InverseSqrtSchedule::new(2e-3, ratio, total);
        for (step, want) in s["lrs"].as_array().unwrap().iter().enumerate() {
            let want = want.as_f64().unwrap();
            let got = sched.lr(step);
            assert!(
                (got - want).abs() <= 1e-12 * want.abs().max(1.0),
                "{total}/{ratio} step {step}"
            );
        }
    }
}

#[test]
fn adamw_and_clipping_match_torch() {
    let fx = fixture();
    let names = ["a", "b", "c"];
    let dev = Device::Cpu;
    let params: Vec<(String, Var)> = names
        .iter()
        .map(|n| {
            let shape: Vec<usize> = fx["shapes"][n]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap() as usize)
                .collect();
            let t = Tensor::from_vec(floats(&fx["init"][n]), shape, &dev).unwrap();
            (n.to_string(), Var::from_tensor(&t).unwrap())
        })
        .collect();
    let cfg = &fx["config"];
    let total = cfg["total_steps"].as_u64().unwrap() as usize;
    let sched = InverseSqrtSchedule::new(
        cfg["lr"].as_f64().unwrap(),
        cfg["warmup_ratio"].as_f64().unwrap(),
        total,
    );
    let mut opt = AdamW::new(AdamWConfig::default(), &params).unwrap();
    for (step, s) in fx["steps"].as_array().unwrap().iter().enumerate() {
        let mut grads: Vec<Tensor> = params
            .iter()
            .map(|(n, v)| Tensor::from_vec(floats(&s["grads"][n]), v.shape(), &dev).unwrap())
            .collect();
        assert!((sched.lr(step) - s["lr"].as_f64().unwrap()).abs() < 1e-12);
        let norm = clip_grad_norm(&mut grads, cfg["max_grad_norm"].as_f64().unwrap()).unwrap();
        let want_norm = s["grad_norm"].as_f64().unwrap();
        assert!(
            (norm - want_norm).abs() <= 1e-5 * want_norm,
            "step {step} norm {norm} vs {want_norm}"
        );
        opt.step(&params, &grads, sched.lr(step)).unwrap();
        for (n, v) in &params {
            let got = v
                .as_tensor()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            assert_close(
                &got,
                &floats(&s["params_after"][n]),
                1e-5,
                &format!("step {step} {n}"),
            );
        }
    }
}

#[test]
fn optimizer_state_round_trips() {
    let dev = Device::Cpu;
    let v = Var::from_tensor(&Tensor::new(&[1f32, -2.0, 3.0], &dev).unwrap()).unwrap();
    let params = vec![("w".to_string(), v)];
    let mut a = AdamW::new(AdamWConfig::default(), &params).unwrap();
    let g = [Tensor::new(&[0.5f32, 0.1, -0.3], &dev).unwrap()];
    a.step(&params, &g, 1e-2).unwrap();
    let state = a.state_tensors().unwrap();
    let mut b = AdamW::new(AdamWConfig::default(), &params).unwrap();
    b.load_state(&state, "test").unwrap();
    assert_eq!(b.steps_taken(), 1);
    let mut missing = state.clone();
    missing.remove("w.exp_avg");
    let err = b
        .load_state(&missing, "ckpt/optimizer.safetensors")
        .err()
        .unwrap();
    assert!(err.to_string().contains("w.exp_avg"), "{err}");
}

/// Moments built from a gradient that carries an autograd graph must not keep that graph
/// (it would chain every step's forward pass to the next and grow memory without bound).
#[test]
fn optimizer_state_holds_no_autograd_graph() {
    let dev = Device::Cpu;
    let v = Var::from_tensor(&Tensor::new(&[1f32, -2.0], &dev).unwrap()).unwrap();
    let params = vec![("w".to_string(), v.clone())];
    let graph_grad = (v.as_tensor() * 2.0).unwrap();
    assert!(graph_grad.track_op());
    let mut grads = vec![graph_grad];
    clip_grad_norm(&mut grads, 1.0).unwrap();
    assert!(!grads[0].track_op());
    let mut opt = AdamW::new(AdamWConfig::default(), &params).unwrap();
    opt.step(&params, &[(v.as_tensor() * 2.0).unwrap()], 1e-2)
        .unwrap();
    for (name, t) in opt.state_tensors().unwrap() {
        assert!(!t.track_op(), "{name} keeps an autograd graph");
    }
}
