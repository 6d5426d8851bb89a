//! Server-managed private keys (DESIGN §3): the timestamp key of every repository and the
//! snapshot key of those that hand it to the server.
//!
//! - At rest each key is sealed with AES-256-GCM under a key-encryption key (KEK) derived
//!   with Argon2id from `NOTARIUS_KEY_PASSPHRASE`. The associated data binds a ciphertext
//!   to its row (key ID, GUN, role, algorithm), so rows cannot be swapped in the database.
//! - In memory, key bytes live in `Zeroizing` buffers: a key is unsealed for one signing
//!   operation and wiped when dropped.
//! - Notary's pending-key rule: a key that never signed (`last_used` unset) is handed out
//!   again by the next create, so repeated GETs and rotations before a publish agree.

use std::sync::Arc;

use argon2::{Algorithm, Argon2, Params, Version};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::store::{AuditRecord, KekRecord, SealedKey, Store, StoreError};
use crate::telemetry::KEY_OPERATIONS;
use crate::tuf::crypto::{KeyAlgorithm, Signature, SigningKey};
use crate::tuf::{BaseRole, Gun, KeyType, PublicKey};

/// Used when `NOTARIUS_KEY_PASSPHRASE` is unset, with a loud warning at start.
pub const DEVELOPMENT_PASSPHRASE: &str = "notarius-development-passphrase-do-not-use";

#[derive(Debug, thiserror::Error)]
pub enum KeystoreError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "NOTARIUS_KEY_PASSPHRASE does not open the {count} private key(s) sealed under key-encryption key {kek_id}; \
         start with the passphrase they were sealed with"
    )]
    WrongPassphrase { kek_id: String, count: i64 },
    #[error("key {0} is not held by the server for this repository")]
    UnknownKey(String),
    #[error("private key {0} could not be unsealed")]
    Unseal(String),
    #[error("key derivation failed: {0}")]
    Derivation(String),
    #[error("key generation or signing failed: {0}")]
    Crypto(String),
}

/// A key-encryption key. The 32 bytes are wiped on drop.
pub struct Kek {
    pub id: String,
    key: LessSafeKey,
}

const KEK_CHECK_MESSAGE: &[u8] = b"notarius kek check v1";

fn random_bytes<const N: usize>() -> Result<[u8; N], KeystoreError> {
    let mut bytes = [0u8; N];
    SystemRandom::new().fill(&mut bytes).map_err(|_| KeystoreError::Crypto("no randomness".into()))?;
    Ok(bytes)
}

impl Kek {
    fn derive(passphrase: &str, record: &KekRecord) -> Result<(Kek, Vec<u8>), KeystoreError> {
        let params = Params::new(record.m_cost, record.t_cost, record.p_cost, Some(32))
            .map_err(|e| KeystoreError::Derivation(e.to_string()))?;
        let mut bytes = Zeroizing::new([0u8; 32]);
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into(passphrase.as_bytes(), &record.salt, bytes.as_mut())
            .map_err(|e| KeystoreError::Derivation(e.to_string()))?;
        let check = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, bytes.as_ref()), KEK_CHECK_MESSAGE);
        let key =
            UnboundKey::new(&AES_256_GCM, bytes.as_ref()).map_err(|_| KeystoreError::Derivation("bad KEK".into()))?;
        Ok((Kek { id: record.id.clone(), key: LessSafeKey::new(key) }, check.as_ref().to_vec()))
    }

    /// The KEK of `record` if `passphrase` is the one it was made from. Argon2id is
    /// deliberately slow: it runs off the async workers.
    async fn open_with(passphrase: &Zeroizing<String>, record: &KekRecord) -> Result<Option<Kek>, KeystoreError> {
        let (pass, owned) = (passphrase.clone(), record.clone());
        let (kek, check) = tokio::task::spawn_blocking(move || Kek::derive(&pass, &owned))
            .await
            .map_err(|e| KeystoreError::Derivation(e.to_string()))??;
        Ok((check == record.check_value).then_some(kek))
    }

    /// A new KEK for `passphrase`, with a fresh salt.
    fn create(passphrase: &str) -> Result<(Kek, KekRecord), KeystoreError> {
        let mut record = KekRecord {
            id: hex::encode(random_bytes::<8>()?),
            salt: random_bytes::<16>()?.to_vec(),
            m_cost: Params::DEFAULT_M_COST,
            t_cost: Params::DEFAULT_T_COST,
            p_cost: Params::DEFAULT_P_COST,
            check_value: Vec::new(),
            created_at: OffsetDateTime::now_utc(),
        };
        let (kek, check) = Kek::derive(passphrase, &record)?;
        record.check_value = check;
        Ok((kek, record))
    }

    fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<(Vec<u8>, Vec<u8>), KeystoreError> {
        let nonce = random_bytes::<12>()?;
        let mut buffer = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut buffer)
            .map_err(|_| KeystoreError::Crypto("sealing failed".into()))?;
        Ok((buffer, nonce.to_vec()))
    }

    fn open(&self, aad: &[u8], nonce: &[u8], sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut buffer = Zeroizing::new(sealed.to_vec());
        let plaintext_len = self.key.open_in_place(nonce, Aad::from(aad), buffer.as_mut_slice()).ok()?.len();
        buffer.truncate(plaintext_len);
        Some(buffer)
    }
}

