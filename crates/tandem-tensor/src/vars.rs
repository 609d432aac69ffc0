//! Variables in sorted-name order.
//!
//! `VarMap` and `GradStore` are hash maps; everything in tandem that walks variables (the
//! optimizer, gradient surgery, checkpoints) goes through these functions so that the order,
//! and so every floating-point result, is the same on every run.
use candle_core::Var;
use candle_nn::VarMap;

/// All variables of `vars`, sorted by name.
pub fn sorted_vars(vars: &VarMap) -> Vec<(String, Var)> {
    let mut v: Vec<(String, Var)> = match vars.data().lock() {
        Ok(d) => d.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        Err(p) => p
            .get_ref()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    };
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// The variables whose name equals one of `prefixes` or starts with `prefix.`, sorted by name.
///
/// ```
/// use candle_core::{DType, Device};
/// let vars = candle_nn::VarMap::new();
/// let vb = tandem_tensor::seeded_var_builder(&vars, 0, DType::F32, &Device::Cpu);
/// candle_nn::linear(2, 2, vb.pp("trunk").pp("fc"))?;
/// candle_nn::linear(2, 2, vb.pp("trunk2"))?;
/// let names: Vec<_> = tandem_tensor::select_vars(&vars, &["trunk".to_string()])
///     .into_iter().map(|(n, _)| n).collect();
/// assert_eq!(names, ["trunk.fc.bias", "trunk.fc.weight"]);
/// # Ok::<(), candle_core::Error>(())
/// ```
pub fn select_vars(vars: &VarMap, prefixes: &[String]) -> Vec<(String, Var)> {
    sorted_vars(vars)
        .into_iter()
        .filter(|(name, _)| {
            prefixes.iter().any(|p| {
                p.is_empty()
                    || name == p
                    || (name.starts_with(p.as_str()) && name.as_bytes().get(p.len()) == Some(&b'.'))
            })
        })
        .collect()
}

/// The last path components that name buffers (state, not parameters).
pub const BUFFER_NAMES: [&str; 2] = ["running_mean", "running_var"];

/// Whether the variable `name` is a buffer: its last path component is one of
/// [`BUFFER_NAMES`] (`trunk.conv1.norm.running_mean`).
///
/// ```
/// assert!(tandem_tensor::is_buffer("trunk.fc.norm.running_var"));
/// assert!(!tandem_tensor::is_buffer("trunk.fc.norm.weight"));
/// ```
pub fn is_buffer(name: &str) -> bool {
    let last = name.rsplit('.').next().unwrap_or(name);
    BUFFER_NAMES.contains(&last)
}

/// The variables of `vars` that are parameters (not [buffers](is_buffer)), sorted by name.
pub fn parameter_vars(vars: &VarMap) -> Vec<(String, Var)> {
    sorted_vars(vars)
        .into_iter()
        .filter(|(n, _)| !is_buffer(n))
        .collect()
}
