//! The trainer's view of the variables: a stable order for optimizer and EMA state. (Their
//! seeded creation is `stipple_nn::init`.)

use candle_core::Var;
use candle_nn::VarMap;

/// The variables of `varmap` sorted by name (a stable order for optimizer and EMA state).
pub fn named_vars(varmap: &VarMap) -> Vec<(String, Var)> {
    let mut v: Vec<_> = varmap.data().lock().expect("varmap lock").iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}