fn associated_data(key_id: &str, gun: &str, role: &str, algorithm: &str) -> Vec<u8> {
    format!("notarius-private-key\0{key_id}\0{gun}\0{role}\0{algorithm}").into_bytes()
}

/// The KEKs a server can open: the current one seals, older ones (from
/// `NOTARIUS_KEY_PASSPHRASE_OLD`) only open, until a re-seal moves their keys.
struct Keks {
    current: Kek,
    older: Vec<Kek>,
}

impl Keks {
    fn get(&self, id: &str) -> Option<&Kek> {
        std::iter::once(&self.current).chain(&self.older).find(|k| k.id == id)
    }
}

/// The GUN under which the server's own keys (token signing, user CA) are stored: no
/// repository can have an empty name.
const SERVER_OWNER: &str = "";
/// The server's own key that signs the JWTs of `/auth/token`.
pub const TOKEN_SIGNING_KEY: &str = "token-signing";
/// The server's own key that issues users' certificates.
pub const USER_CA_KEY: &str = "user-ca";

/// Opens and creates server-managed keys.
pub struct Keystore {
    store: Arc<dyn Store>,
    keks: Arc<Keks>,
    algorithm: KeyAlgorithm,
}

impl Keystore {
    /// Finds the KEK that `passphrase` opens, or makes one if no key is sealed under
    /// a passphrase it was not given. `old_passphrase` opens keys sealed before a
    /// passphrase change, until [`Keystore::reseal_all`] moves them.
    pub async fn open(
        store: Arc<dyn Store>,
        passphrase: &str,
        old_passphrase: Option<&str>,
        algorithm: KeyAlgorithm,
    ) -> Result<Keystore, KeystoreError> {
        let records = store.keks().await?;
        let passphrase = Zeroizing::new(passphrase.to_owned());
        let old_passphrase = old_passphrase.map(|p| Zeroizing::new(p.to_owned()));
        let mut current = None;
        let mut older = Vec::new();
        for record in records {
            if let Some(kek) = Kek::open_with(&passphrase, &record).await? {
                current.get_or_insert(kek);
            } else if let Some(old) = &old_passphrase
                && let Some(kek) = Kek::open_with(old, &record).await?
            {
                older.push(kek);
            }
        }
        let opened: Vec<String> = current.iter().chain(&older).map(|k| k.id.clone()).collect();
        if let Some((kek_id, count)) =
            store.key_counts_by_kek().await?.into_iter().find(|(id, n)| *n > 0 && !opened.contains(id))
        {
            return Err(KeystoreError::WrongPassphrase { kek_id, count });
        }
        let current = match current {
            Some(kek) => kek,
            None => {
                let pass = passphrase.clone();
                let (kek, record) = tokio::task::spawn_blocking(move || Kek::create(&pass))
                    .await
                    .map_err(|e| KeystoreError::Derivation(e.to_string()))??;
                store.insert_kek(record).await?;
                kek
            }
        };
        Ok(Keystore { store, keks: Arc::new(Keks { current, older }), algorithm })
    }

    /// The id of the KEK that seals new keys.
    pub fn current_kek_id(&self) -> &str {
        &self.keks.current.id
    }

    /// How many keys are still sealed under an older KEK.
    pub async fn keys_under_older_keks(&self) -> Result<usize, KeystoreError> {
        Ok(self.store.keys_not_under(&self.keks.current.id).await?.len())
    }

