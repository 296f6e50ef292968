//! The detector: a loaded network on a device, turning preprocessed images into candidates.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use burn::prelude::*;
use burn::tensor::Transaction;
use burn::tensor::activation::softmax;
use image::RgbImage;

use super::error::{DetectError, DeviceReadError, StageError};
use super::image::{InputSize, NetworkInput, preprocess};
use super::postprocess::{CandidateLimits, Candidates, RawOutputs};
use crate::geometry::Anchor;
use crate::model::{
    DeviceChoice, HeadOutput, InferenceNet, RetinaFace, RetinaFaceConfig, RetinaFaceOutput, load_weights,
};

/// Anchors per input size (width, height).
type AnchorCache = HashMap<(u32, u32), Arc<Vec<Anchor>>>;

/// Which head stage scores the faces: 1-based, at most the model's stage count, so a detector can
/// never read a stage that is not there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScoringStage(usize);

impl ScoringStage {
    /// Stage `stage` (1 = first) of a model with `stages` head stages.
    pub fn new(stage: usize, stages: usize) -> Result<ScoringStage, StageError> {
        if (1..=stages).contains(&stage) { Ok(ScoringStage(stage)) } else { Err(StageError { asked: stage, stages }) }
    }

    /// Every stage of a model with `stages` head stages, first first.
    pub fn all(stages: usize) -> Vec<ScoringStage> {
        (1..=stages).map(ScoringStage).collect()
    }

    /// The model's last stage (the cascade's refined one, where there is a cascade).
    pub fn last(config: &RetinaFaceConfig) -> ScoringStage {
        ScoringStage(config.stages())
    }

    /// 1-based, as users name it.
    pub fn number(self) -> usize {
        self.0
    }
}

/// A network ready for inference (batch norm uses its running statistics).
pub struct Detector {
    /// The model folded for inference on `device`.
    net: InferenceNet,
    config: RetinaFaceConfig,
    device: Device,
    anchors: Mutex<AnchorCache>,
    stage: ScoringStage,
}

/// The raw outputs of one image on the host, for the anchors whose face probability is above the
/// floor they were read with (every anchor with `f32::NEG_INFINITY`).
#[derive(Clone, Debug, PartialEq)]
pub struct HostOutputs {
    pub width: u32,
    pub height: u32,
    /// The anchors read, ascending (indexes into the anchor list): the rows of the fields below.
    pub anchors: Vec<u32>,
    /// Face probability per row, from the scoring stage.
    pub scores: Vec<f32>,
    /// Box regressions of every stage up to the scoring one, first stage first, `[rows × 4]`
    /// each (each stage regresses from the previous one's boxes).
    pub boxes: Vec<Vec<f32>>,
    /// Landmark regressions of the scoring stage, `[rows × 10]`.
    pub landmarks: Option<Vec<f32>>,
}

fn execute(transaction: Transaction) -> Result<Vec<Vec<f32>>, DeviceReadError> {
    transaction
        .try_execute()
        .map_err(|e| DeviceReadError(format!("{e:?}")))?
        .into_iter()
        .map(|data| data.convert::<f32>().try_into_vec::<f32>().map_err(|e| DeviceReadError(format!("{e:?}"))))
        .collect()
}

