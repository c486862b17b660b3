//! Checkpoints: any module saved to / loaded from a safetensors file.

use burn::module::Module;
use burn::store::{ModuleSnapshot, SafetensorsStore};
use std::path::Path;

/// Writes `module`'s parameters to `path` (safetensors), via a temporary file renamed into place
/// so that a crash never leaves a half-written checkpoint under the final name.
pub fn save<M: Module>(module: &M, path: &Path) -> Result<(), String> {
    let tmp = path.with_extension("safetensors.tmp");
    let mut store = SafetensorsStore::from_file(tmp.clone());
    module.save_into(&mut store).map_err(|e| format!("cannot write checkpoint {}: {e:?}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("cannot move checkpoint into {}: {e}", path.display()))
}

/// Loads parameters from `path` into `module` (whose shapes must match).
pub fn load<M: Module>(mut module: M, path: &Path) -> Result<M, String> {
    let mut store = SafetensorsStore::from_file(path.to_path_buf());
    module.load_from(&mut store).map_err(|e| format!("cannot read checkpoint {}: {e:?}", path.display()))?;
    Ok(module)
}
