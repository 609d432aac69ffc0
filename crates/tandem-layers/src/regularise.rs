//! The classic regularisers as trunk options: dropout, DropConnect, normalisation layers,
//! weight normalisation, SELU and weight initialisations.
//!
//! Every trunk ([`Tcdcn`](crate::Tcdcn), [`Mlp`](crate::Mlp)) takes the same keys under
//! `[model]`; all default to off, and with every default the trunk computes what it computed
//! before these options existed, bit for bit.
//!
//! ```toml
//! [model]
//! dropout = 0.3              # inverted dropout after every stage (or only `dropout_at`)
//! dropout_at = ["fc"]        # default: every stage
//! dropconnect = 0.3          # DropConnect on the fully connected weights
//! norm = "batch"             # "none" | "batch" | "layer" | "instance" | "group"
//! groups = 4                 # group norm's groups
//! weight_norm = true         # w = g·v/‖v‖ on every conv and fc weight
//! activation = "selu"        # with alpha dropout where dropout is on
//! init = "he_normal"         # "default" | "glorot_uniform" | "glorot_normal" | "he_uniform"
//!                            # | "he_normal" | "lecun_normal"
//! ```
//!
//! # Where each one acts
//!
//! A stage is `conv → [norm] → act → [pool] → [dropout]` (TCDCN's `conv1`…`conv4`) or
//! `linear → [norm] → act → [dropout]` (TCDCN's `fc`, every MLP stage). Weight norm and the
//! initialisation apply to every conv and linear weight of the trunk, DropConnect to the
//! linear weights. Heads are not touched: they are the tasks' own.
//!
//! # Formulas and sources
//!
//! - **Dropout** (Srivastava et al., JMLR 2014), inverted as PyTorch's `nn.Dropout`:
//!   `y = a ⊙ m / (1 − p)`, `m ~ Bernoulli(1 − p)` element-wise, identity in evaluation. See
//!   [`dropout`](crate::dropout) for how the masks are seeded.
//! - **Alpha dropout** (Klambauer et al., NeurIPS 2017), what dropout becomes with
//!   `activation = "selu"`, as PyTorch's `nn.AlphaDropout`: a dropped unit is set to
//!   `α' = −λα`, then `y = A·(a ⊙ m + α'·(1 − m)) + B` with
//!   `A = ((1 − p)(1 + p·α'²))^{−1/2}`, `B = −A·p·α'`, which keeps zero mean and unit
//!   variance.
//! - **DropConnect** (Wan et al., ICML 2013): in training the linear layer uses
//!   `W ⊙ M / (1 − p)`, `M ~ Bernoulli(1 − p)` element-wise, one mask per batch; in
//!   evaluation `W` (the mean-field rule; the paper's Gaussian sampling at inference is not
//!   used).
//! - **Batch norm** (Ioffe & Szegedy, ICML 2015), candle's `BatchNorm`, as PyTorch's
//!   `BatchNorm1d/2d`: per channel, over the batch (and positions) in training,
//!   `y = γ·(x − μ_B)/√(σ²_B + ε) + β`, `ε = 10⁻⁵`, biased `σ²_B`; running statistics
//!   `r ← 0.9·r + 0.1·s` with the unbiased variance; evaluation uses them. They are buffers
//!   (`<stage>.norm.running_mean`, `running_var`), saved in checkpoints, not trained.
//! - **Layer norm** (Ba, Kiros & Hinton 2016): per sample over every channel and position,
//!   with a per-channel `γ, β` (PyTorch's `GroupNorm(1, C)`; on a feature vector exactly
//!   `LayerNorm(D)`).
//! - **Instance norm** (Ulyanov, Vedaldi & Lempitsky 2016): per sample and channel over the
//!   positions, affine (PyTorch's `GroupNorm(C, C)`, i.e. `InstanceNorm2d(affine=True)` without
//!   running statistics). A feature vector has one value per channel, which instance norm would
//!   map to `β`: the `fc` stage of TCDCN is left unnormalised, and the MLP rejects it.
//! - **Group norm** (Wu & He, ECCV 2018): per sample over groups of `C/G` channels and their
//!   positions, per-channel `γ, β` (PyTorch's `GroupNorm(G, C)`, `ε = 10⁻⁵`). `groups` must
//!   divide the width of every stage. Default `G = 4`, which divides TCDCN's widths
//!   (16, 48, 64, 64, 100); the paper's 32 does not.
//! - **Weight norm** (Salimans & Kingma, NeurIPS 2016), as PyTorch's `weight_norm(dim=0)`:
//!   `w = g·v/‖v‖` per output unit, parameters `weight_g` `[C_out, 1, …]` and `weight_v`;
//!   `v` starts as the layer's initial weight and `g` as its norm, so the network starts as
//!   without it.
//! - **Initialisations**, as `torch.nn.init` with PyTorch's fans (`fan_in = C_in·K²`,
//!   `fan_out = C_out·K²`): `glorot_uniform` `U(±√(6/(fan_in + fan_out)))` and
//!   `glorot_normal` `N(0, 2/(fan_in + fan_out))` (Glorot & Bengio, AISTATS 2010);
//!   `he_uniform` `U(±√(6/fan_in))` and `he_normal` `N(0, 2/fan_in)` (He et al., ICCV 2015);
//!   `lecun_normal` `N(0, 1/fan_in)` (LeCun et al. 1998, the initialisation SELU networks
//!   assume). These set the weights and zero the biases; `default` keeps PyTorch's layer
//!   defaults (`U(±1/√fan_in)` for weights and biases).
use crate::{LayerError, Result};
use serde::{Deserialize, Serialize};

