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
    canonical_header(&tmp)?;
    std::fs::rename(&tmp, path).map_err(|e| format!("cannot move checkpoint into {}: {e}", path.display()))
}

/// Loads parameters from `path` into `module`. The file must hold exactly the module's tensors
/// with their shapes: a missing, extra or misshapen tensor (a checkpoint of another
/// architecture) is an error naming the file, as is a truncated or foreign file.
pub fn load<M: Module>(mut module: M, path: &Path) -> Result<M, String> {
    let mut store = SafetensorsStore::from_file(path.to_path_buf());
    let what = path.display().to_string();
    let applied = module.load_from(&mut store).map_err(|e| format!("cannot read checkpoint {what}: {e:?}"))?;
    exact(&applied, &what)?;
    Ok(module)
}

/// Refuses a load that did not set every parameter from the file and use every tensor in it.
fn exact(applied: &burn::store::ApplyResult, what: &str) -> Result<(), String> {
    let list = |v: Vec<&str>| v.into_iter().take(4).collect::<Vec<_>>().join(", ");
    if !applied.missing.is_empty() {
        let missing = list(applied.missing.iter().map(|(p, _)| p.as_str()).collect());
        return Err(format!(
            "checkpoint {what} lacks tensors of this model ({missing}): it is of another architecture"
        ));
    }
    if !applied.unused.is_empty() {
        let unused = list(applied.unused.iter().map(String::as_str).collect());
        return Err(format!(
            "checkpoint {what} has tensors this model does not ({unused}): it is of another architecture"
        ));
    }
    if !applied.errors.is_empty() {
        return Err(format!("checkpoint {what} does not fit this model: {:?}", applied.errors));
    }
    Ok(())
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
    let applied = module.load_from(&mut store).map_err(|e| format!("cannot read the model in {what}: {e:?}"))?;
    exact(&applied, what)?;
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

/// Rewrites a safetensors header with every JSON object's keys sorted, padded with spaces to its
/// original length (the format allows trailing spaces), so that equal parameters give equal bytes:
/// burn writes the `__metadata__` map in hash order, which differs from process to process.
/// Tensor data and offsets are untouched.
fn canonical_header(path: &Path) -> Result<(), String> {
    use std::collections::BTreeMap;
    fn sorted(v: serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(m) => {
                let b: BTreeMap<String, serde_json::Value> = m.into_iter().map(|(k, v)| (k, sorted(v))).collect();
                serde_json::to_value(b).expect("a map of JSON values")
            }
            other => other,
        }
    }
    let fail = |what: &str| format!("cannot canonicalise checkpoint {}: {what}", path.display());
    let mut bytes = std::fs::read(path).map_err(|e| fail(&e.to_string()))?;
    let n = bytes
        .get(..8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")) as usize)
        .ok_or_else(|| fail("no header"))?;
    let header = bytes.get(8..8 + n).ok_or_else(|| fail("short header"))?;
    let value: serde_json::Value = serde_json::from_slice(header).map_err(|e| fail(&e.to_string()))?;
    let text = serde_json::to_string(&sorted(value)).map_err(|e| fail(&e.to_string()))?;
    if text.len() > n {
        return Ok(()); // never grow the header; leave burn's bytes as they are
    }
    let mut padded = text.into_bytes();
    padded.resize(n, b' ');
    bytes[8..8 + n].copy_from_slice(&padded);
    std::fs::write(path, bytes).map_err(|e| fail(&e.to_string()))
}
