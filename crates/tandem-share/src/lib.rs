//! tandem-share (in progress)