/// The normalisation layer of every stage (`[model] norm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NormKind {
    /// No normalisation (the default).
    #[default]
    None,
    /// Batch normalisation with running statistics.
    Batch,
    /// Layer normalisation.
    Layer,
    /// Instance normalisation (convolution stages only).
    Instance,
    /// Group normalisation with `groups` groups.
    Group,
}

/// The initialisation of every conv and linear weight of the trunk (`[model] init`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WeightInit {
    /// PyTorch's layer defaults: weights and biases `U(±1/√fan_in)`.
    #[default]
    Default,
    /// `U(±√(6/(fan_in + fan_out)))`, biases 0.
    GlorotUniform,
    /// `N(0, 2/(fan_in + fan_out))`, biases 0.
    GlorotNormal,
    /// `U(±√(6/fan_in))`, biases 0.
    HeUniform,
    /// `N(0, 2/fan_in)`, biases 0.
    HeNormal,
    /// `N(0, 1/fan_in)`, biases 0.
    LecunNormal,
}

impl WeightInit {
    /// The initialisation of a weight with these fans, and of its bias.
    pub fn hints(self, fan_in: usize, fan_out: usize) -> (candle_nn::Init, candle_nn::Init) {
        use candle_nn::Init;
        let (fi, fo) = (fan_in.max(1) as f64, fan_out.max(1) as f64);
        let uniform = |b: f64| Init::Uniform { lo: -b, up: b };
        let normal = |s: f64| Init::Randn {
            mean: 0.0,
            stdev: s,
        };
        let weight = match self {
            Self::Default => {
                let b = uniform(1.0 / fi.sqrt());
                return (b, b);
            }
            Self::GlorotUniform => uniform((6.0 / (fi + fo)).sqrt()),
            Self::GlorotNormal => normal((2.0 / (fi + fo)).sqrt()),
            Self::HeUniform => uniform((6.0 / fi).sqrt()),
            Self::HeNormal => normal((2.0 / fi).sqrt()),
            Self::LecunNormal => normal((1.0 / fi).sqrt()),
        };
        (weight, Init::Const(0.0))
    }
}

/// The regulariser options of a trunk, as one value the layers read.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Regularisers {
    /// Dropout probability in `[0, 1)`.
    pub dropout: f32,
    /// The stages dropout follows; `None`: every stage.
    pub dropout_at: Option<Vec<String>>,
    /// DropConnect probability in `[0, 1)` on the linear weights.
    pub dropconnect: f32,
    /// Normalisation layer.
    pub norm: NormKind,
    /// Groups of group norm.
    pub groups: usize,
    /// Weight normalisation of every conv and linear weight.
    pub weight_norm: bool,
    /// Weight initialisation.
    pub init: WeightInit,
    /// Alpha dropout instead of dropout (the activation is SELU).
    pub alpha_dropout: bool,
    /// Mixed into every dropout and DropConnect mask's seed (the run's seed).
    pub mask_seed: u64,
}

