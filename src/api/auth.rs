//! Who may write, and who may read when `[http].protect_reads` is set: bearer tokens
//! (`[http].auth_tokens`), basic-auth users with argon2 hashes (`[[http.users]]`), the
//! loopback rule for servers with neither, and the refusal of cross-site browser writes.
//!
//! Owns the two axum middlewares: [`guard_writes`], a route layer on the write routes
//! (`POST /events/`, `/tags/tagSeries`, `/tags/tagMultiSeries`, `/tags/delSeries`), and
//! [`guard_reads`], a layer over every route that asks for credentials only with
//! `protect_reads` (graphite-web leaves reads open). Never logs a token or password, never
//! keeps a password: only argon2 PHC hashes from the settings and SHA-256 digests of
//! credentials already verified (so a dashboard sending basic auth on every request does
//! not pay an argon2 run each time).
//!
//! Answers: missing or wrong credentials → 401 with `WWW-Authenticate` (`Bearer` and/or
//! `Basic`, as configured); a write with an `Origin` whose host:port is not the request's
//! `Host` → 403 (no `Origin`, as curl sends, passes); a write to a server without
//! credentials whose `http.listen` is not loopback → 403 naming the settings to add.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::{HttpSettings, HttpUser};

/// Verified credentials remembered, at most; the set is emptied when full.
const VERIFIED_MAX: usize = 1024;
/// argon2 verifications run at once (each takes ~19 MiB and tens of ms of a core); more
/// wait, so a flood of wrong passwords cannot take every core.
const VERIFYING_MAX: usize = 2;

/// The access policy of one HTTP listener, from `[http]`.
pub struct Access {
    /// SHA-256 of each `auth_tokens` entry (compared in constant time, equal lengths).
    tokens: Vec<[u8; 32]>,
    /// `[[http.users]]`.
    users: Vec<HttpUser>,
    /// `[http].protect_reads`.
    protect_reads: bool,
    /// `http.listen` resolves to loopback addresses only.
    loopback: bool,
    /// `http.listen` as configured, for the refusal's wording.
    listen: String,
    /// SHA-256 of `name \0 password` of basic credentials argon2 accepted.
    verified: Mutex<HashSet<[u8; 32]>>,
    /// Bounds concurrent argon2 runs ([`VERIFYING_MAX`]).
    verifying: tokio::sync::Semaphore,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("tokens", &self.tokens.len())
            .field("users", &self.users.len())
            .field("protect_reads", &self.protect_reads)
            .field("loopback", &self.loopback)
            .finish()
    }
}

/// Marks a request whose credentials [`guard_reads`] already accepted, so that
/// [`guard_writes`] does not check them twice.
#[derive(Clone, Copy)]
struct Authenticated;

impl Access {
    /// The policy of `[http]`. Whether `listen` is loopback is decided here, once: an IP
    /// address is loopback or not (`0.0.0.0` and `::` are not); a host name is loopback when
    /// every address it resolves to is (an unresolvable one is not).
    pub fn from_settings(http: &HttpSettings) -> Access {
        let access = Access {
            tokens: http
                .auth_tokens
                .iter()
                .map(|t| digest(t.as_bytes()))
                .collect(),
            users: http.users.clone(),
            protect_reads: http.protect_reads,
            loopback: is_loopback(&http.listen),
            listen: http.listen.clone(),
            verified: Mutex::new(HashSet::new()),
            verifying: tokio::sync::Semaphore::new(VERIFYING_MAX),
        };
        if !access.has_credentials() && !access.loopback {
            tracing::warn!(
                "http.listen {} is not loopback and no credentials are configured: writes are \
                 refused until http.auth_tokens or [[http.users]] are set",
                access.listen
            );
        }
        access
    }

    /// No credentials, writes open, as on a loopback listener (tests, in-process callers).
    pub fn open() -> Access {
        Access {
            tokens: Vec::new(),
            users: Vec::new(),
            protect_reads: false,
            loopback: true,
            listen: "127.0.0.1".into(),
            verified: Mutex::new(HashSet::new()),
            verifying: tokio::sync::Semaphore::new(VERIFYING_MAX),
        }
    }

    fn has_credentials(&self) -> bool {
        !self.tokens.is_empty() || !self.users.is_empty()
    }

