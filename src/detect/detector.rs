//! The detector: a loaded network on a device, turning preprocessed images into candidates.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use burn::prelude::*;
use burn::tensor::activation::softmax;
use image::RgbImage;

use super::image::{InputSize, NetworkInput, preprocess};
use super::postprocess::{Candidates, DetectOptions, RawOutputs};
use crate::geometry::Anchor;
use crate::model::{RetinaFace, RetinaFaceConfig};

/// Anchors per input size (width, height).
type AnchorCache = HashMap<(u32, u32), Arc<Vec<Anchor>>>;

/// The network could not run on a batch or hand its outputs back (mixed input sizes, a lost GPU,
/// an out-of-memory error).
#[derive(Debug, thiserror::Error)]
#[error("cannot run the network: {0}")]
pub struct DeviceReadError(pub String);

/// A network ready for inference (batch norm uses its running statistics).
pub struct Detector {
    model: RetinaFace,
    device: Device,
    anchors: Mutex<AnchorCache>,
}

/// The raw outputs of one image, on the host.
#[derive(Clone, Debug, PartialEq)]
pub struct HostOutputs {
    pub width: u32,
    pub height: u32,
    /// Face probability per anchor.
    pub scores: Vec<f32>,
    /// Box regressions per stage, first stage first, `[A × 4]` each.
    pub boxes: Vec<Vec<f32>>,
    pub landmarks: Option<Vec<f32>>,
}

impl Detector {
    pub fn new(model: RetinaFace, device: Device) -> Detector {
        Detector { model: model.valid(), device, anchors: Mutex::new(HashMap::new()) }
    }

    pub fn config(&self) -> &RetinaFaceConfig {
        &self.model.config
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Anchors in input pixels, cached per input size (photos of one camera share a size).
    pub fn anchors(&self, width: u32, height: u32) -> Arc<Vec<Anchor>> {
        let mut cache = self.anchors.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        cache
            .entry((width, height))
            .or_insert_with(|| Arc::new(self.model.config.anchors.generate(width, height)))
            .clone()
    }

    /// Runs the network on images of one size as a single batch.
    pub fn forward(&self, inputs: &[&NetworkInput]) -> Result<Vec<HostOutputs>, DeviceReadError> {
        let Some(first) = inputs.first() else { return Ok(Vec::new()) };
        let (w, h) = (first.width as usize, first.height as usize);
        if let Some(other) = inputs.iter().find(|i| (i.width, i.height) != (first.width, first.height)) {
            return Err(DeviceReadError(format!(
                "one batch needs one input size, got {}×{} and {}×{}",
                first.width, first.height, other.width, other.height
            )));
        }
        let data: Vec<f32> = inputs.iter().flat_map(|i| i.data.iter().copied()).collect();
        let x = Tensor::<4>::from_data(TensorData::new(data, [inputs.len(), 3, h, w]), &self.device);
        let output = self.model.forward(x);
        let last = output.last();
        let n = inputs.len();
        let read = |t: Tensor<3>| t.try_into_vec_as::<f32>().map_err(|e| DeviceReadError(e.to_string()));
        let scores = read(softmax(last.logits.clone(), 2).narrow(2, 1, 1))?;
        let boxes: Vec<Vec<f32>> = output.stages.iter().map(|s| read(s.boxes.clone())).collect::<Result<_, _>>()?;
        let landmarks = last.landmarks.clone().map(read).transpose()?;
        let anchors = scores.len() / n;
        Ok((0..n)
            .map(|i| HostOutputs {
                width: first.width,
                height: first.height,
                scores: scores[i * anchors..(i + 1) * anchors].to_vec(),
                boxes: boxes.iter().map(|b| b[i * anchors * 4..(i + 1) * anchors * 4].to_vec()).collect(),
                landmarks: landmarks.as_ref().map(|l| l[i * anchors * 10..(i + 1) * anchors * 10].to_vec()),
            })
            .collect())
    }

    /// Post-processing of one image's outputs up to the candidates (before NMS).
    pub fn candidates(&self, outputs: &HostOutputs, input: &NetworkInput, options: &DetectOptions) -> Candidates {
        let anchors = self.anchors(outputs.width, outputs.height);
        let boxes: Vec<&[f32]> = outputs.boxes.iter().map(Vec::as_slice).collect();
        let raw = RawOutputs { scores: &outputs.scores, boxes: &boxes, landmarks: outputs.landmarks.as_deref() };
        Candidates::from_raw(&raw, &anchors, self.model.config.variance, input.to_image, options)
    }

    /// Preprocess, forward and post-process one photo: its candidates, ready to filter.
    pub fn detect(
        &self,
        image: &RgbImage,
        size: InputSize,
        options: &DetectOptions,
    ) -> Result<Candidates, DeviceReadError> {
        let input = preprocess(image, size, &self.model.config.input);
        let outputs = self.forward(&[&input])?;
        Ok(outputs.first().map(|o| self.candidates(o, &input, options)).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RetinaFaceConfig;

    #[test]
    fn a_batch_of_different_input_sizes_is_an_error() {
        let device = Device::flex();
        let config = RetinaFaceConfig::preset("tiny").unwrap();
        let detector = Detector::new(RetinaFace::new(&config, &device), device);
        let (a, b) = (RgbImage::new(64, 48), RgbImage::new(48, 64));
        let inputs = [&a, &b].map(|image| preprocess(image, InputSize::Original, &config.input));
        let err = detector.forward(&[&inputs[0], &inputs[1]]).unwrap_err().to_string();
        assert!(err.contains("64×48") && err.contains("48×64"), "{err}");
    }
}
