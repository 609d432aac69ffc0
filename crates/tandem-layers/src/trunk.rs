//! [`Trunk`]: the shared feature extractor chosen by configuration, [`Tcdcn`] for images or
//! [`Mlp`] for tables.
//!
//! In TOML a [`TrunkConfig`] is a table with an optional `kind` (`"tcdcn"` or `"mlp"`) and the
//! fields of that kind's config:
//!
//! ```toml
//! [model]               # no kind: the TCDCN trunk, as in configs written before `kind`
//! input_size = 40
//!
//! [model]
//! kind = "mlp"
//! hidden = [256, 128]
//! dropout = 0.1
//! ```
//!
//! Without `kind` the table is a [`TcdcnConfig`], so existing configs keep working. Every
//! other key belongs to the chosen kind's struct, whose unknown keys are errors that name the
//! key. Serialising always writes `kind` followed by the fields, and reading that back gives
//! the same value.
use crate::{Backbone, Mlp, MlpConfig, Result, Tcdcn, TcdcnConfig};
use candle_core::Tensor;
use candle_nn::VarBuilder;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Which trunk to build, and its configuration. The default is TCDCN's default.
#[derive(Debug, Clone, PartialEq)]
pub enum TrunkConfig {
    /// The TCDCN convolutional trunk (`kind = "tcdcn"`, or no `kind`).
    Tcdcn(TcdcnConfig),
    /// The MLP trunk for tabular inputs (`kind = "mlp"`).
    Mlp(MlpConfig),
}

impl Default for TrunkConfig {
    fn default() -> Self {
        Self::Tcdcn(TcdcnConfig::default())
    }
}

impl From<TcdcnConfig> for TrunkConfig {
    fn from(c: TcdcnConfig) -> Self {
        Self::Tcdcn(c)
    }
}

impl From<MlpConfig> for TrunkConfig {
    fn from(c: MlpConfig) -> Self {
        Self::Mlp(c)
    }
}

impl TrunkConfig {
    /// The value of `kind` for this variant: `"tcdcn"` or `"mlp"`.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Self::Tcdcn(_) => "tcdcn",
            Self::Mlp(_) => "mlp",
        }
    }

    /// The stage names a trunk of this configuration has, without building it: TCDCN's
    /// `conv1`…`conv4`, `fc`; the MLP's `fc1`…`fcL`, one per hidden layer.
    pub fn stage_names(&self) -> Vec<String> {
        match self {
            Self::Tcdcn(_) => Tcdcn::STAGES.map(String::from).to_vec(),
            Self::Mlp(c) => (0..c.hidden.len()).map(crate::mlp::stage_name).collect(),
        }
    }

    /// Checks the configuration, returning an error that names the offending field.
    ///
    /// TCDCN: [`TcdcnConfig::spatial_sizes`]. MLP: [`MlpConfig::validate`], which accepts
    /// `in_features = 0` (it is set from the data before building).
    pub fn validate(&self) -> Result<()> {
        match self {
            Self::Tcdcn(c) => c.validate(),
            Self::Mlp(c) => c.validate(),
        }
    }

    /// The regulariser options of either kind ([`crate::regularise`]).
    pub fn regularisers(&self) -> crate::Regularisers {
        match self {
            Self::Tcdcn(c) => c.regularisers(),
            Self::Mlp(c) => c.regularisers(),
        }
    }

    /// Sets the seed mixed into the dropout and DropConnect masks (a run sets its own seed).
    pub fn set_mask_seed(&mut self, seed: u64) {
        match self {
            Self::Tcdcn(c) => c.mask_seed = seed,
            Self::Mlp(c) => c.mask_seed = seed,
        }
    }

    /// The seed mixed into the trunk's random masks (the run's seed once a run has set it).
    pub fn mask_seed(&self) -> u64 {
        match self {
            Self::Tcdcn(c) => c.mask_seed,
            Self::Mlp(c) => c.mask_seed,
        }
    }

    /// The TCDCN configuration, if this is one.
    pub fn as_tcdcn(&self) -> Option<&TcdcnConfig> {
        match self {
            Self::Tcdcn(c) => Some(c),
            Self::Mlp(_) => None,
        }
    }

    /// The TCDCN configuration, mutably, if this is one.
    pub fn as_tcdcn_mut(&mut self) -> Option<&mut TcdcnConfig> {
        match self {
            Self::Tcdcn(c) => Some(c),
            Self::Mlp(_) => None,
        }
    }

    /// The MLP configuration, if this is one.
    pub fn as_mlp(&self) -> Option<&MlpConfig> {
        match self {
            Self::Mlp(c) => Some(c),
            Self::Tcdcn(_) => None,
        }
    }

    /// The MLP configuration, mutably, if this is one (e.g. to set `in_features` from the
    /// data).
    pub fn as_mlp_mut(&mut self) -> Option<&mut MlpConfig> {
        match self {
            Self::Mlp(c) => Some(c),
            Self::Tcdcn(_) => None,
        }
    }
}