    /// Ok when `headers` carry a configured token or a user's password; otherwise the 401.
    async fn authenticate(&self, headers: &HeaderMap) -> Result<(), Response> {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().split_once(' '));
        let accepted = match given {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
                self.token_matches(token.trim())
            }
            Some((scheme, encoded)) if scheme.eq_ignore_ascii_case("basic") => {
                match decode_basic(encoded.trim()) {
                    Some((name, password)) => self.password_matches(&name, &password).await,
                    None => false,
                }
            }
            _ => false,
        };
        if accepted {
            Ok(())
        } else {
            Err(self.challenge(given.is_some()))
        }
    }

    /// Whether `token` is one of `auth_tokens`: every configured digest is compared, in
    /// constant time, so the answer's timing says nothing about which or how much matched.
    fn token_matches(&self, token: &str) -> bool {
        let given = digest(token.as_bytes());
        let mut found = subtle::Choice::from(0);
        for t in &self.tokens {
            found |= t.ct_eq(&given);
        }
        bool::from(found)
    }

    /// Whether `password` is `name`'s (argon2, on the blocking pool, at most
    /// [`VERIFYING_MAX`] at once; accepted credentials are remembered by digest).
    async fn password_matches(&self, name: &str, password: &str) -> bool {
        let Some(user) = self.users.iter().find(|u| u.name == name) else {
            return false;
        };
        let key = {
            let mut h = Sha256::new();
            h.update(name.as_bytes());
            h.update([0]);
            h.update(password.as_bytes());
            <[u8; 32]>::from(h.finalize())
        };
        if self.verified.lock().contains(&key) {
            return true;
        }
        let Ok(_permit) = self.verifying.acquire().await else {
            return false;
        };
        let hash = user.password_hash.clone();
        let password = password.to_string();
        let ok = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
            .await
            .unwrap_or(false);
        if ok {
            let mut verified = self.verified.lock();
            if verified.len() >= VERIFIED_MAX {
                verified.clear();
            }
            verified.insert(key);
        }
        ok
    }

    /// The 401: a `WWW-Authenticate` challenge for each configured scheme, and a body
    /// saying what to send.
    fn challenge(&self, sent_something: bool) -> Response {
        let mut ways = Vec::new();
        if !self.tokens.is_empty() {
            ways.push("Authorization: Bearer <token> (http.auth_tokens)");
        }
        if !self.users.is_empty() {
            ways.push("basic auth of a [[http.users]] user");
        }
        let what = if sent_something {
            "wrong credentials"
        } else {
            "credentials required"
        };
        let mut response = (
            StatusCode::UNAUTHORIZED,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("{what}: send {}\n", ways.join(" or ")),
        )
            .into_response();
        let headers = response.headers_mut();
        if !self.tokens.is_empty() {
            headers.append(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"carbonhound\""),
            );
        }
        if !self.users.is_empty() {
            headers.append(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"carbonhound\", charset=\"UTF-8\""),
            );
        }
        response
    }
}

fn forbidden(message: String) -> Response {
    (
        StatusCode::FORBIDDEN,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{message}\n"),
    )
        .into_response()
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// `name:password` from a basic-auth credential (RFC 7617: base64 of UTF-8, split at the
/// first `:`).
fn decode_basic(encoded: &str) -> Option<(String, String)> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (name, password) = text.split_once(':')?;
    Some((name.to_string(), password.to_string()))
}

/// Whether `password` matches the argon2 PHC string `hash` (its own parameters and salt).
fn verify_password(password: &str, hash: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    argon2::Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

/// An argon2id PHC string of `password` with a fresh random salt and argon2's default
/// parameters (OWASP's minimum: 19 MiB, 2 passes), for `[[http.users]] password_hash`.
pub fn hash_password(password: &str) -> Result<String, String> {
    use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
    let salt = SaltString::generate(&mut OsRng);
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("cannot hash the password: {e}"))
}

/// Whether every address `listen` (`host:port`) names is loopback; IPv4-mapped IPv6
/// addresses count as their IPv4 address.
fn is_loopback(listen: &str) -> bool {
    let loopback = |ip: IpAddr| ip.to_canonical().is_loopback();
    if let Ok(addr) = listen.parse::<SocketAddr>() {
        return loopback(addr.ip());
    }
    // RFC 6761: `localhost` and `*.localhost` are loopback by definition, whatever the
    // resolver (or a missing /etc/hosts) says.
    if let Some((host, _port)) = listen.rsplit_once(':') {
        let host = host.to_ascii_lowercase();
        if host == "localhost" || host.ends_with(".localhost") {
            return true;
        }
    }
    match listen.to_socket_addrs() {
        Ok(addrs) => {
            let addrs: Vec<SocketAddr> = addrs.collect();
            !addrs.is_empty() && addrs.iter().all(|a| loopback(a.ip()))
        }
        Err(_) => false,
    }
}

