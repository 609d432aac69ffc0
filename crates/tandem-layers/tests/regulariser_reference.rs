//! The regularisation layers against PyTorch: the values in `tests/data/` come from
//! `benches/pytorch/regulariser_reference.py` (PyTorch's layers on the inputs stored beside
//! them); this test needs no Python.
use candle_core::{DType, Device, Result, Tensor, Var};
use candle_nn::VarMap;
use serde_json::Value;
use tandem_layers::dropout::{alpha_dropout_with_mask, dropout_with_mask};
use tandem_layers::{Conv2d, Dense, KernelBackend, NormKind, StageNorm, WeightInit};
use tandem_tensor::ops::{bias_act, Activation, Backend};

fn reference() -> Value {
    let text = include_str!("data/regulariser_reference.json");
    serde_json::from_str(text).unwrap_or(Value::Null)
}

fn floats(v: &Value, key: &str) -> Vec<f32> {
    v[key]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_f64)
                .map(|x| x as f32)
                .collect()
        })
        .unwrap_or_default()
}

fn dims(v: &Value, key: &str) -> Vec<usize> {
    v[key]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_u64)
                .map(|x| x as usize)
                .collect()
        })
        .unwrap_or_default()
}

fn tensor(v: &Value, key: &str, shape: &[usize]) -> Result<Tensor> {
    Tensor::from_vec(floats(v, key), shape, &Device::Cpu)
}

fn values(t: &Tensor) -> Result<Vec<f32>> {
    t.flatten_all()?.to_vec1::<f32>()
}

/// Largest `|a − b|` over `max(1, max |b|)`.
fn assert_close(what: &str, a: &[f32], b: &[f32], tol: f32) {
    assert_eq!(
        a.len(),
        b.len(),
        "{what}: {} values against {}",
        a.len(),
        b.len()
    );
    assert!(!b.is_empty(), "{what}: no reference values");
    let scale = b.iter().fold(1f32, |m, v| m.max(v.abs()));
    let err = a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale;
    assert!(err < tol, "{what}: relative error {err}");
}

fn set(vars: &VarMap, name: &str, t: &Tensor) -> Result<()> {
    let data = vars
        .data()
        .lock()
        .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
    let var = data
        .get(name)
        .ok_or_else(|| candle_core::Error::Msg(format!("no variable {name}")))?;
    var.set(&t.reshape(var.shape())?)
}

fn get(vars: &VarMap, name: &str) -> Result<Var> {
    let data = vars
        .data()
        .lock()
        .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
    data.get(name)
        .cloned()
        .ok_or_else(|| candle_core::Error::Msg(format!("no variable {name}")))
}

/// Runs `f` on the case's input, checks `y` and the gradients of `Σ y ⊙ r` w.r.t. the input
/// and the named variables (`(json key, var name)`).
fn check_case(
    what: &str,
    case: &Value,
    vars: &VarMap,
    grads: &[(&str, &str)],
    f: impl Fn(&Tensor) -> Result<Tensor>,
) -> Result<()> {
    let shape = dims(case, "shape");
    let x = Var::from_tensor(&tensor(case, "x", &shape)?)?;
    let y = f(x.as_tensor())?;
    assert_close(&format!("{what} y"), &values(&y)?, &floats(case, "y"), 1e-5);
    let r = tensor(case, "r", y.dims())?;
    let g = (&y * &r)?.sum_all()?.backward()?;
    let dx = g
        .get(&x)
        .ok_or_else(|| candle_core::Error::Msg("no dx".into()))?;
    assert_close(
        &format!("{what} dx"),
        &values(dx)?,
        &floats(case, "dx"),
        1e-4,
    );
    for (key, name) in grads {
        let v = get(vars, name)?;
        let d = g
            .get(&v)
            .ok_or_else(|| candle_core::Error::Msg(format!("no gradient of {name}")))?;
        assert_close(
            &format!("{what} {key}"),
            &values(d)?,
            &floats(case, key),
            1e-4,
        );
    }
    Ok(())
}

/// A layer's forward pass, boxed.
type Forward = dyn Fn(&Tensor) -> Result<Tensor>;

