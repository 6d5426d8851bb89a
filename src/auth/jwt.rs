//! The registry tokens of `/auth/token` (docker's token spec, as notary-server checks
//! them: spec §11): ES256 JWTs with an `access` claim.
//!
//! Tokens are signed with the server's own key from the keystore, opened for one
//! signature at a time; they are checked with `jsonwebtoken`, pinned to ES256, with
//! issuer, audience, expiry and not-before all required.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};

use super::{Action, AuthError};
use crate::keystore::OwnKey;
use crate::tuf::keys::KeyMaterial;

/// One resource and the actions granted on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceActions {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub actions: Vec<String>,
}

impl ResourceActions {
    pub fn allows(&self, kind: &str, name: &str, action: Action) -> bool {
        self.kind == kind && self.name == name && self.actions.iter().any(|a| a == "*" || a == action.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    /// The user name; empty for an anonymous token.
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub nbf: i64,
    pub iat: i64,
    pub jti: String,
    pub access: Vec<ResourceActions>,
}

/// Signs and checks registry tokens.
pub struct TokenIssuer {
    key: OwnKey,
    decoding: DecodingKey,
    validation: Validation,
    pub issuer: String,
    pub service: String,
}

impl TokenIssuer {
    pub fn new(key: OwnKey, issuer: &str, service: &str) -> Result<TokenIssuer, AuthError> {
        let KeyMaterial::EcdsaP256(point) = &key.public.material else {
            return Err(AuthError::Internal("the token signing key is not ECDSA P-256".into()));
        };
        let decoding = DecodingKey::from_ec_der(point);
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[service]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = 60;
        Ok(TokenIssuer { key, decoding, validation, issuer: issuer.into(), service: service.into() })
    }

    pub fn sign(&self, claims: &Claims) -> Result<String, AuthError> {
        let header = serde_json::json!({ "alg": "ES256", "typ": "JWT", "kid": self.key.key_id });
        let claims = serde_json::to_vec(claims).map_err(|e| AuthError::Internal(e.to_string()))?;
        let signing_input =
            format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims));
        // ECDSA signatures from the keystore are r‖s, which is JWS's ES256 encoding.
        let signature = self.key.sign(signing_input.as_bytes())?;
        Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature.sig)))
    }

    /// The claims of a token this server issued and that is still valid.
    pub fn verify(&self, token: &str) -> Option<Claims> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).ok().map(|data| data.claims)
    }
}
