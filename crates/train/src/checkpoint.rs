//! Resumable training states: one file that holds everything a training loop needs to continue
//! exactly where it stopped.
//!
//! A [`StateFile`] is a list of named sections — the model (safetensors bytes), the optimizer
//! state (burn's `OptimizerRecord` bytes) and small typed values (counters, RNG word positions,
//! env snapshots, what the caller logged so far) encoded as CBOR, which, unlike JSON, keeps NaN and
//! every float bit for bit.
//!
//! Layout: `MESLSTAT` (8 bytes), format version (u32 LE), section count (u32 LE), then per
//! section: name length (u32 LE), name (UTF-8), data length (u64 LE), data.
//!
//! Invariants: a file is written to a temporary name and renamed into place, so a reader sees the
//! previous state or the new one, never half of one; reading checks every length against the file
//! before allocating, so a truncated or foreign file is an error naming the file, never a panic.

use burn::module::Module;
use burn::optim::OptimizerRecord;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::path::Path;

const MAGIC: &[u8; 8] = b"MESLSTAT";
const VERSION: u32 = 1;

/// A training state that cannot be written or read; the message names the file.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CheckpointError(pub String);

/// Named byte sections; see the module docs for the file layout.
#[derive(Clone, Debug, Default)]
pub struct StateFile {
    sections: Vec<(String, Vec<u8>)>,
    /// Where it was read from (for error messages); empty for a new one.
    origin: String,
}

