//! Attack catalogue §5.6–§5.8, §5.13 and §5.14 (P0): malformed JSON, oversized bodies,
//! malformed multipart, abusive role names and GUNs. Each refusal uses Notary's code (413
//! for size), leaves every stored byte as it was, and the next honest publish succeeds.
//! Test names carry the catalogue IDs.
#![cfg(test)] // The whole crate is test code: clippy.toml's allow-*-in-tests apply to it.

mod test_app;

use bytes::Bytes;
use serde_json::{Value, json};
use test_app::*;

/// A repository with a client-held snapshot key, published once.
async fn setup(server: &TestServer, gun: &str) -> TestRepo {
    TestRepo::init(server, gun, false).await
}

/// An honest targets+snapshot publish after a refusal.
async fn still_publishable(server: &TestServer, repo: &mut TestRepo) {
    let targets = repo.next_targets(json!({ "after": target(b"after") }), no_delegations());
    repo.publish_with_snapshot(server, vec![part("targets", &targets)]).await;
}

/// A correctly signed next targets file and its client snapshot, as raw text for mutation.
fn next_batch(repo: &mut TestRepo, targets: Value) -> (String, Bytes) {
    let bytes = repo.next_targets(targets, no_delegations());
    let snapshot = repo.next_snapshot(&[part("targets", &bytes)]).unwrap();
    (String::from_utf8(bytes.to_vec()).unwrap(), snapshot)
}

async fn refused_part(server: &TestServer, repo: &mut TestRepo, targets: &str, snapshot: &Bytes, code: &str) -> Value {
    let before = server.trust_state(&repo.gun, &[]).await;
    let targets = Bytes::from(targets.to_string());
    let response = server.publish(&repo.gun, &[("targets", &targets), ("snapshot", snapshot)]).await;
    let error = assert_refused(response, 400, code).await;
    server.assert_unchanged(&repo.gun, &before).await;
    still_publishable(server, repo).await;
    error
}

// --- 5.6 Canonical JSON ---------------------------------------------------------------------

#[tokio::test]
async fn cj_01_duplicate_keys_anywhere_are_malformed() {
    let server = TestServer::start().await;
    let mut repo = setup(&server, "example.com/cj01/app").await;
    let (text, snapshot) = next_batch(&mut repo, json!({ "v1": target(b"good") }));
    let evil = target(b"evil").to_string();
    let version = format!("\"version\":{}", repo.targets_version);
    for mutated in [
        text.replacen("\"v1\":", &format!("\"v1\":{evil},\"v1\":"), 1),
        text.replacen(&version, &format!("{version},{version}"), 1),
        text.replacen("\"expires\":", "\"expires\":\"2000-01-01T00:00:00Z\",\"expires\":", 1),
        text.replacen("\"delegations\":{\"keys\":{}", "\"delegations\":{\"keys\":{},\"keys\":{}", 1),
        text.replacen("\"signatures\":", "\"signatures\":[],\"signatures\":", 1),
    ] {
        assert_ne!(mutated, text);
        let error = refused_part(&server, &mut repo, &mutated, &snapshot, "MALFORMED_JSON").await;
        assert!(error["detail"].as_str().unwrap().contains("duplicate key"), "{error}");
    }
}

#[tokio::test]
async fn cj_02_trailing_data_is_malformed() {
    let server = TestServer::start().await;
    let mut repo = setup(&server, "example.com/cj02/app").await;
    let (text, snapshot) = next_batch(&mut repo, json!({}));
    for mutated in [format!("{text}{text}"), format!("{text} junk"), format!("{text}{{\"signed\":{{}}}}")] {
        refused_part(&server, &mut repo, &mutated, &snapshot, "MALFORMED_JSON").await;
    }
}

#[tokio::test]
async fn cj_03_unsigned_fields_in_the_envelope_are_refused() {
    let server = TestServer::start().await;
    let mut repo = setup(&server, "example.com/cj03/app").await;
    let (text, snapshot) = next_batch(&mut repo, json!({}));
    let beside = text.replacen("{\"signed\":", "{\"abc\":\"xyz\",\"signed\":", 1);
    let error = refused_part(&server, &mut repo, &beside, &snapshot, "MALFORMED_JSON").await;
    assert!(error["detail"].as_str().unwrap().contains("abc"), "{error}");
    let (text, snapshot) = next_batch(&mut repo, json!({}));
    let in_signature = text.replacen("{\"keyid\":", "{\"extra\":1,\"keyid\":", 1);
    refused_part(&server, &mut repo, &in_signature, &snapshot, "MALFORMED_JSON").await;
}