/// `kind` followed by the variant's own fields.
#[derive(Serialize)]
struct Tagged<'a, T> {
    kind: &'static str,
    #[serde(flatten)]
    config: &'a T,
}

impl Serialize for TrunkConfig {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let kind = self.kind_name();
        match self {
            Self::Tcdcn(config) => Tagged { kind, config }.serialize(serializer),
            Self::Mlp(config) => Tagged { kind, config }.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for TrunkConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error;
        let mut table = toml::Table::deserialize(deserializer)?;
        let kind = match table.remove("kind") {
            None => "tcdcn".to_string(),
            Some(toml::Value::String(s)) => s,
            Some(other) => {
                return Err(D::Error::custom(format!(
                    "kind: expected a string (\"tcdcn\" or \"mlp\"), got {other}"
                )))
            }
        };
        let fail = |e: toml::de::Error| {
            D::Error::custom(format!("{kind} trunk: {}", e.to_string().trim_end()))
        };
        match kind.as_str() {
            "tcdcn" => table.try_into().map(Self::Tcdcn).map_err(fail),
            "mlp" => table.try_into().map(Self::Mlp).map_err(fail),
            _ => Err(D::Error::custom(format!(
                "kind: unknown trunk kind `{kind}`, expected `tcdcn` or `mlp`"
            ))),
        }
    }
}

/// A trunk of either kind, dispatching [`Backbone`] to it.
#[derive(Debug, Clone)]
pub enum Trunk {
    /// A TCDCN trunk.
    Tcdcn(Tcdcn),
    /// An MLP trunk.
    Mlp(Mlp),
}

impl Trunk {
    /// Builds the trunk `config` describes with its parameters under `vb`.
    ///
    /// An MLP needs `in_features` set (non-zero), else [`LayerError::Config`](crate::LayerError::Config) names
    /// it.
    pub fn new(config: &TrunkConfig, vb: VarBuilder) -> Result<Self> {
        Ok(match config {
            TrunkConfig::Tcdcn(c) => Self::Tcdcn(Tcdcn::new(c.clone(), vb)?),
            TrunkConfig::Mlp(c) => Self::Mlp(Mlp::new(c.clone(), vb)?),
        })
    }

    /// The configuration this trunk was built from.
    pub fn config(&self) -> TrunkConfig {
        match self {
            Self::Tcdcn(t) => TrunkConfig::Tcdcn(t.config().clone()),
            Self::Mlp(m) => TrunkConfig::Mlp(m.config().clone()),
        }
    }

    fn inner(&self) -> &dyn Backbone {
        match self {
            Self::Tcdcn(t) => t,
            Self::Mlp(m) => m,
        }
    }
}

impl From<Tcdcn> for Trunk {
    fn from(t: Tcdcn) -> Self {
        Self::Tcdcn(t)
    }
}

impl From<Mlp> for Trunk {
    fn from(m: Mlp) -> Self {
        Self::Mlp(m)
    }
}