impl HostOutputs {
    /// Reads a batch of `width`×`height` outputs back to the host for each scoring stage asked for
    /// (per stage, per image), keeping the anchors whose face probability is above `floor`. Two
    /// waits for the device however many tensors: the probabilities first (one float per
    /// anchor), then, gathered on the device, only the kept anchors' boxes and landmarks (on a
    /// GPU, 102,300 anchors × 16 floats is 6.5 MB per image, a few hundred candidates a few
    /// kilobytes). Used for the detector's own (inference-mode) outputs and for diagnostics on
    /// training-mode outputs.
    pub fn read(
        output: &RetinaFaceOutput,
        stages: &[ScoringStage],
        width: u32,
        height: u32,
        floor: f32,
    ) -> Result<Vec<Vec<HostOutputs>>, DeviceReadError> {
        let deepest = stages.iter().map(|s| s.number()).max().unwrap_or(0).min(output.stages.len());
        let scoring: Vec<(usize, &HeadOutput)> = stages
            .iter()
            .map(|stage| {
                let used = stage.number().min(deepest);
                let head = used
                    .checked_sub(1)
                    .map(|i| &output.stages[i])
                    .ok_or_else(|| DeviceReadError("the network returned no head stage".into()))?;
                Ok((used, head))
            })
            .collect::<Result<_, DeviceReadError>>()?;
        let probabilities = scoring
            .iter()
            .fold(Transaction::default(), |t, (_, head)| t.register(softmax(head.logits.clone(), 2).narrow(2, 1, 1)));
        let probabilities = execute(probabilities)?;

        let mut gather = Transaction::default();
        let mut kept: Vec<Vec<(Vec<u32>, Vec<f32>)>> = Vec::new();
        for ((used, head), scores) in scoring.iter().zip(&probabilities) {
            let [n, anchors, _] = head.logits.dims();
            let mut per_image = Vec::new();
            for (i, image) in scores.chunks(anchors.max(1)).take(n).enumerate() {
                let rows: Vec<u32> = (0..anchors).filter(|&j| image[j] > floor).map(|j| j as u32).collect();
                let values: Vec<f32> = rows.iter().map(|&j| image[j as usize]).collect();
                let pick = |t: &Tensor<3>| -> Option<Tensor<3>> {
                    let t = t.clone().narrow(0, i, 1);
                    match rows.len() {
                        0 => None,
                        all if all == anchors => Some(t),
                        _ => {
                            let index: Vec<i64> = rows.iter().map(|&j| i64::from(j)).collect();
                            let index = Tensor::<1, Int>::from_data(TensorData::new(index, [rows.len()]), &t.device());
                            Some(t.select(1, index))
                        }
                    }
                };
                for stage in &output.stages[..*used] {
                    if let Some(t) = pick(&stage.boxes) {
                        gather = gather.register(t);
                    }
                }
                if let Some(t) = head.landmarks.as_ref().and_then(pick) {
                    gather = gather.register(t);
                }
                per_image.push((rows, values));
            }
            kept.push(per_image);
        }
        let mut gathered = execute(gather)?.into_iter();
        let mut next = |rows: &[u32]| -> Vec<f32> {
            if rows.is_empty() { Vec::new() } else { gathered.next().unwrap_or_default() }
        };
        Ok(scoring
            .iter()
            .zip(kept)
            .map(|((used, head), per_image)| {
                per_image
                    .into_iter()
                    .map(|(rows, scores)| {
                        let boxes = (0..*used).map(|_| next(&rows)).collect();
                        let landmarks = head.landmarks.as_ref().map(|_| next(&rows));
                        HostOutputs { width, height, anchors: rows, scores, boxes, landmarks }
                    })
                    .collect()
            })
            .collect())
    }
}

impl Detector {
    /// Scores with the model's last stage.
    pub fn new(model: RetinaFace, device: Device) -> Detector {
        let stage = ScoringStage::last(&model.config);
        let net = InferenceNet::new(&model.valid(), &device);
        Detector { net, config: model.config, device, anchors: Mutex::new(HashMap::new()), stage }
    }

    /// Opens `device` and loads `path` onto it: a facestudio model file, or a PyTorch /
    /// safetensors checkpoint of the network `preset` names. What the CLI, the studio's panels and
    /// a study use to get a detector.
    pub fn load(path: &Path, preset: Option<&str>, device: DeviceChoice) -> Result<Detector, DetectError> {
        let device = device.open()?.device;
        let model = load_weights(path, preset, &device)?;
        Ok(Detector::new(model, device))
    }

    /// Scores with head stage `stage` (1 = first) instead of the last one; `None` keeps the last.
    pub fn with_stage(mut self, stage: Option<usize>) -> Result<Detector, StageError> {
        if let Some(stage) = stage {
            self.stage = ScoringStage::new(stage, self.config.stages())?;
        }
        Ok(self)
    }

    pub fn stage(&self) -> ScoringStage {
        self.stage
    }

