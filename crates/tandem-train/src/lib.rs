//! tandem-train (in progress)