impl Backbone for Trunk {
    fn out_dim(&self) -> usize {
        self.inner().out_dim()
    }

    fn num_stages(&self) -> usize {
        self.inner().num_stages()
    }

    fn stage_name(&self, k: usize) -> String {
        self.inner().stage_name(k)
    }

    fn input_shape(&self) -> Vec<usize> {
        self.inner().input_shape()
    }

    fn stage_shape(&self, k: usize) -> Vec<usize> {
        self.inner().stage_shape(k)
    }

    fn forward_stage(&self, k: usize, x: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        self.inner().forward_stage(k, x, train)
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        self.inner().forward_t(x, train)
    }

    fn stage_prefixes(&self, k: usize) -> Vec<String> {
        self.inner().stage_prefixes(k)
    }

    fn stage_parameters(&self, k: usize) -> candle_core::Result<Vec<Tensor>> {
        self.inner().stage_parameters(k)
    }

    fn prefix(&self) -> String {
        self.inner().prefix()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Activation, LayerError};
    use candle_core::{DType, Device};
    use candle_nn::VarMap;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct File {
        model: TrunkConfig,
    }

    fn parse(text: &str) -> std::result::Result<TrunkConfig, String> {
        toml::from_str::<File>(text)
            .map(|f| f.model)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn no_kind_is_tcdcn() {
        let c = parse("[model]\ninput_size = 48\nfeature_dim = 64");
        let want = TcdcnConfig {
            input_size: 48,
            feature_dim: 64,
            ..Default::default()
        };
        assert_eq!(c, Ok(TrunkConfig::Tcdcn(want)));
        assert_eq!(parse("[model]"), Ok(TrunkConfig::default()));
        assert_eq!(
            parse("[model]\nkind = \"tcdcn\"\ninput_size = 40"),
            Ok(TrunkConfig::default())
        );
    }

    #[test]
    fn kind_mlp() {
        let c = parse("[model]\nkind = \"mlp\"\nhidden = [32, 16]\nactivation = \"tanh\"");
        let want = MlpConfig {
            hidden: vec![32, 16],
            activation: Activation::Tanh,
            ..Default::default()
        };
        assert_eq!(c, Ok(TrunkConfig::Mlp(want)));
        assert_eq!(
            parse("[model]\nkind = \"mlp\""),
            Ok(TrunkConfig::Mlp(MlpConfig::default()))
        );
    }

    #[test]
    fn unknown_keys_and_kinds_are_named() {
        for (text, key) in [
            ("[model]\ninput_sise = 40", "input_sise"),
            ("[model]\nhidden = [4]", "hidden"),
            ("[model]\nkind = \"mlp\"\ninput_size = 40", "input_size"),
            ("[model]\nkind = \"mlp\"\nhiden = [4]", "hiden"),
            ("[model]\nkind = \"resnet\"", "resnet"),
            ("[model]\nkind = 3", "kind"),
        ] {
            let e = parse(text).err().unwrap_or_default();
            assert!(e.contains(key), "{text:?}: {e}");
        }
    }

    #[test]
    fn round_trips_through_toml_and_json() -> std::result::Result<(), Box<dyn std::error::Error>> {
        let configs = [
            TrunkConfig::default(),
            TrunkConfig::Tcdcn(TcdcnConfig {
                input_size: 60,
                channels: [8, 16, 32, 32],
                activation: Activation::Relu,
                standardize: false,
                ..Default::default()
            }),
            TrunkConfig::Mlp(MlpConfig::default()),
            TrunkConfig::Mlp(MlpConfig {
                in_features: 13,
                hidden: vec![64, 32, 8],
                activation: Activation::AbsTanh,
                dropout: 0.1,
                dropout_at: Some(vec!["fc2".into()]),
                norm: crate::NormKind::Group,
                groups: 8,
                init: crate::WeightInit::HeNormal,
                ..Default::default()
            }),
            TrunkConfig::Tcdcn(TcdcnConfig {
                activation: Activation::Selu,
                dropconnect: 0.2,
                norm: crate::NormKind::Batch,
                weight_norm: true,
                init: crate::WeightInit::LecunNormal,
                ..Default::default()
            }),
        ];
        for c in configs {
            let file = File { model: c.clone() };
            let text = toml::to_string(&file)?;
            assert!(
                text.contains(&format!("kind = \"{}\"", c.kind_name())),
                "{text}"
            );
            assert_eq!(toml::from_str::<File>(&text)?, file, "{text}");
            let table = toml::Table::try_from(&c)?;
            assert_eq!(
                table.get("kind").and_then(|v| v.as_str()),
                Some(c.kind_name())
            );
            assert_eq!(toml::Value::Table(table).try_into::<TrunkConfig>()?, c);
        }
        Ok(())
    }

    #[test]
    fn validate_and_accessors() {
        let mut c = TrunkConfig::Mlp(MlpConfig::default());
        assert!(
            c.validate().is_ok(),
            "in_features = 0 is set from the data later"
        );
        assert!(c.as_tcdcn().is_none());
        if let Some(m) = c.as_mlp_mut() {
            m.hidden = vec![3, 0];
        }
        let e = c
            .validate()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("hidden[1]"), "{e}");
        let mut t = TrunkConfig::default();
        assert_eq!(t.kind_name(), "tcdcn");
        assert!(t.as_mlp().is_none());
        if let Some(tc) = t.as_tcdcn_mut() {
            tc.input_size = 16;
        }
        let e = t
            .validate()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("input_size"), "{e}");
        assert_eq!(t.as_tcdcn().map(|c| c.input_size), Some(16));
    }

    #[test]
    fn trunk_dispatches() -> Result<()> {
        let vars = VarMap::new();
        let vb = tandem_tensor::seeded_var_builder(&vars, 0, DType::F32, &Device::Cpu);
        let mut cfg = TrunkConfig::Mlp(MlpConfig {
            hidden: vec![6, 5],
            dropout: 0.5,
            ..Default::default()
        });
        let e = Trunk::new(&cfg, vb.pp("trunk")).err();
        assert!(
            matches!(&e, Some(LayerError::Config { field, .. }) if field == "in_features"),
            "{e:?}"
        );
        if let Some(m) = cfg.as_mlp_mut() {
            m.in_features = 4;
        }
        let t = Trunk::new(&cfg, vb.pp("trunk"))?;
        assert_eq!(t.config(), cfg);
        assert_eq!((t.out_dim(), t.num_stages()), (5, 2));
        assert_eq!(t.stage_name(0), "fc1");
        assert_eq!(t.stage_prefixes(1), ["trunk.fc2"]);
        assert_eq!(t.prefix(), "trunk");
        assert_eq!(t.stage_parameters(0)?.len(), 2);
        let x = Tensor::ones((3, 4, 1, 1), DType::F32, &Device::Cpu)?;
        assert_eq!(t.forward_t(&x, true)?.dims(), &[3, 5]);
        let names: Vec<String> = tandem_tensor::sorted_vars(&vars)
            .into_iter()
            .map(|v| v.0)
            .collect();
        assert_eq!(
            names,
            [
                "trunk.fc1.bias",
                "trunk.fc1.weight",
                "trunk.fc2.bias",
                "trunk.fc2.weight"
            ]
        );

        let vars = VarMap::new();
        let vb = tandem_tensor::seeded_var_builder(&vars, 0, DType::F32, &Device::Cpu);
        let t = Trunk::new(&TrunkConfig::default(), vb.pp("trunk"))?;
        assert_eq!((t.out_dim(), t.num_stages()), (100, 5));
        assert_eq!(t.stage_name(4), "fc");
        let x = Tensor::zeros((2, 1, 40, 40), DType::F32, &Device::Cpu)?;
        assert_eq!(t.forward_t(&x, false)?.dims(), &[2, 100]);
        assert_eq!(t.config(), TrunkConfig::default());
        Ok(())
    }
}