    /// Re-seals every key sealed under an older KEK with the current one. Safe to run
    /// while serving and to run again: a row is replaced only if still under its old KEK.
    pub async fn reseal_all(&self) -> Result<usize, KeystoreError> {
        let mut count = 0;
        for key in self.store.keys_not_under(&self.keks.current.id).await? {
            let kek = self
                .keks
                .get(&key.kek_id)
                .ok_or_else(|| KeystoreError::WrongPassphrase { kek_id: key.kek_id.clone(), count: 1 })?;
            let aad = associated_data(&key.key_id, &key.gun, &key.role, &key.algorithm);
            let pkcs8 =
                kek.open(&aad, &key.nonce, &key.sealed).ok_or_else(|| KeystoreError::Unseal(key.key_id.clone()))?;
            let (sealed, nonce) = self.keks.current.seal(&aad, &pkcs8)?;
            let resealed = SealedKey { sealed, nonce, kek_id: self.keks.current.id.clone(), ..key.clone() };
            if self.store.reseal_key(&key.key_id, &key.kek_id, &resealed).await? {
                count += 1;
                metrics::counter!(KEY_OPERATIONS, "operation" => "reseal", "role" => role_label(&key.role))
                    .increment(1);
            }
        }
        Ok(count)
    }

    /// The keys held for `gun`, ready to answer `holds` and to sign.
    pub async fn keyring(&self, gun: &Gun) -> Result<KeyRing, KeystoreError> {
        self.ring_of(gun.as_str()).await
    }

    async fn ring_of(&self, owner: &str) -> Result<KeyRing, KeystoreError> {
        let keys = self.store.keys_for(owner).await?;
        Ok(KeyRing { keys, keks: self.keks.clone() })
    }

    /// Returns the pending key of `role` for `gun`, creating one if there is none
    /// (Notary's `Create`: reuse a key that never signed). `audit`, when given, is the
    /// record of the rotation that asked: it names the key (`detail.key_id`) and is
    /// written in the key's transaction, or alone when an existing key is handed out.
    pub async fn pending_key(
        &self,
        gun: &Gun,
        role: BaseRole,
        ring: &KeyRing,
        audit: Option<AuditRecord>,
    ) -> Result<PublicKey, KeystoreError> {
        let naming = |public: &PublicKey, mut audit: AuditRecord| {
            if let serde_json::Value::Object(detail) = &mut audit.detail {
                detail.insert("key_id".into(), public.id.clone().into());
            }
            audit
        };
        if let Some(pending) = ring
            .keys
            .iter()
            .find(|k| k.role == role.as_str() && k.algorithm == self.algorithm.as_str() && k.last_used.is_none())
        {
            let public = ring.public_key(&pending.key_id)?;
            if let Some(audit) = audit {
                self.store.append_audit(&naming(&public, audit)).await?;
            }
            return Ok(public);
        }
        self.create_key(gun.as_str(), role.as_str(), self.algorithm, |public| audit.map(|a| naming(public, a))).await
    }

    async fn create_key(
        &self,
        owner: &str,
        role: &str,
        algorithm: KeyAlgorithm,
        audit: impl FnOnce(&PublicKey) -> Option<AuditRecord>,
    ) -> Result<PublicKey, KeystoreError> {
        let signing_key = SigningKey::generate(algorithm).map_err(|e| KeystoreError::Crypto(e.to_string()))?;
        let public = signing_key.public_key().clone();
        let aad = associated_data(&public.id, owner, role, algorithm.as_str());
        let (sealed, nonce) = self.keks.current.seal(&aad, signing_key.pkcs8())?;
        self.store
            .insert_key(
                SealedKey {
                    key_id: public.id.clone(),
                    gun: owner.to_string(),
                    role: role.to_string(),
                    algorithm: algorithm.as_str().to_string(),
                    public: public.public.clone(),
                    sealed,
                    nonce,
                    kek_id: self.keks.current.id.clone(),
                    created_at: OffsetDateTime::now_utc(),
                    last_used: None,
                },
                audit(&public).as_ref(),
            )
            .await?;
        metrics::counter!(KEY_OPERATIONS, "operation" => "create", "role" => role_label(role)).increment(1);
        Ok(public)
    }

    /// One of the server's own ECDSA P-256 keys, made at first use. If two replicas
    /// make one at once, the older key wins everywhere.
    pub async fn own_key(&self, purpose: &str) -> Result<OwnKey, KeystoreError> {
        let first = |ring: &KeyRing| ring.keys.iter().find(|k| k.role == purpose).map(|k| k.key_id.clone());
        let mut ring = self.ring_of(SERVER_OWNER).await?;
        if first(&ring).is_none() {
            self.create_key(SERVER_OWNER, purpose, KeyAlgorithm::Ecdsa, |_| None).await?;
            ring = self.ring_of(SERVER_OWNER).await?;
        }
        let key_id = first(&ring).ok_or_else(|| KeystoreError::UnknownKey(purpose.into()))?;
        let public = ring.public_key(&key_id)?;
        Ok(OwnKey { ring, key_id, public })
    }
}

