//! Acknowledging an incident ("I'm on it"): signed links that work from a phone without
//! logging in, and the requests the scheduler applies at its next check.
//!
//! - **Links**: `<base_url>/ack/<token>`, where the token is the rule's slug, the incident's
//!   id and an expiry (epoch seconds), signed with HMAC-SHA256 under a 32-byte secret that
//!   is generated into `data_dir/state/ack.key` (mode 0600) on first start. A tampered or
//!   expired token is refused. Opening the link shows a page; only its POST acknowledges (so a
//!   mail scanner that follows links acknowledges nothing).
//! - **Requests**: the HTTP side never touches rule state; it records an [`AckRequest`] in the
//!   sled tree `acks`, and the scheduler takes it at the rule's next check and applies it to
//!   the incident it names (a request for an incident that has ended is dropped).

use std::path::{Path, PathBuf};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::statedb::StateDbError;

/// How long an acknowledge link works, in seconds (7 days; every reminder carries a new one).
pub const LINK_LIFETIME: i64 = 7 * 86_400;
/// Longest author or comment kept, in characters.
pub const MAX_TEXT_CHARS: usize = 500;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Why a token or a request was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AckError {
    /// Not a token this server signed (malformed, or a signature that does not match).
    #[error("this acknowledge link is not valid (it was changed, or comes from another server)")]
    Invalid,
    /// Signed, but past its expiry.
    #[error("this acknowledge link expired at {0}; open the rule's page instead")]
    Expired(String),
    /// The secret could not be read or created.
    #[error("cannot read or create the acknowledge key {}: {reason}", path.display())]
    Key {
        /// `data_dir/state/ack.key`.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// The secret acknowledge links are signed with.
#[derive(Clone)]
pub struct AckKey {
    key: [u8; 32],
}

impl std::fmt::Debug for AckKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AckKey(…)")
    }
}

/// What a valid token says.
#[derive(Debug, Clone, PartialEq)]
pub struct AckClaim {
    /// The rule's slug.
    pub slug: String,
    /// The incident's id (its thread).
    pub incident: String,
    /// Until when the link works (epoch seconds).
    pub expires: i64,
}

impl AckKey {
    /// The key in `dir/ack.key`, created (32 random bytes, mode 0600) when missing.
    pub fn load_or_create(dir: &Path) -> Result<AckKey, AckError> {
        let path = dir.join("ack.key");
        let err = |reason: String| AckError::Key {
            path: path.clone(),
            reason,
        };
        match std::fs::read(&path) {
            Ok(bytes) if bytes.len() == 32 => {
                let mut key = [0u8; 32];
                key.copy_from_slice(&bytes);
                return Ok(AckKey { key });
            }
            Ok(bytes) => return Err(err(format!("{} bytes, not 32", bytes.len()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(err(e.to_string())),
        }
        let mut key = [0u8; 32];
        password_hash::rand_core::RngCore::fill_bytes(
            &mut password_hash::rand_core::OsRng,
            &mut key,
        );
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let tmp = dir.join(".ack.key.tmp");
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| err(e.to_string()))?;
        f.write_all(&key)
            .and_then(|_| f.sync_all())
            .map_err(|e| err(e.to_string()))?;
        std::fs::rename(&tmp, &path).map_err(|e| err(e.to_string()))?;
        Ok(AckKey { key })
    }

    /// A key from fixed bytes (tests).
    pub fn from_bytes(key: [u8; 32]) -> AckKey {
        AckKey { key }
    }

    fn mac(&self, payload: &[u8]) -> Vec<u8> {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("any key length");
        m.update(payload);
        m.finalize().into_bytes().to_vec()
    }

    /// The token for acknowledging `incident` of rule `slug`, valid until `expires`.
    pub fn sign(&self, slug: &str, incident: &str, expires: i64) -> String {
        let payload = format!("{slug}\n{incident}\n{expires}");
        format!(
            "{}.{}",
            B64.encode(payload.as_bytes()),
            B64.encode(self.mac(payload.as_bytes()))
        )
    }

    /// Checks `token` at `now`: the claim it carries, or why it is refused. The signature is
    /// compared in constant time.
    pub fn verify(&self, token: &str, now: i64) -> Result<AckClaim, AckError> {
        let (p, s) = token.split_once('.').ok_or(AckError::Invalid)?;
        let payload = B64.decode(p).map_err(|_| AckError::Invalid)?;
        let sig = B64.decode(s).map_err(|_| AckError::Invalid)?;
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("any key length");
        m.update(&payload);
        m.verify_slice(&sig).map_err(|_| AckError::Invalid)?;
        let text = String::from_utf8(payload).map_err(|_| AckError::Invalid)?;
        let mut parts = text.splitn(3, '\n');
        let (Some(slug), Some(incident), Some(expires)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(AckError::Invalid);
        };
        let expires: i64 = expires.parse().map_err(|_| AckError::Invalid)?;
        if now > expires {
            return Err(AckError::Expired(super::format::utc(expires)));
        }
        Ok(AckClaim {
            slug: slug.to_string(),
            incident: incident.to_string(),
            expires,
        })
    }
}

/// An acknowledgement asked for through a link, the rule page or the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AckRequest {
    /// The incident (its thread id); `None`: whatever incident is open.
    pub incident: Option<String>,
    /// Who.
    pub by: String,
    /// Why, or what they are doing.
    pub comment: String,
    /// When (epoch seconds).
    pub at: i64,
    /// A series, when the acknowledgement is about one (recorded with it).
    pub series: Option<String>,
}

/// Trims and bounds a free text from a form or a JSON body (no control characters).
pub fn clean_text(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control())
        .take(MAX_TEXT_CHARS)
        .collect::<String>()
        .trim()
        .to_string()
}

