//! tandem-layers (in progress)
