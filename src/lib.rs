//! facestudio: face detection with RetinaFace — WIDER FACE data, geometry, training, evaluation,
//! detection. The binary (`src/main.rs`) and the studio only call into this library.

pub mod annotate;
#[cfg(feature = "studio")]
pub mod app;
pub mod dataset;
pub mod detect;
pub mod eval;
pub mod fsutil;
pub mod geometry;
pub mod guard;
pub mod interchange;
pub mod model;
pub mod train;

#[cfg(test)]
mod test_support;
