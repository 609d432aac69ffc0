//! Stage names in configurations resolved to stage indices. The stage lists themselves live
//! with the trunks in `tandem-layers` ([`Tcdcn::STAGES`](tandem_layers::Tcdcn::STAGES),
//! [`TrunkConfig::stage_names`](tandem_layers::TrunkConfig::stage_names)).
use crate::{Result, ShareError};
use tandem_layers::{Backbone, Tcdcn};

/// The stage names of the TCDCN trunk, the default tied (and stitched) stages.
pub(crate) const TCDCN_STAGES: [&str; 5] = Tcdcn::STAGES;

/// The stage indices of `names` in `backbone`, or a configuration error listing the stages.
pub(crate) fn stage_indices<'a>(
    backbone: &impl Backbone,
    names: impl IntoIterator<Item = &'a String>,
    what: &str,
) -> Result<Vec<usize>> {
    let stages: Vec<String> = (0..backbone.num_stages())
        .map(|k| backbone.stage_name(k))
        .collect();
    names
        .into_iter()
        .map(|n| {
            stages.iter().position(|s| s == n).ok_or_else(|| {
                ShareError::Config(format!(
                    "{what}: no stage named {n:?}; the backbone has {}",
                    stages.join(", ")
                ))
            })
        })
        .collect()
}
