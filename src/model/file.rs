//! Native model files: the config (JSON, in the burnpack metadata) and the weights in one file,
//! written atomically, so `detect --weights model.bpk` needs no other flag.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use burn::store::{BurnpackStore, ModuleSnapshot};

use super::config::RetinaFaceConfig;
use super::import::import_checkpoint;
use super::network::RetinaFace;

const CONFIG_KEY: &str = "facestudio.retinaface_config";

#[derive(Debug, thiserror::Error)]
pub enum ModelFileError {
    #[error("cannot read the model file {}: {message}", path.display())]
    Read { path: PathBuf, message: String },
    #[error("cannot write the model file {}: {message}", path.display())]
    Write { path: PathBuf, message: String },
    #[error("{} is not a facestudio model file (no RetinaFace config inside); for a PyTorch checkpoint pass --preset", path.display())]
    NoConfig { path: PathBuf },
    #[error("the model file {} holds an invalid config: {message}", path.display())]
    BadConfig { path: PathBuf, message: String },
    #[error("the weights in {} do not fit their own config: {message}", path.display())]
    Weights { path: PathBuf, message: String },
    #[error(transparent)]
    Import(#[from] super::import::ImportError),
    #[error(transparent)]
    Config(#[from] super::config::ConfigError),
}

/// The largest model file or checkpoint read: a ResNet50 RetinaFace is about 110 MB.
pub const MAX_MODEL_BYTES: u64 = 4 << 30;

/// Writes `model` with its config to `path` (temporary file + rename).
pub fn save_model(model: &RetinaFace, path: &Path) -> Result<(), ModelFileError> {
    let write_error = |message: String| ModelFileError::Write { path: path.to_path_buf(), message };
    let config = serde_json::to_string(&model.config).map_err(|e| write_error(e.to_string()))?;
    let mut store = BurnpackStore::from_bytes(None).metadata(CONFIG_KEY, config);
    model.save_into(&mut store).map_err(|e| write_error(e.to_string()))?;
    let bytes = store.get_bytes().map_err(|e| write_error(e.to_string()))?;
    crate::fsutil::write_atomic(path, &bytes).map_err(|e| write_error(e.to_string()))
}

fn config_from_bytes(path: &Path, bytes: Vec<u8>) -> Result<RetinaFaceConfig, ModelFileError> {
    let reader = burn::store::burn_pack::Reader::from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes))
        .map_err(|_| ModelFileError::NoConfig { path: path.to_path_buf() })?;
    let json =
        reader.metadata().get(CONFIG_KEY).ok_or_else(|| ModelFileError::NoConfig { path: path.to_path_buf() })?;
    let config: RetinaFaceConfig = serde_json::from_str(json)
        .map_err(|e| ModelFileError::BadConfig { path: path.to_path_buf(), message: e.to_string() })?;
    config.validate().map_err(|e| ModelFileError::BadConfig { path: path.to_path_buf(), message: e.to_string() })?;
    Ok(config)
}

/// Loads a native model file.
pub fn load_model(path: &Path, device: &Device) -> Result<RetinaFace, ModelFileError> {
    let bytes = crate::fsutil::read_limited(path, MAX_MODEL_BYTES)
        .map_err(|e| ModelFileError::Read { path: path.to_path_buf(), message: e.to_string() })?;
    let config = config_from_bytes(path, bytes.clone())?;
    let mut model = RetinaFace::new(&config, device);
    let mut store =
        BurnpackStore::from_bytes(Some(burn::tensor::Bytes::from_bytes_vec(bytes))).allow_partial(false).validate(true);
    let result = model
        .load_from(&mut store)
        .map_err(|e| ModelFileError::Weights { path: path.to_path_buf(), message: e.to_string() })?;
    if !result.missing.is_empty() || !result.unused.is_empty() || !result.errors.is_empty() {
        return Err(ModelFileError::Weights { path: path.to_path_buf(), message: result.to_string() });
    }
    Ok(model)
}

/// Loads weights given on the command line or in the studio: a native model file, or a PyTorch /
/// safetensors checkpoint with the preset that describes its network.
pub fn load_weights(path: &Path, preset: Option<&str>, device: &Device) -> Result<RetinaFace, ModelFileError> {
    match preset {
        Some(name) => {
            let config = RetinaFaceConfig::preset(name)?;
            Ok(import_checkpoint(path, &config, device)?)
        }
        None => load_model(path, device),
    }
}