#[tokio::test]
async fn cj_04_non_canonical_bytes_are_verified_canonically_and_stored_raw() {
    let server = TestServer::start().await;
    let mut repo = setup(&server, "example.com/cj04/app").await;
    let body = targets_body(repo.targets_version + 1, json!({ "a": target(b"a") }), no_delegations());
    repo.targets_version += 1;
    let signature = repo.targets_key.signature(&canonical_of(&body));
    // Reversed key order, whitespace, and an escaped letter: same value, other bytes.
    let pretty = serde_json::to_string_pretty(&body).unwrap().replacen("\"Targets\"", "\"T\\u0061rgets\"", 1);
    let reordered = format!("{{ \"signatures\" : [ {signature} ],\n \"signed\" : {pretty} }}\n");
    let targets = Bytes::from(reordered);
    repo.publish_with_snapshot(&server, vec![part("targets", &targets)]).await;
    // Served byte for byte, and hashed over exactly those bytes.
    assert_eq!(server.current(&repo.gun, "targets").await.unwrap(), targets);
    let snapshot = server.current_file(&repo.gun, "snapshot").await;
    assert_eq!(hex::encode(&snapshot.meta().unwrap().meta["targets"].hashes["sha256"]), sha256_hex(&targets));
}

#[tokio::test]
async fn cj_05_strings_canonicalise_as_notary_does() {
    let server = TestServer::start().await;
    let mut repo = setup(&server, "example.com/cj05/app").await;
    // Names Go's canonical JSON writes raw but its envelope encoder re-escapes. (Control
    // characters cannot occur: Go writes them raw, and its own decoder refuses them.)
    let names = ["a<b>&c é", "line\u{2028}sep\u{2029}", "quote\"back\\slash", "e\u{301}", "a!", "a"];
    let mut targets = serde_json::Map::new();
    for name in names {
        targets.insert(name.to_string(), target(name.as_bytes()));
    }
    let body = targets_body(repo.targets_version + 1, Value::Object(targets), no_delegations());
    repo.targets_version += 1;
    let canonical = canonical_of(&body);
    let signature = repo.targets_key.signature(&canonical);
    // The wire form notary writes: canonical text with <, >, &, U+2028/9 escaped.
    let wire_signed = String::from_utf8(notarius::tuf::canonical::go_envelope_escape(&canonical)).unwrap();
    assert!(wire_signed.contains("a\\u003cb\\u003e\\u0026c é"), "{wire_signed}");
    let wire = Bytes::from(format!(r#"{{"signed":{wire_signed},"signatures":[{signature}]}}"#));
    repo.publish_with_snapshot(&server, vec![part("targets", &wire)]).await;
    assert_eq!(server.current(&repo.gun, "targets").await.unwrap(), wire);
    // Escaped solidus and \u escapes of plain letters read as the same value.
    let body = targets_body(repo.targets_version + 1, json!({ "a/b": target(b"x") }), no_delegations());
    repo.targets_version += 1;
    let signature = repo.targets_key.signature(&canonical_of(&body));
    let text = serde_json::to_string(&body).unwrap().replacen("\"a/b\"", "\"\\u0061\\/b\"", 1);
    let escaped = Bytes::from(format!(r#"{{"signed":{text},"signatures":[{signature}]}}"#));
    repo.publish_with_snapshot(&server, vec![part("targets", &escaped)]).await;
}

// --- 5.7 Size ---------------------------------------------------------------------------------

#[tokio::test]
async fn sz_01_oversized_bodies_get_413_with_or_without_a_length() {
    let limit = 1 << 20;
    let server = TestServer::with(|c| {
        c.max_body_bytes = limit;
        c.max_part_bytes = limit;
    })
    .await;
    let mut repo = setup(&server, "example.com/sz01/app").await;
    let before = server.trust_state(&repo.gun, &[]).await;
    let (content_type, mut body) = multipart(&[("targets", &Bytes::from(vec![b' '; limit as usize]))]);
    body.extend(vec![b'x'; 1024]);
    let response = server.post_raw_update(&repo.gun, &content_type, body).await;
    let error = assert_refused(response, 413, "SIZE_EXCEEDED").await;
    assert!(error["detail"].as_str().unwrap().contains("bytes"));
    server.assert_unchanged(&repo.gun, &before).await;
    still_publishable(&server, &mut repo).await;
}

#[tokio::test]
async fn sz_01_a_chunked_body_is_cut_off_at_the_limit() {
    let server = TestServer::with(|c| {
        c.plain_http = true;
        c.max_body_bytes = 64 * 1024;
    })
    .await;
    let gun = "example.com/sz01/chunked";
    TestRepo::init(&server, gun, true).await;
    let before = server.trust_state(gun, &[]).await;
    let mut request = format!(
        "POST /v2/{gun}/_trust/tuf/ HTTP/1.1\r\nHost: localhost\r\nContent-Type: multipart/form-data; boundary=b\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    let chunk = format!(
        "--b\r\nContent-Disposition: form-data; name=\"files\"; filename=\"targets\"\r\n\r\n{}",
        " ".repeat(8000)
    );
    for _ in 0..32 {
        request.extend(format!("{:x}\r\n{chunk}\r\n", chunk.len()).as_bytes());
    }
    request.extend(b"0\r\n\r\n");
    let (status, body) = raw_http(server.addr(), &request).await;
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("SIZE_EXCEEDED"), "{body}");
    server.assert_unchanged(gun, &before).await;
}

#[tokio::test]
async fn sz_03_thousands_of_parts_are_refused() {
    let server = TestServer::start().await;
    let mut repo = setup(&server, "example.com/sz03/app").await;
    let before = server.trust_state(&repo.gun, &[]).await;
    let filler = Bytes::from_static(b"{}");
    let names: Vec<String> = (0..10_000).map(|i| format!("targets/a{i}")).collect();
    let parts: Vec<(&str, &Bytes)> = names.iter().map(|n| (n.as_str(), &filler)).collect();
    let error = assert_refused(server.publish(&repo.gun, &parts).await, 400, "MALFORMED_UPLOAD").await;
    assert!(error["detail"].as_str().unwrap().contains("parts"), "{error}");
    server.assert_unchanged(&repo.gun, &before).await;
    still_publishable(&server, &mut repo).await;
}

// --- 5.8 Multipart ---------------------------------------------------------------------------------

#[tokio::test]
async fn mp_01_bodies_that_are_not_multipart() {
    let server = TestServer::start().await;
    let mut repo = setup(&server, "example.com/mp01/app").await;
    let before = server.trust_state(&repo.gun, &[]).await;
    let json_body = repo.published["targets"].to_vec();
    for content_type in ["application/json", "multipart/form-data", "text/plain", ""] {
        let response = server.post_raw_update(&repo.gun, content_type, json_body.clone()).await;
        assert_refused(response, 400, "MALFORMED_UPLOAD").await;
    }
    server.assert_unchanged(&repo.gun, &before).await;
    still_publishable(&server, &mut repo).await;
}

#[tokio::test]
async fn mp_02_a_truncated_body_applies_nothing() {
    let server = TestServer::start().await;
    let mut repo = setup(&server, "example.com/mp02/app").await;
    let root = repo.next_root();
    let targets = repo.next_targets(json!({ "t": target(b"t") }), no_delegations());
    let snapshot = repo.next_snapshot(&[part("root", &root), part("targets", &targets)]).unwrap();
    let (content_type, body) = multipart(&[("root", &root), ("targets", &targets), ("snapshot", &snapshot)]);
    let before = server.trust_state(&repo.gun, &[]).await;
    for cut in [body.len() - 10, body.len() - 4 - snapshot.len() / 2] {
        let response = server.post_raw_update(&repo.gun, &content_type, body[..cut].to_vec()).await;
        assert_refused(response, 400, "MALFORMED_UPLOAD").await;
    }
    // A garbled closing delimiter.
    let mut garbled = body.clone();
    let len = garbled.len();
    garbled[len - 4] = b'x';
    assert_refused(server.post_raw_update(&repo.gun, &content_type, garbled).await, 400, "MALFORMED_UPLOAD").await;
    server.assert_unchanged(&repo.gun, &before).await;
    still_publishable(&server, &mut repo).await;
}

#[tokio::test]
async fn mp_03_missing_and_invalid_file_names() {
    let server = TestServer::start().await;
    let mut repo = setup(&server, "example.com/mp03/app").await;
    let before = server.trust_state(&repo.gun, &[]).await;
    let targets = repo.published["targets"].clone();
    let no_name = format!(
        "--b\r\nContent-Disposition: form-data; name=\"files\"\r\n\r\n{}\r\n--b--\r\n",
        String::from_utf8_lossy(&targets)
    );
    let response = server.post_raw_update(&repo.gun, "multipart/form-data; boundary=b", no_name.into_bytes()).await;
    assert_refused(response, 400, "NO_FILENAME").await;
    for (name, code) in [(".json", "NO_FILENAME"), ("foo", "INVALID_ROLE"), ("foo/targets", "INVALID_ROLE")] {
        let error = assert_refused(server.publish(&repo.gun, &[(name, &targets)]).await, 400, code).await;
        if code == "INVALID_ROLE" {
            assert_eq!(error["detail"], name);
        }
    }
    server.assert_unchanged(&repo.gun, &before).await;
    still_publishable(&server, &mut repo).await;
}

#[tokio::test]
async fn mp_04_a_role_sent_twice_is_refused() {
    let server = TestServer::start().await;
    let mut repo = setup(&server, "example.com/mp04/app").await;
    let good = repo.next_targets(json!({ "good": target(b"g") }), no_delegations());
    repo.targets_version -= 1;
    let other = repo.next_targets(json!({ "other": target(b"o") }), no_delegations());
    let snapshot = repo.next_snapshot(&[part("targets", &good)]).unwrap();
    let before = server.trust_state(&repo.gun, &[]).await;
    for (first, second) in [(&good, &other), (&good, &good)] {
        let response =
            server.publish(&repo.gun, &[("targets", first), ("targets.json", second), ("snapshot", &snapshot)]).await;
        let error = assert_refused(response, 400, "MALFORMED_UPLOAD").await;
        assert!(error["detail"].as_str().unwrap().contains("twice"), "{error}");
    }
    server.assert_unchanged(&repo.gun, &before).await;
    still_publishable(&server, &mut repo).await;
}

// --- 5.13 Role names ----------------------------------------------------------------------------

#[tokio::test]
async fn rn_01_and_rn_02_role_names_with_traversal_or_bad_characters() {
    let server = TestServer::start().await;
    let mut repo = setup(&server, "example.com/rn01/app").await;
    let before = server.trust_state(&repo.gun, &[]).await;
    let file = repo.published["targets"].clone();
    for name in [
        "targets/../root",
        "targets/./x",
        "targets//x",
        "targets/",
        "/targets/x",
        "targets/x/",
        "targets/Releases",
        "targets/rel ease",
        "targets/rél",
        "targets/a;b",
        "targets/a%00",
        "targets/a\\b",
        "targets/*",
        "targets/a/*",
        "snapshot.key",
        "root.json.json",
        "timestamp/x",
        "root/x",
        "mirrors",
        "targets.",
    ] {
        let error = assert_refused(server.publish(&repo.gun, &[(name, &file)]).await, 400, "INVALID_ROLE").await;
        assert!(error["detail"].is_string(), "{name}: {error}");
    }
    let long = format!("targets/{}", "a".repeat(250));
    assert_refused(server.publish(&repo.gun, &[(long.as_str(), &file)]).await, 400, "INVALID_ROLE").await;
    server.assert_unchanged(&repo.gun, &before).await;
    still_publishable(&server, &mut repo).await;
}

#[tokio::test]
async fn rn_05_gets_with_traversal_never_reach_another_role() {
    let server = plain_server().await;
    let repo = TestRepo::init(&server, "example.com/rn05/app", true).await;
    let gun = &repo.gun;
    for path in ["targets/../root.json", "targets%2F..%2Froot.json", "targets/releases/..json", "./root.json"] {
        let (status, body) = raw(&server, "GET", &format!("/v2/{gun}/_trust/tuf/{path}")).await;
        assert_eq!(status, 404, "{path}: {body}");
    }
    let (status, _) = raw(&server, "GET", &format!("/v2/{gun}/_trust/tuf/root.json")).await;
    assert_eq!(status, 200, "the same request without traversal is served");
}

// --- 5.14 GUNs ----------------------------------------------------------------------------------

/// Sends `method path` over a plain-HTTP server, byte for byte.
async fn raw(server: &TestServer, method: &str, path: &str) -> (u16, String) {
    let body = "--b--\r\n";
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    raw_http(server.addr(), request.as_bytes()).await
}

async fn plain_server() -> TestServer {
    TestServer::with(|c| c.plain_http = true).await
}

#[tokio::test]
async fn gn_01_to_gn_03_traversal_encodings_and_aliases_are_invalid_guns() {
    let server = plain_server().await;
    let repo = TestRepo::init(&server, "docker.io/acme/app", true).await;
    let before = server.trust_state(&repo.gun, &[]).await;
    for gun in [
        "docker.io/acme/../../etc",
        "docker.io/acme/./app",
        "docker.io/acme/%2e%2e%2fetc",
        "docker.io/acme/%2E%2E/etc",
        "docker.io/acme/..%2fetc",
        "docker.io/acme/%252e%252e/etc",
        "docker.io/acme%2fapp",
        "docker.io//acme/app",
        "docker.io/acme/app/",
        "/docker.io/acme/app",
        "Docker.io/Acme/App",
        "docker.io/acme/app.",
        "docker.io/acme/app:latest",
        "docker.io/acme/a%00b",
        "docker.io/acme/a%0d%0ab",
        "docker.io/acme/a%20b",
        "docker.io/%D0%B0cme/app",
    ] {
        let (status, body) = raw(&server, "POST", &format!("/v2/{gun}/_trust/tuf/")).await;
        assert_eq!(status, 400, "POST {gun}: {body}");
        assert!(body.contains("INVALID_GUN"), "POST {gun}: {body}");
        for file in ["root.json", "timestamp.key", "1.root.json"] {
            let (status, body) = raw(&server, "GET", &format!("/v2/{gun}/_trust/tuf/{file}")).await;
            assert_eq!(status, 404, "GET {gun}/{file}: {body}");
        }
        let (status, _) = raw(&server, "DELETE", &format!("/v2/{gun}/_trust/tuf/")).await;
        assert!(status == 400 || status == 404, "DELETE {gun}: {status}");
    }
    let long = format!("docker.io/{}", "a".repeat(250));
    let (status, _) = raw(&server, "POST", &format!("/v2/{long}/_trust/tuf/")).await;
    assert_eq!(status, 400);
    server.assert_unchanged(&repo.gun, &before).await;
}

#[tokio::test]
async fn gn_04_prefix_allow_lists_match_on_segments_after_validation() {
    let server = TestServer::with(|c| {
        c.plain_http = true;
        c.gun_prefixes = vec!["docker.io/acme/".into()];
    })
    .await;
    for gun in ["docker.io/acme/../evil/x", "docker.io/acmeevil/x", "docker.io/acme"] {
        let (status, body) = raw(&server, "POST", &format!("/v2/{gun}/_trust/tuf/")).await;
        assert_eq!(status, 400, "{gun}: {body}");
        assert!(body.contains("INVALID_GUN"), "{gun}: {body}");
    }
    TestRepo::init(&server, "docker.io/acme/app", true).await;
}

// --- Robustness -----------------------------------------------------------------------------------

/// xorshift64*: deterministic mutations without a dependency.
struct Mutator(u64);

impl Mutator {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn mutate(&mut self, input: &[u8]) -> Vec<u8> {
        let mut out = input.to_vec();
        match self.below(5) {
            0 => {
                let i = self.below(out.len());
                out[i] ^= 1 << self.below(8);
            }
            1 => out.truncate(self.below(out.len())),
            2 => {
                let i = self.below(out.len());
                let bytes = b"{}[]\",:0\\ \x00\xff";
                let byte = bytes[self.below(bytes.len())];
                out.insert(i, byte);
            }
            3 => {
                let (a, b) = (self.below(out.len()), self.below(out.len()));
                let (a, b) = (a.min(b), a.max(b));
                let slice = out[a..b].to_vec();
                out.splice(a..a, slice);
            }
            _ => {
                let i = self.below(out.len());
                out.remove(i);
            }
        }
        out
    }
}

#[tokio::test]
async fn mutated_uploads_never_cause_a_server_error() {
    let server = TestServer::start().await;
    let mut repo = setup(&server, "example.com/mutations/app").await;
    let root = repo.next_root();
    let targets = repo.next_targets(json!({ "t": target(b"t") }), no_delegations());
    let snapshot = repo.next_snapshot(&[part("root", &root), part("targets", &targets)]).unwrap();
    let (content_type, body) = multipart(&[("root", &root), ("targets", &targets), ("snapshot", &snapshot)]);
    let mut before = server.trust_state(&repo.gun, &[]).await;
    let mut accepted = 0;
    let mut mutator = Mutator(0x5eed_1234_abcd_0001);
    for round in 0..400 {
        // Mutate one part, or the whole multipart body.
        let response = if round % 2 == 0 {
            let mutated = Bytes::from(mutator.mutate(&targets));
            server.publish(&repo.gun, &[("root", &root), ("targets", &mutated), ("snapshot", &snapshot)]).await
        } else {
            server.post_raw_update(&repo.gun, &content_type, mutator.mutate(&body)).await
        };
        let status = response.status().as_u16();
        assert!(status < 500, "round {round}: {status} {}", response.text().await.unwrap());
        if status == 200 {
            // A mutation that kept the upload valid (e.g. in insignificant whitespace) is a
            // legitimate publish: it becomes the state later refusals must keep.
            accepted += 1;
            before = server.trust_state(&repo.gun, &[]).await;
        } else {
            server.assert_unchanged(&repo.gun, &before).await;
        }
    }
    assert!(accepted < 40, "{accepted} of 400 mutated uploads were accepted");
}