    pub fn config(&self) -> &RetinaFaceConfig {
        &self.config
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Anchors in input pixels, cached per input size (photos of one camera share a size).
    pub fn anchors(&self, width: u32, height: u32) -> Arc<Vec<Anchor>> {
        let mut cache = self.anchors.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        cache.entry((width, height)).or_insert_with(|| Arc::new(self.config.anchors.generate(width, height))).clone()
    }

    /// Runs the network on images of one size as a single batch, scored by the detector's stage.
    pub fn forward(&self, inputs: &[&NetworkInput], floor: f32) -> Result<Vec<HostOutputs>, DeviceReadError> {
        Ok(self.forward_stages(inputs, &[self.stage], floor)?.pop().unwrap_or_default())
    }

    /// One network run read back once per scoring stage asked for (per stage, per image): how
    /// validation compares the cascade's stages without running the network twice.
    pub fn forward_stages(
        &self,
        inputs: &[&NetworkInput],
        stages: &[ScoringStage],
        floor: f32,
    ) -> Result<Vec<Vec<HostOutputs>>, DeviceReadError> {
        let Some(first) = inputs.first() else { return Ok(stages.iter().map(|_| Vec::new()).collect()) };
        let (w, h) = (first.width as usize, first.height as usize);
        if let Some(other) = inputs.iter().find(|i| (i.width, i.height) != (first.width, first.height)) {
            return Err(DeviceReadError(format!(
                "one batch needs one input size, got {}×{} and {}×{}",
                first.width, first.height, other.width, other.height
            )));
        }
        let images: Vec<&[f32]> = inputs.iter().map(|i| i.data.as_slice()).collect();
        HostOutputs::read(&self.net.forward_images(&images, h, w), stages, first.width, first.height, floor)
    }

    /// Post-processing of one image's outputs up to the candidates (before NMS).
    pub fn candidates(&self, outputs: &HostOutputs, input: &NetworkInput, limits: &CandidateLimits) -> Candidates {
        let anchors = self.anchors(outputs.width, outputs.height);
        let boxes: Vec<&[f32]> = outputs.boxes.iter().map(Vec::as_slice).collect();
        let raw = RawOutputs {
            anchors: &outputs.anchors,
            scores: &outputs.scores,
            boxes: &boxes,
            landmarks: outputs.landmarks.as_deref(),
        };
        Candidates::from_raw(&raw, &anchors, self.config.variance, input.to_image, limits)
    }

    /// Preprocess, forward and post-process one photo: its candidates, ready to filter.
    pub fn detect(
        &self,
        image: &RgbImage,
        size: InputSize,
        limits: &CandidateLimits,
    ) -> Result<Candidates, DeviceReadError> {
        Ok(self.detect_stages(image, size, limits, &[self.stage])?.pop().unwrap_or_default())
    }

    /// [`Detector::detect`] scored by each of `stages`, from one network run.
    pub fn detect_stages(
        &self,
        image: &RgbImage,
        size: InputSize,
        limits: &CandidateLimits,
        stages: &[ScoringStage],
    ) -> Result<Vec<Candidates>, DeviceReadError> {
        let input = preprocess(image, size, &self.config.input);
        let outputs = self.forward_stages(&[&input], stages, limits.floor)?;
        Ok(outputs
            .iter()
            .map(|per_image| per_image.first().map(|o| self.candidates(o, &input, limits)).unwrap_or_default())
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RetinaFaceConfig;

    #[test]
    fn each_stage_scores_from_the_same_run_and_a_missing_stage_is_an_error() {
        let device = Device::flex();
        let config = RetinaFaceConfig::preset("tiny").unwrap();
        let detector = Detector::new(RetinaFace::new(&config, &device), device);
        assert_eq!(detector.stage().number(), 2, "the cascade's stage by default");
        let image = RgbImage::from_fn(64, 48, |x, y| image::Rgb([(x * 4) as u8, (y * 5) as u8, 90]));
        let input = preprocess(&image, InputSize::Original, &config.input);
        let stages = [ScoringStage::new(1, 2).unwrap(), ScoringStage::new(2, 2).unwrap()];
        let both = detector.forward_stages(&[&input], &stages, f32::NEG_INFINITY).unwrap();
        assert_eq!(both[0][0].boxes.len(), 1, "stage 1 decodes from the anchors only");
        assert_eq!(both[1][0].boxes.len(), 2, "stage 2 decodes through stage 1's boxes");
        assert_ne!(both[0][0].scores, both[1][0].scores, "each stage has its own classifier");
        assert_eq!(detector.forward(&[&input], f32::NEG_INFINITY).unwrap()[0], both[1][0]);
        let first =
            Detector::new(RetinaFace::new(&config, &Device::flex()), Device::flex()).with_stage(Some(1)).unwrap();
        assert_eq!(first.stage().number(), 1);
        let err = detector.with_stage(Some(3)).err().unwrap().to_string();
        assert!(err.contains("stage 3") && err.contains("2 head stage"), "{err}");
    }

    #[test]
    fn a_batch_of_different_input_sizes_is_an_error() {
        let device = Device::flex();
        let config = RetinaFaceConfig::preset("tiny").unwrap();
        let detector = Detector::new(RetinaFace::new(&config, &device), device);
        let (a, b) = (RgbImage::new(64, 48), RgbImage::new(48, 64));
        let inputs = [&a, &b].map(|image| preprocess(image, InputSize::Original, &config.input));
        let err = detector.forward(&[&inputs[0], &inputs[1]], f32::NEG_INFINITY).unwrap_err().to_string();
        assert!(err.contains("64×48") && err.contains("48×64"), "{err}");
    }
}
