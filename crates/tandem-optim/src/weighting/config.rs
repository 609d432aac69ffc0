//! [`WeightingConfig`]: a weighting as serde data (for experiment files).
use super::{Dwa, Equal, GradNorm, GradNormUpdate, PcGrad, Static, Uncertainty, Weighting};
use crate::{OptimError, Result};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tandem_tensor::{TaskInfo, TaskList};

/// A method of the catalogue as configuration: validates its own keys and builds its
/// [`Weighting`]. Every method file (`mgda.rs`, `cagrad.rs`, ...) defines one, and
/// [`WeightingConfig`] lists them.
pub trait MethodConfig {
    /// Checks every value, naming the offending key (`weighting.c`, ...).
    fn validate(&self) -> Result<()> {
        Ok(())
    }

    /// Builds the weighting for `tasks`; learnable parameters go under `vb` (already
    /// `weighting`).
    fn build(&self, tasks: &[TaskInfo], vb: VarBuilder) -> Result<Box<dyn Weighting>>;
}

/// Declares [`WeightingConfig`] with the hand-written variants and one newtype variant per
/// catalogue method (`Variant(Config) = "kind"`), with its `kind`, `validate` and `build` arms.
macro_rules! weighting_config {
    ($($(#[$doc:meta])* $variant:ident($cfg:ty) = $kind:literal,)*) => {
        /// Which weighting to use, with its hyper-parameters. Serialised with a `kind` tag:
        ///
        /// ```
        /// use tandem_optim::WeightingConfig;
        /// let c: WeightingConfig = serde_json::from_str(r#"{"kind": "gradnorm", "alpha": 1.0}"#)?;
        /// assert_eq!(c, WeightingConfig::GradNorm { alpha: 1.0, lr: 0.025, update: Default::default() });
        /// let c: WeightingConfig = serde_json::from_str(r#"{"kind": "static", "weights": {"smile": 0.1}}"#)?;
        /// # Ok::<(), serde_json::Error>(())
        /// ```
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
        #[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
        pub enum WeightingConfig {
    /// [`Equal`]: `L = Σ_t L_t`.
    #[default]
    Equal,
    /// [`Static`]: `L = Σ_t λ_t L_t`; tasks not named get `aux` if they are auxiliary and
    /// `aux` is set, else `λ = 1`.
    Static {
        /// `λ_t` by task name.
        #[serde(default)]
        weights: BTreeMap<String, f64>,
        /// The weight of every auxiliary task not named in `weights`, e.g.
        /// `{ kind = "static", aux = 0.01 }`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        aux: Option<f64>,
    },
    /// [`Uncertainty`]: `Σ_t c_t e^{−s_t} L_t + ½ s_t` with learnable `s_t`.
    Uncertainty {
        /// Initial `s_t = log σ_t²`. Default 0.
        #[serde(default)]
        init: f64,
    },
    /// [`Dwa`]: `λ_k = K·softmax_k(L_k(e−1)/L_k(e−2) / T)`.
    Dwa {
        /// Temperature `T`. Default 2.
        #[serde(default = "default_temperature")]
        temperature: f64,
    },
    /// [`GradNorm`]: weights moved to balance `w_i‖∇_W L_i‖` against `Ḡ·r_i^α`.
    #[serde(rename = "gradnorm")]
    GradNorm {
        /// Asymmetry `α`. Default 1.5.
        #[serde(default = "default_alpha")]
        alpha: f64,
        /// Learning rate of the weights, `η_w`. Default 0.025 (unused with `update = "libmtl"`).
        #[serde(default = "default_gradnorm_lr")]
        lr: f64,
        /// `paper` (default) or `libmtl` (softmax weights trained by the model's optimizer,
        /// a first epoch of equal weights; see [`GradNorm`]).
        #[serde(default, skip_serializing_if = "GradNormUpdate::is_default")]
        update: GradNormUpdate,
    },
    /// [`PcGrad`]: conflicting shared gradients projected onto each other's normal plane.
    #[serde(rename = "pcgrad")]
    PcGrad,

            $(
                $(#[$doc])*
                #[serde(rename = $kind)]
                $variant($cfg),
            )*
        }

        impl WeightingConfig {
            /// The `kind` tag (`equal`, `static`, `mgda`, ...).
            pub fn kind(&self) -> &'static str {
                match self {
                    Self::Equal => "equal",
                    Self::Static { .. } => "static",
                    Self::Uncertainty { .. } => "uncertainty",
                    Self::Dwa { .. } => "dwa",
                    Self::GradNorm { .. } => "gradnorm",
                    Self::PcGrad => "pcgrad",
                    $(Self::$variant(_) => $kind,)*
                }
            }

            /// Every `kind` tag, in catalogue order.
            pub fn kinds() -> &'static [&'static str] {
                &["equal", "static", "uncertainty", "dwa", "gradnorm", "pcgrad", $($kind,)*]
            }

            fn method(&self) -> Option<&dyn MethodConfig> {
                match self {
                    $(Self::$variant(c) => Some(c),)*
                    _ => None,
                }
            }
        }
    };
}

weighting_config! {
    // Gradient methods (per-task gradients; `on = "parameters" | "representation"`).
    /// `mean`: `d = (1/T) Σ_t g_t` ([`Mean`](super::mean::Mean)).
    Mean(super::mean::MeanConfig) = "mean",
    /// `sum`: `d = Σ_t g_t`.
    Sum(super::mean::SumConfig) = "sum",
    /// `mgda`: the min-norm point of the rows' convex hull ([`Mgda`](super::mgda::Mgda)).
    Mgda(super::mgda::MgdaConfig) = "mgda",
    // -- TorchJD family (upgrad, dualproj, imtl_g, imtl_l, imtl, cagrad, nash_mtl, aligned_mtl, config, fairgrad) --
    /// `upgrad`: every row projected onto the rows' dual cone, averaged ([`UpGrad`](super::upgrad::UpGrad)).
    UpGrad(super::upgrad::UpGradConfig) = "upgrad",
    /// `dualproj`: the mean projected onto the rows' dual cone ([`DualProj`](super::dualproj::DualProj)).
    DualProj(super::dualproj::DualProjConfig) = "dualproj",
    /// `imtl_g`: equal projections on the unit task gradients ([`ImtlG`](super::imtl_g::ImtlG)).
    ImtlG(super::imtl_g::ImtlGConfig) = "imtl_g",
    /// `imtl`: learnable loss scales, then IMTL-G on the scaled losses ([`Imtl`](super::imtl::Imtl)).
    Imtl(super::imtl::ImtlConfig) = "imtl",
    /// `cagrad`: the worst task's improvement near the mean ([`Cagrad`](super::cagrad::Cagrad)).
    Cagrad(super::cagrad::CagradConfig) = "cagrad",
    /// `nash_mtl`: the Nash bargaining solution ([`NashMtl`](super::nash_mtl::NashMtl)).
    NashMtl(super::nash_mtl::NashMtlConfig) = "nash_mtl",
    /// `aligned_mtl`: aligned, equal-norm task gradients ([`AlignedMtl`](super::aligned_mtl::AlignedMtl)).
    AlignedMtl(super::aligned_mtl::AlignedMtlConfig) = "aligned_mtl",
    /// `config`: equal cosines with every task ([`ConFig`](super::con_fig::ConFig)).
    ConFig(super::con_fig::ConFigConfig) = "config",
    /// `fairgrad`: α-fair utilities ([`FairGrad`](super::fairgrad::FairGrad)).
    FairGrad(super::fairgrad::FairGradConfig) = "fairgrad",
    // -- end TorchJD family --
    // -- LibMTL gradient family (gradvac, graddrop, db_mtl, excess_mtl, moco, sdmgrad, modo) --
    /// `gradvac`: pull each gradient towards an EMA of pairwise similarities ([`GradVac`](super::gradvac::GradVac)).
    GradVac(super::gradvac::GradVacConfig) = "gradvac",
    /// `graddrop`: keep one gradient sign per coordinate, drawn by sign purity ([`GradDrop`](super::graddrop::GradDrop)).
    GradDrop(super::graddrop::GradDropConfig) = "graddrop",
    /// `db_mtl`: log-loss gradients, EMA, rescaled to the largest norm ([`DbMtl`](super::db_mtl::DbMtl)).
    DbMtl(super::db_mtl::DbMtlConfig) = "db_mtl",
    /// `excess_mtl`: weights by estimated excess risk, exponentiated updates ([`ExcessMtl`](super::excess_mtl::ExcessMtl)).
    ExcessMtl(super::excess_mtl::ExcessMtlConfig) = "excess_mtl",
    /// `moco`: tracked gradients and one softmax step of MGDA's weights ([`MoCo`](super::moco::MoCo)).
    MoCo(super::moco::MoCoConfig) = "moco",
    /// `sdmgrad`: simplex weights near the average gradient, single batch ([`SdmGrad`](super::sdmgrad::SdmGrad)).
    SdmGrad(super::sdmgrad::SdmGradConfig) = "sdmgrad",
    /// `modo`: one projected step of MGDA's weights, single batch ([`MoDo`](super::modo::MoDo)).
    MoDo(super::modo::MoDoConfig) = "modo",
    // -- end LibMTL gradient family --
    // -- main and auxiliary tasks (gcs, ol_aux, aux_project) --
    /// `gcs`: an auxiliary gradient only when its cosine with the main one is positive ([`Gcs`](super::gcs::Gcs)).
    Gcs(super::gcs::GcsConfig) = "gcs",
    /// `ol_aux`: auxiliary weights learnt online from their gradients' inner products with the main one ([`OlAux`](super::ol_aux::OlAux)).
    OlAux(super::ol_aux::OlAuxConfig) = "ol_aux",
    /// `aux_project`: conflicting auxiliary gradients projected off the main one ([`AuxProject`](super::aux_project::AuxProject)).
    AuxProject(super::aux_project::AuxProjectConfig) = "aux_project",
    // -- end main and auxiliary tasks --
    // -- loss-level family (rlw, famo, scale_invariant, gls, stch) --
    /// `rlw`: `Σ_t w_t L_t`, `w = softmax(z)`, `z ~ N(0, I)` each step ([`Rlw`](super::rlw::Rlw)).
    Rlw(super::rlw::RlwConfig) = "rlw",
    /// `famo`: `Σ_t (z_t/c) log L_t` with logits learnt from the loss decrease ([`Famo`](super::famo::Famo)).
    Famo(super::famo::FamoConfig) = "famo",
    /// `scale_invariant`: `Σ_t log L_t` ([`ScaleInvariant`](super::scale_invariant::ScaleInvariant)).
    ScaleInvariant(super::scale_invariant::ScaleInvariantConfig) = "scale_invariant",
    /// `gls`: the geometric mean `(Π_t L_t)^{1/T}` ([`Gls`](super::gls::Gls)).
    Gls(super::gls::GlsConfig) = "gls",
    /// `stch`: smooth Tchebycheff of the nadir-normalised log losses ([`Stch`](super::stch::Stch)).
    Stch(super::stch::StchConfig) = "stch",
    /// `imtl_l`: `Σ_t e^{s_t} L_t − s_t` with learnable `s_t` ([`ImtlL`](super::imtl_l::ImtlL)).
    ImtlL(super::imtl_l::ImtlLConfig) = "imtl_l",
    // -- end loss-level family --
}

fn default_temperature() -> f64 {
    2.0
}
fn default_alpha() -> f64 {
    1.5
}
fn default_gradnorm_lr() -> f64 {
    0.025
}

impl WeightingConfig {
    /// The weight of each task of `tasks` under a static weighting: named, else `aux` for an
    /// auxiliary task ([`TaskInfo::auxiliary`]), else 1.
    fn static_weights(
        &self,
        tasks: &[TaskInfo],
        weights: &BTreeMap<String, f64>,
        aux: Option<f64>,
    ) -> Vec<(String, f64)> {
        tasks
            .iter()
            .map(|t| {
                let w = match (weights.get(&t.name), aux) {
                    (Some(w), _) => *w,
                    (None, Some(a)) if t.auxiliary => a,
                    _ => 1.0,
                };
                (t.name.clone(), w)
            })
            .collect()
    }

    /// Checks every value against `tasks` (a `tandem_heads::TaskSet`, or a list of
    /// [`TaskInfo`]), naming the offending key.
    pub fn validate<T: TaskList + ?Sized>(&self, tasks: &T) -> Result<()> {
        match self {
            Self::Equal | Self::PcGrad => {}
            Self::Static { weights, aux } => {
                if let Some(a) = aux {
                    if !(a.is_finite() && *a >= 0.0) {
                        return Err(OptimError::config(
                            "weighting.aux",
                            format!("{a} is not a number ≥ 0"),
                        ));
                    }
                }
                let names = tasks.task_names();
                for (task, w) in weights {
                    if !names.contains(task) {
                        return Err(OptimError::config(
                            &format!("weighting.weights.{task}"),
                            format!("no task named {task:?} (tasks: {names:?})"),
                        ));
                    }
                    if !(w.is_finite() && *w >= 0.0) {
                        return Err(OptimError::config(
                            &format!("weighting.weights.{task}"),
                            format!("{w} is not a number ≥ 0"),
                        ));
                    }
                }
            }
            Self::Uncertainty { init } => {
                if !init.is_finite() {
                    return Err(OptimError::config("weighting.init", "must be finite"));
                }
            }
            Self::Dwa { temperature } => {
                if !(temperature.is_finite() && *temperature > 0.0) {
                    return Err(OptimError::config("weighting.temperature", "must be > 0"));
                }
            }
            Self::GradNorm { alpha, lr, .. } => {
                if !(alpha.is_finite() && *alpha >= 0.0) {
                    return Err(OptimError::config("weighting.alpha", "must be ≥ 0"));
                }
                if !(lr.is_finite() && *lr > 0.0) {
                    return Err(OptimError::config("weighting.lr", "must be > 0"));
                }
            }
            other => {
                if let Some(m) = other.method() {
                    m.validate()?;
                }
            }
        }
        Ok(())
    }

    /// Builds the weighting for `tasks` (a `tandem_heads::TaskSet`, or a list of [`TaskInfo`]).
    /// `vb` is the model's root builder: learnable weighting parameters are created under
    /// `vb.pp("weighting")` (uncertainty's `weighting.s.<task>`), so build the weighting before
    /// training and before loading a checkpoint.
    pub fn build<T: TaskList + ?Sized>(
        &self,
        tasks: &T,
        vb: VarBuilder,
    ) -> Result<Box<dyn Weighting>> {
        self.validate(tasks)?;
        Ok(match self {
            Self::Equal => Box::new(Equal::new()),
            Self::Static { weights, aux } => Box::new(Static::new(self.static_weights(
                &tasks.task_info(),
                weights,
                *aux,
            ))),
            Self::Uncertainty { init } => {
                Box::new(Uncertainty::with_init(tasks, *init, vb.pp("weighting"))?)
            }
            Self::Dwa { temperature } => Box::new(Dwa::new(*temperature)),
            Self::GradNorm { alpha, lr, update } => match update {
                GradNormUpdate::Paper => Box::new(GradNorm::new(*alpha, *lr)),
                GradNormUpdate::Libmtl => {
                    Box::new(GradNorm::libmtl(*alpha, tasks, vb.pp("weighting"))?)
                }
            },
            Self::PcGrad => Box::new(PcGrad::new()),
            other => match other.method() {
                Some(m) => m.build(&tasks.task_info(), vb.pp("weighting"))?,
                None => {
                    return Err(OptimError::config(
                        "weighting.kind",
                        format!("{} has no builder", other.kind()),
                    ))
                }
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weighting::On;
    use candle_core::{DType, Device};
    use candle_nn::VarMap;

    #[test]
    fn every_kind_parses_with_defaults_and_builds() -> Result<()> {
        let tasks = [
            TaskInfo::regression("landmarks"),
            TaskInfo::classification("smile").auxiliary(),
        ];
        let vars = VarMap::new();
        let vb = VarBuilder::from_varmap(&vars, DType::F32, &Device::Cpu);
        for (json, name) in [
            (r#"{"kind":"equal"}"#, "equal"),
            (r#"{"kind":"static","weights":{"smile":0.5}}"#, "static"),
            (r#"{"kind":"uncertainty"}"#, "uncertainty"),
            (r#"{"kind":"dwa"}"#, "dwa"),
            (r#"{"kind":"gradnorm"}"#, "gradnorm"),
            (r#"{"kind":"pcgrad"}"#, "pcgrad"),
        ] {
            let c: WeightingConfig = serde_json::from_str(json)
                .map_err(|e| OptimError::config("json", e.to_string()))?;
            assert_eq!(c.kind(), name);
            assert_eq!(c.build(&tasks, vb.clone())?.name(), name);
            let back: WeightingConfig = serde_json::from_str(
                &serde_json::to_string(&c)
                    .map_err(|e| OptimError::config("json", e.to_string()))?,
            )
            .map_err(|e| OptimError::config("json", e.to_string()))?;
            assert_eq!(back, c);
        }
        assert_eq!(
            serde_json::from_str::<WeightingConfig>(r#"{"kind":"dwa"}"#).ok(),
            Some(WeightingConfig::Dwa { temperature: 2.0 })
        );
        assert!(serde_json::from_str::<WeightingConfig>(r#"{"kind":"dwa","temp":1}"#).is_err());
        assert!(WeightingConfig::Static {
            weights: [("nose".to_string(), 1.0)].into(),
            aux: None,
        }
        .build(&tasks, vb.clone())
        .is_err());
        assert!(vars
            .data()
            .lock()
            .map(|d| d.contains_key("weighting.s.smile"))
            .unwrap_or(false));
        Ok(())
    }

    #[test]
    fn catalogue_methods_parse_with_defaults_and_reject_unknown_keys() -> Result<()> {
        let tasks = [
            TaskInfo::regression("landmarks"),
            TaskInfo::classification("smile").auxiliary(),
        ];
        let vars = VarMap::new();
        let vb = VarBuilder::from_varmap(&vars, DType::F32, &Device::Cpu);
        for kind in WeightingConfig::kinds() {
            let json = format!(r#"{{"kind":"{kind}"}}"#);
            let c: WeightingConfig =
                serde_json::from_str(&json).map_err(|e| OptimError::config(kind, e.to_string()))?;
            assert_eq!(c.kind(), *kind);
            assert_eq!(c.build(&tasks, vb.clone())?.name(), *kind);
            let toml_text =
                toml::to_string(&c).map_err(|e| OptimError::config(kind, e.to_string()))?;
            let back: WeightingConfig =
                toml::from_str(&toml_text).map_err(|e| OptimError::config(kind, e.to_string()))?;
            assert_eq!(back, c, "{toml_text}");
        }
        let rep: WeightingConfig =
            serde_json::from_str(r#"{"kind":"mgda","on":"representation"}"#).unwrap();
        assert!(matches!(rep, WeightingConfig::Mgda(c) if c.on == On::Representation));
        let err = serde_json::from_str::<WeightingConfig>(r#"{"kind":"mgda","c":0.5}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `c`"), "{err}");
        let err = serde_json::from_str::<WeightingConfig>(r#"{"kind":"nope"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown variant `nope`"), "{err}");
        Ok(())
    }

    #[test]
    fn static_aux_weighs_unnamed_auxiliary_tasks() {
        let tasks = [
            TaskInfo::regression("landmarks"),
            TaskInfo::classification("smile").auxiliary(),
            TaskInfo::classification("pose").auxiliary(),
        ];
        let c: WeightingConfig =
            serde_json::from_str(r#"{"kind": "static", "aux": 0.01, "weights": {"pose": 0.1}}"#)
                .unwrap();
        let WeightingConfig::Static { weights, aux } = &c else {
            panic!("{c:?}")
        };
        let w = c.static_weights(&tasks, weights, *aux);
        assert_eq!(
            w,
            vec![
                ("landmarks".to_string(), 1.0),
                ("smile".to_string(), 0.01),
                ("pose".to_string(), 0.1)
            ]
        );
        let bad: WeightingConfig =
            serde_json::from_str(r#"{"kind": "static", "aux": -1}"#).unwrap();
        assert!(bad
            .validate(&tasks)
            .unwrap_err()
            .to_string()
            .contains("weighting.aux"));
    }
}