/// One of the server's own keys: its public half, and its sealed private half that is
/// opened for one use at a time.
#[derive(Clone)]
pub struct OwnKey {
    ring: KeyRing,
    pub key_id: String,
    pub public: PublicKey,
}

impl OwnKey {
    pub fn sign(&self, message: &[u8]) -> Result<Signature, KeystoreError> {
        self.ring.sign(&self.key_id, message)
    }

    /// The unsealed PKCS#8 document, wiped when dropped.
    pub fn pkcs8(&self) -> Result<Zeroizing<Vec<u8>>, KeystoreError> {
        self.ring.unseal(&self.key_id).map(|(_, _, pkcs8)| pkcs8)
    }
}

/// The server's keys for one repository. It is cached with the repository's state and
/// replaced whenever a key is created or first used.
#[derive(Clone)]
pub struct KeyRing {
    keys: Vec<SealedKey>,
    keks: Arc<Keks>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.keys.iter()).finish()
    }
}

impl KeyRing {
    /// Of `key_ids`, those that never signed before: a commit must mark them used.
    pub fn pending<'a>(&self, key_ids: &'a [String]) -> Vec<&'a String> {
        key_ids.iter().filter(|id| self.find(id).is_some_and(|k| k.last_used.is_none())).collect()
    }

    /// This ring after `key_ids` signed at `at`.
    pub fn marked_used(&self, key_ids: &[String], at: OffsetDateTime) -> KeyRing {
        let mut ring = self.clone();
        for key in ring.keys.iter_mut().filter(|k| k.last_used.is_none() && key_ids.contains(&k.key_id)) {
            key.last_used = Some(at);
        }
        ring
    }

    fn find(&self, key_id: &str) -> Option<&SealedKey> {
        self.keys.iter().find(|k| k.key_id == key_id)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// True when the server holds `key_id` as a key of `role`.
    pub fn holds(&self, role: BaseRole, key_id: &str) -> bool {
        self.find(key_id).is_some_and(|k| k.role == role.as_str())
    }

    pub fn public_key(&self, key_id: &str) -> Result<PublicKey, KeystoreError> {
        let key = self.find(key_id).ok_or_else(|| KeystoreError::UnknownKey(key_id.into()))?;
        let key_type = if key.algorithm == KeyAlgorithm::Ed25519.as_str() { KeyType::Ed25519 } else { KeyType::Ecdsa };
        PublicKey::new(key_type, key.public.clone()).map_err(|e| KeystoreError::Crypto(e.to_string()))
    }

    /// Opens the sealed PKCS#8 document of `key_id`; also gives the key's row.
    fn unseal(&self, key_id: &str) -> Result<(&SealedKey, KeyAlgorithm, Zeroizing<Vec<u8>>), KeystoreError> {
        let key = self.find(key_id).ok_or_else(|| KeystoreError::UnknownKey(key_id.into()))?;
        let kek = self.keks.get(&key.kek_id).ok_or_else(|| KeystoreError::Unseal(key_id.into()))?;
        let algorithm = KeyAlgorithm::parse(&key.algorithm).ok_or_else(|| KeystoreError::Unseal(key_id.into()))?;
        let aad = associated_data(&key.key_id, &key.gun, &key.role, &key.algorithm);
        let pkcs8 = kek.open(&aad, &key.nonce, &key.sealed).ok_or_else(|| KeystoreError::Unseal(key_id.into()))?;
        Ok((key, algorithm, pkcs8))
    }

    /// Unseals `key_id`, signs `message`, and wipes the key.
    pub fn sign(&self, key_id: &str, message: &[u8]) -> Result<Signature, KeystoreError> {
        let (key, algorithm, pkcs8) = self.unseal(key_id)?;
        let signing_key = SigningKey::from_pkcs8(algorithm, pkcs8).map_err(|_| KeystoreError::Unseal(key_id.into()))?;
        if signing_key.public_key().id != key_id {
            return Err(KeystoreError::Unseal(key_id.into()));
        }
        metrics::counter!(KEY_OPERATIONS, "operation" => "sign", "role" => role_label(&key.role)).increment(1);
        signing_key.sign(message).map_err(|e| KeystoreError::Crypto(e.to_string()))
    }
}

