//! tandem (in progress)