/// Why a write is cross-site, if it is: an `Origin` (which browsers send on every
/// cross-origin POST) whose host:port differs from `Host`, an opaque `Origin: null`, or,
/// without `Origin`, a browser's `Sec-Fetch-Site` other than `same-origin`/`none`.
/// Requests from scripts (curl, collectd, deploy tools) carry neither and pass.
fn cross_site(headers: &HeaderMap) -> Option<String> {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let Some(origin) = text(header::ORIGIN) else {
        return match text(http_sec_fetch_site()) {
            Some(site) if !matches!(site, "same-origin" | "none") => Some(format!(
                "cross-site write refused (Sec-Fetch-Site: {site}); post from a script or from \
                 this server's own pages"
            )),
            _ => None,
        };
    };
    let host = text(header::HOST).unwrap_or("");
    let same = origin
        .split_once("://")
        .map(|(scheme, authority)| {
            let scheme = scheme.to_ascii_lowercase();
            authority_key(authority, &scheme) == authority_key(host, &scheme)
        })
        .unwrap_or(false);
    (!same || host.is_empty()).then(|| {
        format!(
            "cross-site write refused: Origin {origin} is not this server ({host}); post from a \
             script or from this server's own pages"
        )
    })
}

fn http_sec_fetch_site() -> header::HeaderName {
    header::HeaderName::from_static("sec-fetch-site")
}

/// host:port lower-cased, with the scheme's default port left out (browsers omit it from
/// `Origin`; clients may or may not send it in `Host`).
fn authority_key(authority: &str, scheme: &str) -> String {
    let a = authority.trim().trim_end_matches('/').to_ascii_lowercase();
    let default = match scheme {
        "http" => Some(":80"),
        "https" => Some(":443"),
        _ => None,
    };
    match default.and_then(|d| a.strip_suffix(d)) {
        Some(bare) => bare.to_string(),
        None => a,
    }
}

/// The write routes' layer: refuses cross-site browser requests (403), then asks for
/// credentials when any are configured (401), or, with none, refuses writes unless
/// `http.listen` is loopback (403 naming the settings).
pub async fn guard_writes(
    State(access): State<Arc<Access>>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(why) = cross_site(request.headers()) {
        return forbidden(why);
    }
    if request.extensions().get::<Authenticated>().is_none() {
        if access.has_credentials() {
            if let Err(refusal) = access.authenticate(request.headers()).await {
                return refusal;
            }
        } else if !access.loopback {
            return forbidden(format!(
                "writes are refused: http.listen {} is not loopback and no credentials are \
                 configured; set [http] auth_tokens or add [[http.users]] (or listen on \
                 127.0.0.1)",
                access.listen
            ));
        }
    }
    next.run(request).await
}

/// The layer over every route: with `protect_reads`, asks every request for credentials
/// (401); otherwise lets everything through to the routes' own guards.
pub async fn guard_reads(
    State(access): State<Arc<Access>>,
    mut request: Request,
    next: Next,
) -> Response {
    if access.protect_reads {
        if let Err(refusal) = access.authenticate(request.headers()).await {
            return refusal;
        }
        request.extensions_mut().insert(Authenticated);
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn same_origin_and_scripts_pass_other_origins_do_not() {
        assert_eq!(cross_site(&headers(&[("host", "127.0.0.1:8080")])), None);
        let same = headers(&[("host", "Graphite:80"), ("origin", "http://graphite")]);
        assert_eq!(cross_site(&same), None);
        let same = headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:8080"),
        ]);
        assert_eq!(cross_site(&same), None);
        for origin in [
            "http://evil.example",
            "http://127.0.0.1:8081",
            "null",
            "https://127.0.0.1:8080.evil",
        ] {
            let h = headers(&[("host", "127.0.0.1:8080"), ("origin", origin)]);
            assert!(cross_site(&h).is_some(), "{origin}");
        }
        let h = headers(&[("host", "x:1"), ("sec-fetch-site", "cross-site")]);
        assert!(cross_site(&h).is_some());
    }

    #[test]
    fn loopback_is_decided_from_the_listen_address() {
        assert!(is_loopback("127.0.0.1:0"));
        assert!(is_loopback("[::1]:8080"));
        assert!(is_loopback("[::ffff:127.0.0.1]:8080"));
        assert!(is_loopback("localhost:8080"));
        assert!(!is_loopback("0.0.0.0:8080"));
        assert!(!is_loopback("[::]:8080"));
        assert!(!is_loopback("10.1.2.3:8080"));
    }

    #[test]
    fn hashes_verify_their_password_only() {
        let hash = hash_password("s3cret pass").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password("s3cret pass", &hash));
        assert!(!verify_password("s3cret", &hash));
        assert!(!verify_password("s3cret pass", "not a hash"));
        assert_eq!(
            decode_basic("dXNlcjpwYTpzcw=="),
            Some(("user".into(), "pa:ss".into()))
        );
    }
}
