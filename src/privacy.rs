//! The informant stays secret (rule 第二十条(三)): the caller's number and
//! name are sealed with AES-256-GCM before they leave the call task (so the
//! ticket journal and Redis only hold ciphertext), and shown masked
//! (`138****8000`) wherever a person reads them; a browser caller's
//! address is logged as its network only (`sip::admission::mask_ip`).
//!
//! The key comes from `HOTLINE_CALLER_KEY` (base64 of 32 bytes) or from the
//! key file (`privacy.key_file`), created with a random key on first start.
//! It is never logged. Gateways sharing a Redis must share the key.

use std::path::Path;

use aes_gcm::aead::Aead;
use aes_gcm::{Aes256Gcm, KeyInit};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;

/// Sealed values start with this.
const PREFIX: &str = "enc:v1:";

#[derive(Clone)]
pub struct CallerKey(Aes256Gcm, String);

impl std::fmt::Debug for CallerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CallerKey(..)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("HOTLINE_CALLER_KEY: must be base64 of 32 bytes")]
    BadEnv,
    #[error("{path}: must hold base64 of 32 bytes")]
    BadFile { path: String },
    #[error("{path}: {error}")]
    Io { path: String, error: std::io::Error },
}

impl CallerKey {
    pub fn from_bytes(key: &[u8; 32]) -> CallerKey {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(b"hotline caller key fingerprint\0");
        h.update(key);
        let fingerprint = crate::hex::encode(&h.finalize()[..8]);
        CallerKey(Aes256Gcm::new(key.into()), fingerprint)
    }

    /// Names the key without revealing it (a hash of it, 16 hex digits):
    /// kept in Redis, so a gateway started with another key is refused
    /// before it seals numbers nobody could open with the first one.
    pub fn fingerprint(&self) -> &str {
        &self.1
    }

    fn decode(text: &str) -> Option<[u8; 32]> {
        B64.decode(text.trim()).ok()?.try_into().ok()
    }

    /// The key from `env` (the value of HOTLINE_CALLER_KEY) or the file,
    /// creating the file (mode 0600) with a random key when missing.
    pub fn load(env: Option<&str>, file: &Path) -> Result<CallerKey, KeyError> {
        if let Some(v) = env {
            return CallerKey::decode(v)
                .map(|k| CallerKey::from_bytes(&k))
                .ok_or(KeyError::BadEnv);
        }
        let path = file.display().to_string();
        match std::fs::read_to_string(file) {
            Ok(text) => CallerKey::decode(&text)
                .map(|k| CallerKey::from_bytes(&k))
                .ok_or(KeyError::BadFile { path }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key: [u8; 32] = rand::random();
                if let Some(dir) = file.parent() {
                    std::fs::create_dir_all(dir).map_err(|error| KeyError::Io {
                        path: path.clone(),
                        error,
                    })?;
                }
                let mut opts = std::fs::OpenOptions::new();
                opts.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
                use std::io::Write;
                opts.open(file)
                    .and_then(|mut f| f.write_all(format!("{}\n", B64.encode(key)).as_bytes()))
                    .map_err(|error| KeyError::Io {
                        path: path.clone(),
                        error,
                    })?;
                tracing::warn!(path = %path, "created a new caller key: back it up, or sealed caller numbers cannot be read");
                Ok(CallerKey::from_bytes(&key))
            }
            Err(error) => Err(KeyError::Io { path, error }),
        }
    }

    /// `enc:v1:` + base64(nonce || ciphertext).
    pub fn seal(&self, plain: &str) -> String {
        let nonce: [u8; 12] = rand::random();
        let ct = self
            .0
            .encrypt((&nonce).into(), plain.as_bytes())
            .expect("AES-GCM encryption of a short string cannot fail");
        let mut all = nonce.to_vec();
        all.extend(ct);
        format!("{PREFIX}{}", B64.encode(all))
    }

    /// The plain text of a sealed value (`None` if it is not one of ours).
    pub fn open(&self, sealed: &str) -> Option<String> {
        let raw = B64.decode(sealed.strip_prefix(PREFIX)?).ok()?;
        if raw.len() < 12 {
            return None;
        }
        let (nonce, ct) = raw.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().ok()?;
        let plain = self.0.decrypt((&nonce).into(), ct).ok()?;
        String::from_utf8(plain).ok()
    }
}

pub fn is_sealed(v: &str) -> bool {
    v.starts_with(PREFIX)
}

/// A number as a person may see it (logs, API, pages, CLI): at most its
/// last 4 digits (`*******8000`); anything shorter than 8 is all stars.
pub fn mask(number: &str) -> String {
    // At most the last four digits, whatever the length (an 8-digit local
    // number shows `****1234`, a mobile `*******8000`); a short number
    // shows nothing.
    let chars: Vec<char> = number.chars().collect();
    if chars.len() >= 8 {
        let tail: String = chars[chars.len() - 4..].iter().collect();
        format!("{}{tail}", "*".repeat(chars.len() - 4))
    } else {
        "*".repeat(chars.len().max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_and_open() {
        let k = CallerKey::from_bytes(&[7; 32]);
        let s = k.seal("13812348000");
        assert!(is_sealed(&s) && !s.contains("13812348000"));
        assert_ne!(s, k.seal("13812348000"), "a fresh nonce each time");
        assert_eq!(k.open(&s).as_deref(), Some("13812348000"));
        assert_eq!(
            CallerKey::from_bytes(&[8; 32]).open(&s),
            None,
            "another key opens nothing"
        );
        assert_eq!(k.open("13812348000"), None);
    }

    #[test]
    fn masks() {
        assert_eq!(mask("13812348000"), "*******8000");
        assert_eq!(mask("+8653212368"), "*******2368");
        // An 8-digit local number: the last four only (it showed 855*1234).
        assert_eq!(mask("85551234"), "****1234");
        assert_eq!(mask("110"), "***");
        assert_eq!(
            mask("中文号码甲乙丙丁"),
            "****甲乙丙丁",
            "characters, not bytes"
        );
    }

    #[test]
    fn key_file_created_once_and_reused() {
        let dir = std::env::temp_dir().join(format!("hotline-key-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let file = dir.join("caller.key");
        let a = CallerKey::load(None, &file).unwrap();
        let b = CallerKey::load(None, &file).unwrap();
        assert_eq!(b.open(&a.seal("x")).as_deref(), Some("x"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        assert!(matches!(
            CallerKey::load(Some("short"), &file),
            Err(KeyError::BadEnv)
        ));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
