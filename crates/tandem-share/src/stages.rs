//! Stage names in configurations: the TCDCN defaults, and names resolved to stage indices.
use crate::{Result, ShareError};
use tandem_layers::Backbone;

/// The stage names of the TCDCN trunk, the default tied (and stitched) stages.
pub(crate) const TCDCN_STAGES: [&str; 5] = ["conv1", "conv2", "conv3", "conv4", "fc"];

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