fn norm_case(key: &str, kind: NormKind, spatial: bool, groups: usize) -> Result<()> {
    let data = reference();
    let case = &data[key];
    let shape = dims(case, "shape");
    let c = shape[1];
    let vars = VarMap::new();
    let vb = tandem_tensor::seeded_var_builder(&vars, 0, DType::F32, &Device::Cpu);
    let norm = StageNorm::new(kind, c, spatial, groups, vb.pp("norm"))?
        .ok_or_else(|| candle_core::Error::Msg("no layer".into()))?;
    set(&vars, "norm.weight", &tensor(case, "gamma", &[c])?)?;
    set(&vars, "norm.bias", &tensor(case, "beta", &[c])?)?;
    let grads = [("dgamma", "norm.weight"), ("dbeta", "norm.bias")];
    check_case(key, case, &vars, &grads, |x| norm.forward(x, true))?;
    if kind == NormKind::Batch {
        let rm = values(get(&vars, "norm.running_mean")?.as_tensor())?;
        let rv = values(get(&vars, "norm.running_var")?.as_tensor())?;
        assert_close("running_mean", &rm, &floats(case, "running_mean"), 1e-5);
        assert_close("running_var", &rv, &floats(case, "running_var"), 1e-5);
        let y = norm.forward(&tensor(case, "x_eval", &shape)?, false)?;
        assert_close("eval y", &values(&y)?, &floats(case, "y_eval"), 1e-5);
    }
    Ok(())
}

#[test]
fn batch_norm_matches_pytorch() -> Result<()> {
    norm_case("batch_norm_2d", NormKind::Batch, true, 1)?;
    norm_case("batch_norm_1d", NormKind::Batch, false, 1)
}

#[test]
fn layer_instance_and_group_norm_match_pytorch() -> Result<()> {
    norm_case("layer_norm_2d", NormKind::Layer, true, 1)?;
    norm_case("layer_norm_1d", NormKind::Layer, false, 1)?;
    norm_case("instance_norm_2d", NormKind::Instance, true, 1)?;
    norm_case("group_norm_2d", NormKind::Group, true, 2)?;
    norm_case("group_norm_1d", NormKind::Group, false, 2)
}

#[test]
fn weight_norm_matches_pytorch() -> Result<()> {
    let data = reference();
    for (key, conv) in [("weight_norm_conv", true), ("weight_norm_linear", false)] {
        let case = &data[key];
        let vars = VarMap::new();
        let vb = tandem_tensor::seeded_var_builder(&vars, 0, DType::F32, &Device::Cpu);
        let v_shape = dims(case, "v_shape");
        let out = v_shape[0];
        let forward: Box<Forward> = if conv {
            let layer = Conv2d::with_options(
                (v_shape[1], out, v_shape[2], 0),
                WeightInit::Default,
                true,
                KernelBackend::Tandem,
                vb.pp("layer"),
            )?;
            Box::new(move |x| layer.forward(x))
        } else {
            let layer = Dense::new(v_shape[1], out, WeightInit::Default, true, vb.pp("layer"))?;
            Box::new(move |x| layer.matmul(x, false, 0.0, 0)?.broadcast_add(layer.bias()))
        };
        set(
            &vars,
            "layer.weight_g",
            &tensor(case, "g", &dims(case, "g_shape"))?,
        )?;
        set(&vars, "layer.weight_v", &tensor(case, "v", &v_shape)?)?;
        set(&vars, "layer.bias", &tensor(case, "bias", &[out])?)?;
        let grads = [("dg", "layer.weight_g"), ("dv", "layer.weight_v")];
        check_case(key, case, &vars, &grads, forward)?;
    }
    Ok(())
}

#[test]
fn selu_matches_pytorch_on_both_backends() -> Result<()> {
    let data = reference();
    let vars = VarMap::new();
    for backend in [Backend::Tandem, Backend::Candle] {
        check_case("selu", &data["selu"], &vars, &[], |x| {
            bias_act(x, None, Activation::Selu, backend)
        })?;
    }
    Ok(())
}