/// The `acks` tree: requests waiting for the scheduler.
#[derive(Clone)]
pub struct AckDesk {
    tree: sled::Tree,
    key: AckKey,
}

impl AckDesk {
    /// The desk in `db` (tree `acks`), signing with `key`.
    pub fn open(db: &sled::Db, key: AckKey) -> Result<AckDesk, StateDbError> {
        Ok(AckDesk {
            tree: db.open_tree("acks")?,
            key,
        })
    }

    /// The signing key.
    pub fn key(&self) -> &AckKey {
        &self.key
    }

    /// Records `req` for rule `name` (a later request replaces an earlier one not yet taken).
    pub fn request(&self, name: &str, req: &AckRequest) -> Result<(), StateDbError> {
        self.tree
            .insert(name.as_bytes(), serde_json::to_vec(req)?)
            .map_err(StateDbError::State)?;
        self.tree.flush().map_err(StateDbError::State)?;
        Ok(())
    }

    /// Takes the request waiting for rule `name`, if any.
    pub fn take(&self, name: &str) -> Option<AckRequest> {
        let v = self.tree.remove(name.as_bytes()).ok()??;
        serde_json::from_slice(&v).ok()
    }

    /// The link that acknowledges `incident` of rule `slug` under `base_url`, valid for
    /// [`LINK_LIFETIME`] from `now`.
    pub fn link(&self, base_url: &str, slug: &str, incident: &str, now: i64) -> String {
        format!(
            "{}/ack/{}",
            base_url.trim_end_matches('/'),
            self.key.sign(slug, incident, now + LINK_LIFETIME)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_signed_and_expire() {
        let k = AckKey::from_bytes([7; 32]);
        let t = k.sign("disk", "incident.disk.100@carbonhound", 1000);
        let c = k.verify(&t, 999).unwrap();
        assert_eq!(
            (c.slug.as_str(), c.incident.as_str(), c.expires),
            ("disk", "incident.disk.100@carbonhound", 1000)
        );
        assert!(matches!(k.verify(&t, 1001), Err(AckError::Expired(_))));
        // Tampered: another rule, a later expiry, or a signature from another key.
        let (p, s) = t.split_once('.').unwrap();
        let forged = format!(
            "{}.{s}",
            B64.encode("load\nincident.disk.100@carbonhound\n1000")
        );
        assert_eq!(k.verify(&forged, 0), Err(AckError::Invalid));
        let later = format!(
            "{}.{s}",
            B64.encode("disk\nincident.disk.100@carbonhound\n99999999")
        );
        assert_eq!(k.verify(&later, 0), Err(AckError::Invalid));
        let other = AckKey::from_bytes([8; 32]).sign("disk", "incident.disk.100@carbonhound", 1000);
        assert_eq!(k.verify(&other, 0), Err(AckError::Invalid));
        assert_eq!(k.verify(p, 0), Err(AckError::Invalid));
        assert_eq!(k.verify("", 0), Err(AckError::Invalid));
        assert_eq!(k.verify("a.b.c", 0), Err(AckError::Invalid));
    }

    #[test]
    fn the_key_is_made_once_and_kept_private() {
        let dir = tempfile::tempdir().unwrap();
        let a = AckKey::load_or_create(dir.path()).unwrap();
        let b = AckKey::load_or_create(dir.path()).unwrap();
        assert_eq!(a.key, b.key);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("ack.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::write(dir.path().join("ack.key"), b"short").unwrap();
        assert!(AckKey::load_or_create(dir.path()).is_err());
    }

    #[test]
    fn requests_wait_for_the_scheduler() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new().path(dir.path()).open().unwrap();
        let desk = AckDesk::open(&db, AckKey::from_bytes([1; 32])).unwrap();
        let r = AckRequest {
            incident: Some("i".into()),
            by: clean_text("  ann\u{7} "),
            comment: clean_text("on it"),
            at: 5,
            series: None,
        };
        assert_eq!(r.by, "ann");
        desk.request("Disk", &r).unwrap();
        assert_eq!(desk.take("Disk"), Some(r));
        assert_eq!(desk.take("Disk"), None);
        assert!(desk
            .link("http://h:8080/", "disk", "i", 0)
            .starts_with("http://h:8080/ack/"));
    }
}
