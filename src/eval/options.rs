//! The protocol's parameters.

use std::num::NonZeroU32;

use serde::{Deserialize, Serialize};

/// Parameters of the protocol; [`Default`] gives the official ones.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EvalOptions {
    /// A prediction matches its best face when their overlap is `>=` this (official: 0.5).
    pub iou_threshold: f64,
    /// Number of score thresholds `1 - t/thresholds`, `t = 1..=thresholds` (official: 1000).
    pub thresholds: NonZeroU32,
}

impl EvalOptions {
    /// The official settings of `wider_eval.m`: IoU 0.5, 1000 thresholds.
    pub const OFFICIAL: Self = Self { iou_threshold: 0.5, thresholds: NonZeroU32::new(1000).unwrap() };
}

impl Default for EvalOptions {
    fn default() -> Self {
        Self::OFFICIAL
    }
}