#[test]
fn dropout_and_alpha_dropout_scale_as_pytorch() -> Result<()> {
    let data = reference();
    let case = &data["dropout"];
    let shape = dims(case, "shape");
    let x = tensor(case, "x", &shape)?;
    let p = case["p"].as_f64().unwrap_or(0.0) as f32;
    let y = dropout_with_mask(&x, &tensor(case, "keep", &shape)?, p)?;
    assert_close("dropout", &values(&y)?, &floats(case, "y"), 1e-6);
    let pa = case["alpha_p"].as_f64().unwrap_or(0.0) as f32;
    let keep = tensor(case, "alpha_keep", &shape)?;
    let dropped = floats(case, "alpha_keep")
        .iter()
        .filter(|&&k| k == 0.0)
        .count();
    assert!(dropped > 40, "{dropped} dropped units");
    let y = alpha_dropout_with_mask(&x, &keep, pa)?;
    assert_close(
        "alpha dropout",
        &values(&y)?,
        &floats(case, "alpha_y"),
        1e-5,
    );
    Ok(())
}

#[test]
fn initialisations_follow_torch_nn_init() -> Result<()> {
    let data = reference();
    let cases = data["inits"].as_array().cloned().unwrap_or_default();
    assert_eq!(cases.len(), 4);
    for case in &cases {
        let shape = dims(case, "shape");
        let k2: usize = shape[2..].iter().product();
        let (fan_in, fan_out) = (shape[1] * k2, shape[0] * k2);
        assert_eq!(fan_in as u64, case["fan_in"].as_u64().unwrap_or(0));
        assert_eq!(fan_out as u64, case["fan_out"].as_u64().unwrap_or(0));
        for (name, init) in [
            ("default", WeightInit::Default),
            ("glorot_uniform", WeightInit::GlorotUniform),
            ("glorot_normal", WeightInit::GlorotNormal),
            ("he_uniform", WeightInit::HeUniform),
            ("he_normal", WeightInit::HeNormal),
            ("lecun_normal", WeightInit::LecunNormal),
        ] {
            let want = case[name].as_f64().unwrap_or(f64::NAN);
            let got = match init.hints(fan_in, fan_out).0 {
                candle_nn::Init::Uniform { up, .. } => up,
                candle_nn::Init::Randn { stdev, .. } => stdev,
                _ => f64::NAN,
            };
            assert!(
                (got - want).abs() < 1e-12 * want,
                "{name} {shape:?}: {got} vs {want}"
            );
        }
    }
    // the sampled weights of a conv layer have that bound or standard deviation
    let (c_in, c_out, k) = (16, 48, 3);
    for init in [
        WeightInit::GlorotUniform,
        WeightInit::HeNormal,
        WeightInit::LecunNormal,
    ] {
        let vars = VarMap::new();
        let vb = tandem_tensor::seeded_var_builder(&vars, 5, DType::F32, &Device::Cpu);
        let conv = Conv2d::with_options((c_in, c_out, k, 0), init, false, Backend::Tandem, vb)?;
        let w: Vec<f64> = values(&conv.weight()?)?
            .iter()
            .map(|&v| f64::from(v))
            .collect();
        let std = (w.iter().map(|v| v * v).sum::<f64>() / w.len() as f64).sqrt();
        let max = w.iter().fold(0f64, |m, v| m.max(v.abs()));
        let (hint, _) = init.hints(c_in * k * k, c_out * k * k);
        match hint {
            candle_nn::Init::Uniform { up, .. } => {
                assert!(
                    max <= up && max > 0.99 * up,
                    "{init:?}: max {max} bound {up}"
                );
                assert!(
                    (std / (up / 3f64.sqrt()) - 1.0).abs() < 0.05,
                    "{init:?}: std {std}"
                );
            }
            candle_nn::Init::Randn { stdev, .. } => {
                assert!(
                    (std / stdev - 1.0).abs() < 0.05,
                    "{init:?}: std {std} vs {stdev}"
                );
            }
            _ => panic!("unexpected hint"),
        }
        assert_eq!(
            values(conv.bias())?,
            vec![0.0; c_out],
            "{init:?}: biases are zero"
        );
    }
    Ok(())
}