impl StateFile {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) section `name` with raw bytes.
    pub fn put_bytes(&mut self, name: &str, bytes: Vec<u8>) {
        self.sections.retain(|(n, _)| n != name);
        self.sections.push((name.to_string(), bytes));
    }

    /// Adds (or replaces) section `name` with `value` encoded as CBOR.
    pub fn put<T: Serialize>(&mut self, name: &str, value: &T) -> Result<(), CheckpointError> {
        let mut bytes = Vec::new();
        ciborium::into_writer(value, &mut bytes)
            .map_err(|e| CheckpointError(format!("cannot encode the training state's `{name}`: {e}")))?;
        self.put_bytes(name, bytes);
        Ok(())
    }

    /// Adds the model's parameters and their ids (see [`Self::restore_model`]).
    pub fn put_model<M: Module>(&mut self, model: &M) -> Result<(), CheckpointError> {
        self.put_bytes("model", mesalab_nn::checkpoint::to_bytes(model).map_err(CheckpointError)?);
        self.put("model-param-ids", &mesalab_nn::checkpoint::param_ids(model))
    }

    pub fn put_optimizer(&mut self, record: OptimizerRecord) -> Result<(), CheckpointError> {
        let bytes = record.into_bytes().map_err(|e| CheckpointError(format!("cannot encode the optimizer: {e:?}")))?;
        self.put_bytes("optimizer", bytes.to_vec());
        Ok(())
    }

    pub fn bytes(&self, name: &str) -> Result<&[u8], CheckpointError> {
        self.sections.iter().find(|(n, _)| n == name).map(|(_, b)| b.as_slice()).ok_or_else(|| {
            CheckpointError(format!("the training state {} has no `{name}` section", self.origin_label()))
        })
    }

    /// Decodes section `name` as CBOR.
    pub fn get<T: DeserializeOwned>(&self, name: &str) -> Result<T, CheckpointError> {
        ciborium::from_reader(self.bytes(name)?).map_err(|e| {
            CheckpointError(format!("the training state {} has an unreadable `{name}`: {e}", self.origin_label()))
        })
    }

    /// `fresh` (a module of the saved architecture, e.g. newly initialised) with the saved
    /// parameters and parameter ids, so that a restored optimizer state applies to it.
    pub fn restore_model<M: Module>(&self, fresh: M) -> Result<M, CheckpointError> {
        let what = self.origin_label();
        let model =
            mesalab_nn::checkpoint::from_bytes(fresh, self.bytes("model")?.to_vec(), &what).map_err(CheckpointError)?;
        let ids: Vec<u64> = self.get("model-param-ids")?;
        mesalab_nn::checkpoint::with_param_ids(model, &ids).map_err(|e| CheckpointError(format!("{what}: {e}")))
    }

    pub fn optimizer(&self) -> Result<OptimizerRecord, CheckpointError> {
        let bytes = burn::tensor::Bytes::from_bytes_vec(self.bytes("optimizer")?.to_vec());
        OptimizerRecord::from_bytes(bytes).map_err(|e| {
            CheckpointError(format!(
                "the training state {} has an unreadable optimizer state: {e:?}",
                self.origin_label()
            ))
        })
    }

    fn origin_label(&self) -> String {
        if self.origin.is_empty() { "being built".into() } else { self.origin.clone() }
    }

    /// Writes the file atomically (temporary file, then rename).
    pub fn write(&self, path: &Path) -> Result<(), CheckpointError> {
        let mut out = Vec::with_capacity(16 + self.sections.iter().map(|(n, b)| 12 + n.len() + b.len()).sum::<usize>());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&(self.sections.len() as u32).to_le_bytes());
        for (name, bytes) in &self.sections {
            out.extend_from_slice(&(name.len() as u32).to_le_bytes());
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
            out.extend_from_slice(bytes);
        }
        let tmp = path.with_extension("tmp");
        let fail = |what: &str, e: std::io::Error| CheckpointError(format!("cannot {what} {}: {e}", path.display()));
        std::fs::write(&tmp, &out).map_err(|e| fail("write the training state", e))?;
        std::fs::rename(&tmp, path).map_err(|e| fail("move into place the training state", e))
    }

    /// Reads a file written by [`StateFile::write`].
    pub fn read(path: &Path) -> Result<StateFile, CheckpointError> {
        let bytes = std::fs::read(path)
            .map_err(|e| CheckpointError(format!("cannot read the training state {}: {e}", path.display())))?;
        Self::parse(&bytes, &path.display().to_string())
    }

    /// Parses the bytes of a state file; `origin` names it in errors.
    pub fn parse(bytes: &[u8], origin: &str) -> Result<StateFile, CheckpointError> {
        let bad = |why: &str| {
            CheckpointError(format!(
                "{origin} is not a readable mesalab training state ({why}); delete it to restart that training from scratch"
            ))
        };
        let mut at = 0usize;
        let mut take = |n: usize| -> Result<&[u8], CheckpointError> {
            let end = at.checked_add(n).filter(|&e| e <= bytes.len()).ok_or_else(|| bad("it is truncated"))?;
            let s = &bytes[at..end];
            at = end;
            Ok(s)
        };
        if take(8)? != MAGIC {
            return Err(bad("wrong magic bytes"));
        }
        let u32_of = |b: &[u8]| u32::from_le_bytes(b.try_into().expect("4 bytes"));
        let version = u32_of(take(4)?);
        if version != VERSION {
            return Err(bad(&format!("format version {version}, this build reads {VERSION}")));
        }
        let count = u32_of(take(4)?) as usize;
        let mut sections = Vec::new();
        for _ in 0..count {
            let name_len = u32_of(take(4)?) as usize;
            let name =
                std::str::from_utf8(take(name_len)?).map_err(|_| bad("a section name is not UTF-8"))?.to_string();
            let len = u64::from_le_bytes(take(8)?.try_into().expect("8 bytes"));
            let len = usize::try_from(len).map_err(|_| bad("a section is too long"))?;
            sections.push((name, take(len)?.to_vec()));
        }
        if at != bytes.len() {
            return Err(bad("trailing bytes after the last section"));
        }
        Ok(StateFile { sections, origin: origin.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_round_trip_bit_for_bit_including_nan() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("state.bin");
        let mut f = StateFile::new();
        f.put("floats", &vec![f32::NAN, -0.0f32, 1.0e-38, f32::INFINITY]).unwrap();
        f.put("pos", &(u128::MAX - 3)).unwrap();
        f.put_bytes("raw", vec![1, 2, 3]);
        f.write(&path).unwrap();
        let g = StateFile::read(&path).unwrap();
        let floats: Vec<f32> = g.get("floats").unwrap();
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&floats), bits(&[f32::NAN, -0.0, 1.0e-38, f32::INFINITY]));
        assert_eq!(g.get::<u128>("pos").unwrap(), u128::MAX - 3);
        assert_eq!(g.bytes("raw").unwrap(), &[1, 2, 3]);
        assert!(g.bytes("missing").unwrap_err().to_string().contains("no `missing` section"));
        assert!(!path.with_extension("tmp").exists());
    }

    #[test]
    fn truncated_foreign_and_padded_files_are_errors_naming_the_file() {
        let mut f = StateFile::new();
        f.put_bytes("a", vec![7; 100]);
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("s.bin");
        f.write(&path).unwrap();
        let good = std::fs::read(&path).unwrap();
        for cut in 0..good.len() {
            let err = StateFile::parse(&good[..cut], "x.bin").unwrap_err().to_string();
            assert!(err.contains("x.bin") && err.contains("truncated"), "cut {cut}: {err}");
        }
        let mut padded = good.clone();
        padded.push(0);
        assert!(StateFile::parse(&padded, "x.bin").unwrap_err().to_string().contains("trailing"));
        let err = StateFile::parse(b"PK\x03\x04 a zip file, not a state", "y.zip").unwrap_err().to_string();
        assert!(err.contains("y.zip") && err.contains("magic"), "{err}");
        // A huge declared length is refused before anything is allocated.
        let mut huge = good[..16].to_vec();
        huge.extend_from_slice(&1u32.to_le_bytes());
        huge.push(b'a');
        huge.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(StateFile::parse(&huge, "h").unwrap_err().to_string().contains("truncated"));
        assert!(StateFile::read(&tmp.path().join("none.bin")).unwrap_err().to_string().contains("none.bin"));
    }
}