impl Regularisers {
    /// Checks the options against the trunk's stages (`(name, width, spatial)`), returning an
    /// error naming the key: `dropout`, `dropconnect` (probabilities in `[0, 1)`), `groups`
    /// (at least 1, dividing every normalised stage's width), `dropout_at` (known stage
    /// names), `norm` (instance norm needs a stage with positions).
    pub fn validate(&self, stages: &[(String, usize, bool)]) -> Result<()> {
        for (key, p) in [("dropout", self.dropout), ("dropconnect", self.dropconnect)] {
            if !(0.0..1.0).contains(&p) {
                return Err(config_error(
                    key,
                    format!("{p} is not a probability in [0, 1)"),
                ));
            }
        }
        if let Some(at) = &self.dropout_at {
            for name in at {
                if !stages.iter().any(|(s, _, _)| s == name) {
                    let known: Vec<&str> = stages.iter().map(|(s, _, _)| s.as_str()).collect();
                    return Err(config_error(
                        "dropout_at",
                        format!("no stage {name:?}; the trunk's stages are {known:?}"),
                    ));
                }
            }
        }
        match self.norm {
            NormKind::Group => {
                if self.groups == 0 {
                    return Err(config_error("groups", "must be at least 1".into()));
                }
                if let Some((name, width, _)) = stages.iter().find(|(_, w, _)| w % self.groups != 0)
                {
                    return Err(config_error(
                        "groups",
                        format!(
                            "{} groups do not divide the {width} channels of stage {name}",
                            self.groups
                        ),
                    ));
                }
            }
            NormKind::Instance if !stages.iter().any(|(_, _, spatial)| *spatial) => {
                return Err(config_error(
                    "norm",
                    "\"instance\" normalises over positions, and this trunk has none (use \"layer\")"
                        .into(),
                ));
            }
            _ => {}
        }
        Ok(())
    }

    /// Whether dropout follows stage `name`.
    pub fn drops_after(&self, name: &str) -> bool {
        self.dropout > 0.0
            && self
                .dropout_at
                .as_ref()
                .is_none_or(|at| at.iter().any(|s| s == name))
    }
}

fn config_error(field: &str, reason: String) -> LayerError {
    LayerError::Config {
        field: field.into(),
        reason,
    }
}

/// Serde defaults of the option fields.
pub(crate) fn default_groups() -> usize {
    4
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stages() -> Vec<(String, usize, bool)> {
        vec![("conv1".into(), 16, true), ("fc".into(), 100, false)]
    }

    fn field(r: Regularisers) -> String {
        match r.validate(&stages()) {
            Err(LayerError::Config { field, .. }) => field,
            Err(e) => format!("{e}"),
            Ok(()) => "ok".into(),
        }
    }

    #[test]
    fn validation_names_the_key() {
        let base = Regularisers {
            groups: 4,
            ..Default::default()
        };
        assert_eq!(field(base.clone()), "ok");
        for p in [1.0, -0.1, f32::NAN] {
            let r = Regularisers {
                dropout: p,
                ..base.clone()
            };
            assert_eq!(field(r), "dropout");
            let r = Regularisers {
                dropconnect: p,
                ..base.clone()
            };
            assert_eq!(field(r), "dropconnect");
        }
        let r = Regularisers {
            norm: NormKind::Group,
            groups: 3,
            ..base.clone()
        };
        assert_eq!(field(r), "groups");
        let r = Regularisers {
            norm: NormKind::Group,
            groups: 0,
            ..base.clone()
        };
        assert_eq!(field(r), "groups");
        let r = Regularisers {
            dropout: 0.2,
            dropout_at: Some(vec!["conv9".into()]),
            ..base.clone()
        };
        assert_eq!(field(r), "dropout_at");
        let r = Regularisers {
            norm: NormKind::Instance,
            ..base.clone()
        };
        assert!(r.validate(&[("fc1".into(), 8, false)]).is_err());
        assert!(r.validate(&stages()).is_ok());
    }

    #[test]
    fn dropout_placement() {
        let r = Regularisers {
            dropout: 0.5,
            dropout_at: Some(vec!["fc".into()]),
            ..Default::default()
        };
        assert!(r.drops_after("fc") && !r.drops_after("conv1"));
        let all = Regularisers {
            dropout: 0.5,
            ..Default::default()
        };
        assert!(all.drops_after("conv1") && all.drops_after("fc"));
        assert!(!Regularisers::default().drops_after("fc"));
    }

    #[test]
    fn init_hints_follow_torch_fans() {
        use candle_nn::Init;
        let (w, b) = WeightInit::GlorotUniform.hints(10, 30);
        let bound = (6.0f64 / 40.0).sqrt();
        assert!(matches!(w, Init::Uniform { lo, up } if (up - bound).abs() < 1e-12 && lo == -up));
        assert!(matches!(b, Init::Const(c) if c == 0.0));
        let (w, _) = WeightInit::HeNormal.hints(8, 1);
        assert!(matches!(w, Init::Randn { stdev, .. } if (stdev - 0.5).abs() < 1e-12));
        let (w, _) = WeightInit::LecunNormal.hints(4, 1);
        assert!(matches!(w, Init::Randn { stdev, .. } if (stdev - 0.5).abs() < 1e-12));
        let (w, b) = WeightInit::Default.hints(4, 9);
        assert!(matches!(w, Init::Uniform { up, .. } if (up - 0.5).abs() < 1e-12));
        assert!(matches!(b, Init::Uniform { up, .. } if (up - 0.5).abs() < 1e-12));
    }
}
