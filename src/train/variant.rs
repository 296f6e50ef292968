//! Controlled changes to a preset and its supervision, one thing at a time: the vocabulary of the
//! learning diagnosis (`presets_learn`). A variant is written `base` (the preset as it is) or as
//! changes joined with `+`, e.g. `loss=pytorch-retinaface+variance=0.1/0.2`.

use std::str::FromStr;

use super::assign::MatchThresholds;
use super::step::LossSetup;
use crate::geometry::{AnchorSpec, Variance};
use crate::model::{FpnLevels, InputNormalization, RetinaFaceConfig};

/// One change.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// The whole supervision setup by name (`report`, `pytorch-retinaface`).
    Loss(String),
    Variance(Variance),
    Cascade(bool),
    Landmarks(bool),
    /// The report's pyramid cut to P3–P5 (and its anchors of those levels).
    P3ToP5,
    /// Hard negatives per positive.
    Ohem(usize),
    /// Positive / negative IoU thresholds of the first stage.
    Match {
        positive: f32,
        negative: f32,
    },
    Input(InputNormalization),
}

/// A list of changes; empty is the preset itself.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Variant(pub Vec<Change>);

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VariantError {
    #[error(
        "unknown change {0:?}; changes: base, loss=NAME, variance=C/S, cascade=on|off, landmarks=on|off, levels=p3-p5, ohem=N, match=POS/NEG, input=imagenet|bgr"
    )]
    Unknown(String),
    #[error("{0:?} does not apply to this preset: {1}")]
    NotApplicable(String, String),
}

fn on_off(value: &str, text: &str) -> Result<bool, VariantError> {
    match value {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(VariantError::Unknown(text.to_string())),
    }
}

fn pair(value: &str, text: &str) -> Result<(f32, f32), VariantError> {
    let bad = || VariantError::Unknown(text.to_string());
    let (a, b) = value.split_once('/').ok_or_else(bad)?;
    let (a, b): (f32, f32) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
    if a.is_finite() && b.is_finite() && a > 0.0 && b > 0.0 { Ok((a, b)) } else { Err(bad()) }
}

impl FromStr for Change {
    type Err = VariantError;

    fn from_str(text: &str) -> Result<Change, VariantError> {
        let unknown = || VariantError::Unknown(text.to_string());
        let (key, value) = text.split_once('=').ok_or_else(unknown)?;
        Ok(match key {
            "loss" if LossSetup::preset(value).is_some() => Change::Loss(value.to_string()),
            "variance" => Change::Variance(value.parse().map_err(|_| unknown())?),
            "cascade" => Change::Cascade(on_off(value, text)?),
            "landmarks" => Change::Landmarks(on_off(value, text)?),
            "levels" if value == "p3-p5" => Change::P3ToP5,
            "ohem" => Change::Ohem(value.parse().ok().filter(|n| *n > 0).ok_or_else(unknown)?),
            "match" => {
                let (positive, negative) = pair(value, text)?;
                Change::Match { positive, negative }
            }
            "input" if value == "imagenet" => Change::Input(InputNormalization::IMAGENET),
            "input" if value == "bgr" => Change::Input(InputNormalization::PYTORCH_RETINAFACE),
            _ => return Err(unknown()),
        })
    }
}

impl FromStr for Variant {
    type Err = VariantError;

    fn from_str(text: &str) -> Result<Variant, VariantError> {
        if text == "base" || text.is_empty() {
            return Ok(Variant::default());
        }
        text.split('+').map(str::parse).collect::<Result<_, _>>().map(Variant)
    }
}

impl Variant {
    /// Applies the changes in order to a model config and the setup that supervises it.
    pub fn apply(&self, config: &mut RetinaFaceConfig, setup: &mut LossSetup) -> Result<(), VariantError> {
        for change in &self.0 {
            match change {
                Change::Loss(name) => {
                    *setup = LossSetup::preset(name).ok_or_else(|| VariantError::Unknown(name.clone()))?;
                }
                Change::Variance(v) => config.variance = *v,
                Change::Cascade(on) => config.cascade = *on,
                Change::Landmarks(on) => config.landmarks = *on,
                Change::P3ToP5 => {
                    if config.fpn.levels != FpnLevels::P2ToP6 {
                        return Err(VariantError::NotApplicable(
                            "levels=p3-p5".into(),
                            "it has no P2–P6 pyramid".into(),
                        ));
                    }
                    config.fpn.levels = FpnLevels::P3ToP5;
                    let levels = config.anchors.levels()[1..4].to_vec();
                    config.anchors = AnchorSpec::new(levels)
                        .map_err(|e| VariantError::NotApplicable("levels=p3-p5".into(), e.to_string()))?;
                }
                Change::Ohem(ratio) => setup.loss.neg_pos_ratio = *ratio,
                Change::Match { positive, negative } => {
                    setup.first = MatchThresholds { positive: *positive, negative: *negative, ..setup.first };
                }
                Change::Input(input) => config.input = *input,
            }
        }
        config.validate().map_err(|e| VariantError::NotApplicable(format!("{self:?}"), e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_parse_and_apply_in_order() {
        let variant: Variant = "loss=report+variance=1/1+cascade=off+levels=p3-p5".parse().unwrap();
        let mut config = RetinaFaceConfig::preset("seed-full").unwrap();
        let mut setup = LossSetup::default();
        variant.apply(&mut config, &mut setup).unwrap();
        assert_eq!(setup.first, MatchThresholds::REPORT_FIRST);
        assert_eq!(config.variance, Variance::UNIT);
        assert!(!config.cascade);
        assert_eq!(config.fpn.levels, FpnLevels::P3ToP5);
        assert_eq!(config.anchors.levels()[0].stride(), 8);
        assert_eq!("base".parse::<Variant>().unwrap(), Variant::default());
    }

    #[test]
    fn bad_changes_are_named() {
        let err = "cascade=maybe".parse::<Variant>().unwrap_err().to_string();
        assert!(err.contains("cascade=maybe") && err.contains("cascade=on|off"), "{err}");
        let mut config = RetinaFaceConfig::preset("tiny").unwrap();
        let mut setup = LossSetup::default();
        let err = "levels=p3-p5".parse::<Variant>().unwrap().apply(&mut config, &mut setup).unwrap_err();
        assert!(err.to_string().contains("P2–P6"), "{err}");
    }
}
