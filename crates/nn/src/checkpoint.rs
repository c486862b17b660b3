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

/// `module`'s parameters as safetensors bytes (the same format [`save`] writes).
pub fn to_bytes<M: Module>(module: &M) -> Result<Vec<u8>, String> {
    let mut store = SafetensorsStore::from_bytes(None);
    module.save_into(&mut store).map_err(|e| format!("cannot serialise the model: {e:?}"))?;
    store.get_bytes().map_err(|e| format!("cannot serialise the model: {e:?}"))
}

/// Loads parameters from safetensors `bytes` into `module` (whose shapes must match); `what`
/// names the source in errors.
pub fn from_bytes<M: Module>(mut module: M, bytes: Vec<u8>, what: &str) -> Result<M, String> {
    let mut store = SafetensorsStore::from_bytes(Some(bytes));
    module.load_from(&mut store).map_err(|e| format!("cannot read the model in {what}: {e:?}"))?;
    Ok(module)
}

/// The ids of `module`'s float parameters in visiting order. burn's optimizer state is keyed by
/// these ids, which a freshly built module does not share with the one that was saved: a resumed
/// run gives its rebuilt module the saved ids ([`with_param_ids`]) before loading the optimizer.
pub fn param_ids<M: Module>(module: &M) -> Vec<u64> {
    struct Ids(Vec<u64>);
    impl burn::module::ModuleVisitor for Ids {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<burn::tensor::Tensor<D>>) {
            self.0.push(param.id.val());
        }
    }
    let mut ids = Ids(Vec::new());
    module.visit(&mut ids);
    ids.0
}

/// `module` with its float parameters' ids replaced, in visiting order, by `ids` (values and
/// gradient requirements unchanged). Errors when the count differs (a different architecture).
pub fn with_param_ids<M: Module>(module: M, ids: &[u64]) -> Result<M, String> {
    struct SetIds<'a> {
        ids: &'a [u64],
        next: usize,
    }
    impl burn::module::ModuleMapper for SetIds<'_> {
        fn map_float<const D: usize>(
            &mut self,
            param: burn::module::Param<burn::tensor::Tensor<D>>,
        ) -> burn::module::Param<burn::tensor::Tensor<D>> {
            let (id, value, mapper) = param.consume();
            let id = self.ids.get(self.next).map_or(id, |&v| burn::module::ParamId::from(v));
            self.next += 1;
            burn::module::Param::from_mapped_value(id, value, mapper)
        }
    }
    let found = param_ids(&module).len();
    if found != ids.len() {
        return Err(format!("the model has {found} parameter tensors but the saved state has {}", ids.len()));
    }
    let mut mapper = SetIds { ids, next: 0 };
    Ok(module.map(&mut mapper))
}