/// A key's role as a metric label: the TUF role, or the server's own key's purpose.
fn role_label(role: &str) -> &'static str {
    match role {
        "timestamp" => "timestamp",
        "snapshot" => "snapshot",
        TOKEN_SIGNING_KEY => "token-signing",
        _ => "server",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::SqliteStore;
    use crate::tuf::crypto;

    #[tokio::test]
    async fn keys_are_sealed_reused_while_pending_and_sign() {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().await.unwrap());
        let keystore = Keystore::open(store.clone(), "pass", None, KeyAlgorithm::Ecdsa).await.unwrap();
        let gun = Gun::parse("example.com/app").unwrap();
        let ring = keystore.keyring(&gun).await.unwrap();
        let first = keystore.pending_key(&gun, BaseRole::Timestamp, &ring, None).await.unwrap();
        let ring = keystore.keyring(&gun).await.unwrap();
        assert_eq!(keystore.pending_key(&gun, BaseRole::Timestamp, &ring, None).await.unwrap().id, first.id);
        assert!(ring.holds(BaseRole::Timestamp, &first.id));
        assert!(!ring.holds(BaseRole::Snapshot, &first.id));
        let signature = ring.sign(&first.id, b"hello").unwrap();
        assert!(crypto::verify(&first, &signature.method, b"hello", &signature.sig));

        // The same passphrase opens the same KEK; another one is refused.
        assert!(Keystore::open(store.clone(), "pass", None, KeyAlgorithm::Ecdsa).await.is_ok());
        assert!(matches!(
            Keystore::open(store.clone(), "wrong", None, KeyAlgorithm::Ecdsa).await,
            Err(KeystoreError::WrongPassphrase { count: 1, .. })
        ));
    }

    #[tokio::test]
    async fn a_swapped_row_does_not_open() {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().await.unwrap());
        let keystore = Keystore::open(store.clone(), "pass", None, KeyAlgorithm::Ed25519).await.unwrap();
        let gun = Gun::parse("example.com/app").unwrap();
        let ring = keystore.keyring(&gun).await.unwrap();
        let key = keystore.pending_key(&gun, BaseRole::Timestamp, &ring, None).await.unwrap();
        let mut ring = keystore.keyring(&gun).await.unwrap();
        ring.keys[0].role = "snapshot".into();
        assert!(matches!(ring.sign(&key.id, b"m"), Err(KeystoreError::Unseal(_))));
    }

    #[tokio::test]
    async fn a_passphrase_change_reseals_every_key_online() {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().await.unwrap());
        let old = Keystore::open(store.clone(), "old", None, KeyAlgorithm::Ecdsa).await.unwrap();
        let gun = Gun::parse("example.com/app").unwrap();
        let key = old.pending_key(&gun, BaseRole::Timestamp, &old.keyring(&gun).await.unwrap(), None).await.unwrap();
        let own = old.own_key(TOKEN_SIGNING_KEY).await.unwrap();

        // The new passphrase alone does not open the old keys.
        assert!(matches!(
            Keystore::open(store.clone(), "new", None, KeyAlgorithm::Ecdsa).await,
            Err(KeystoreError::WrongPassphrase { count: 2, .. })
        ));
        let new = Keystore::open(store.clone(), "new", Some("old"), KeyAlgorithm::Ecdsa).await.unwrap();
        assert_eq!(new.keys_under_older_keks().await.unwrap(), 2);
        // Keys under the old KEK still sign before the re-seal.
        assert!(new.keyring(&gun).await.unwrap().sign(&key.id, b"m").is_ok());
        assert_eq!(new.reseal_all().await.unwrap(), 2);
        assert_eq!(new.reseal_all().await.unwrap(), 0);

        let after = Keystore::open(store.clone(), "new", None, KeyAlgorithm::Ecdsa).await.unwrap();
        let signature = after.keyring(&gun).await.unwrap().sign(&key.id, b"m").unwrap();
        assert!(crypto::verify(&key, &signature.method, b"m", &signature.sig));
        assert_eq!(after.own_key(TOKEN_SIGNING_KEY).await.unwrap().key_id, own.key_id);
        assert!(matches!(
            Keystore::open(store.clone(), "old", None, KeyAlgorithm::Ecdsa).await,
            Err(KeystoreError::WrongPassphrase { .. })
        ));
    }
}
