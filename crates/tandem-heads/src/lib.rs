//! tandem-heads (in progress)
