//! Helpers shared by the integration tests of tandem-share.
#![allow(dead_code)] // each test binary uses its own part

use tandem_heads::{ClassTask, LandmarkTask, TaskSet};

/// A test's result: any error fails it.
pub type R<T = ()> = Result<T, Box<dyn std::error::Error>>;

/// Five landmarks, smile (2 classes) and pose (5 classes); the attributes auxiliary.
pub fn tasks() -> TaskSet {
    TaskSet::new()
        .with(LandmarkTask::new("landmarks", 5))
        .with(ClassTask::new("smile", 2).auxiliary())
        .with(ClassTask::new("pose", 5).auxiliary())
}
