//! Request parameters as graphite-web reads them: the query string and a form POST body
//! merged (Django's `GET.copy().update(POST)`), so list parameters (`target`) gather from
//! both and single ones take the last value given. The body may be URL-encoded or, as a
//! graphite-web cluster front POSTs its finds and renders with `REMOTE_STORE_USE_POST`
//! (urllib3's `request(…, fields=…)`), `multipart/form-data`; Django reads both.
//!
//! One parameter is checked here for every endpoint, because every endpoint echoes it into
//! its answer: `jsonp` must be a JavaScript identifier path (`cb`, `jQuery123_4`,
//! `angular.callbacks._0`), at most 200 characters; anything else (`<script>…`, `alert(1)//`)
//! is a 400 before the handler runs. graphite-web echoes any text, which lets a page that
//! links to it run script under its origin.

use axum::http::HeaderMap;

/// The merged parameters of one request, in the order given. Also an axum extractor: a
/// handler taking `params: Params` gets the query string and form body merged (a body over
/// `query.max_body_bytes` is refused with 413 before the handler runs).
#[derive(Debug, Clone, Default)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Merges the raw query string and, for a form-encoded POST, its body.
    pub fn from_request(query: Option<&str>, headers: &HeaderMap, body: &[u8]) -> Params {
        let mut pairs: Vec<(String, String)> = Vec::new();
        if let Some(q) = query {
            pairs.extend(form_urlencoded::parse(q.as_bytes()).into_owned());
        }
        let form = headers
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.starts_with("application/x-www-form-urlencoded"))
            .unwrap_or(!body.is_empty() && !body.starts_with(b"{"));
        if form && !body.is_empty() {
            pairs.extend(form_urlencoded::parse(body).into_owned());
        }
        Params { pairs }
    }

    /// Builds parameters from pairs (tests, the alert evaluator).
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Params {
        Params { pairs }
    }

    /// The last value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Whether `key` was given at all (graphite-web's `'key' in queryParams`).
    pub fn has(&self, key: &str) -> bool {
        self.pairs.iter().any(|(k, _)| k == key)
    }

    /// Every value of `key`, in order.
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// All pairs.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }
}

/// Whether `cb` may be echoed as a JSONP callback: dot-separated JavaScript identifiers
/// (ASCII letters, digits, `_`, `$`; no leading digit), 1 to 200 characters.
pub fn is_jsonp_callback(cb: &str) -> bool {
    cb.len() <= 200
        && cb.split('.').all(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
        })
}

impl<S: Send + Sync> axum::extract::FromRequest<S> for Params {
    type Rejection = axum::response::Response;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        use axum::response::IntoResponse;
        let query = req.uri().query().map(str::to_string);
        let headers = req.headers().clone();
        let params = if is_multipart(&headers) {
            let mut params = Params::from_request(query.as_deref(), &HeaderMap::new(), b"");
            params.pairs.extend(multipart_fields(req, state).await?);
            params
        } else {
            let body = axum::body::Bytes::from_request(req, state)
                .await
                .map_err(IntoResponse::into_response)?;
            Params::from_request(query.as_deref(), &headers, &body)
        };
        if let Some(cb) = params.get("jsonp").filter(|cb| !cb.is_empty()) {
            if !is_jsonp_callback(cb) {
                // The refused text is not echoed back, not even in an error.
                return Err(super::ApiError::bad_request(
                    "invalid jsonp callback: it must be a JavaScript identifier path such as \
                     cb or jQuery123_4.done (letters, digits, _ and $, dot-separated, at most \
                     200 characters)"
                        .to_string(),
                )
                .into_response());
            }
        }
        Ok(params)
    }
}

/// Whether the body is `multipart/form-data`.
fn is_multipart(headers: &HeaderMap) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"))
}

/// The fields of a `multipart/form-data` body, in order, each as text (a field that is not
/// UTF-8, or a malformed body, is a 400; over `query.max_body_bytes` a 413).
async fn multipart_fields<S: Send + Sync>(
    req: axum::extract::Request,
    state: &S,
) -> Result<Vec<(String, String)>, axum::response::Response> {
    use axum::extract::{FromRequest, Multipart};
    use axum::response::IntoResponse;
    let mut form = Multipart::from_request(req, state)
        .await
        .map_err(IntoResponse::into_response)?;
    let mut pairs = Vec::new();
    while let Some(field) = form
        .next_field()
        .await
        .map_err(IntoResponse::into_response)?
    {
        let name = field.name().unwrap_or_default().to_string();
        let value = field.text().await.map_err(IntoResponse::into_response)?;
        pairs.push((name, value));
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonp_callbacks_are_identifier_paths() {
        for ok in ["cb", "jQuery1102_123", "angular.callbacks._0", "$", "_x.$y"] {
            assert!(is_jsonp_callback(ok), "{ok}");
        }
        for bad in [
            "<script>alert(1)</script>",
            "alert(1)//",
            "a b",
            "1cb",
            "a..b",
            ".a",
            "a.",
            "cb;x",
            "été",
            &"a".repeat(201),
        ] {
            assert!(!is_jsonp_callback(bad), "{bad}");
        }
    }

    #[tokio::test]
    async fn reads_a_multipart_form_as_urllib3_posts_it() {
        // What graphite-web's remote reader sends with REMOTE_STORE_USE_POST.
        let body = "--b0\r\nContent-Disposition: form-data; name=\"format\"\r\n\r\npickle\r\n\
                    --b0\r\nContent-Disposition: form-data; name=\"target\"\r\n\r\na.b\r\n\
                    --b0\r\nContent-Disposition: form-data; name=\"target\"\r\n\r\nsumSeries(c.*)\r\n\
                    --b0--\r\n";
        let req = axum::http::Request::builder()
            .method("POST")
            .uri("/render/?local=1&target=q.s")
            .header("content-type", "multipart/form-data; boundary=b0")
            .body(axum::body::Body::from(body))
            .unwrap();
        let p = <Params as axum::extract::FromRequest<()>>::from_request(req, &())
            .await
            .unwrap();
        assert_eq!(p.all("target"), vec!["q.s", "a.b", "sumSeries(c.*)"]);
        assert_eq!(p.get("format"), Some("pickle"));
        assert_eq!(p.get("local"), Some("1"));
        let bad = axum::http::Request::builder()
            .method("POST")
            .uri("/render/")
            .header("content-type", "multipart/form-data; boundary=b0")
            .body(axum::body::Body::from("--b0\r\ngarbage"))
            .unwrap();
        let refused = <Params as axum::extract::FromRequest<()>>::from_request(bad, &()).await;
        assert_eq!(refused.unwrap_err().status(), 400);
    }

    #[test]
    fn merges_query_and_form() {
        let mut h = HeaderMap::new();
        h.insert(
            axum::http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded".parse().unwrap(),
        );
        let p = Params::from_request(
            Some("target=a.b&from=-1h"),
            &h,
            b"target=c.d&from=-2h&maxDataPoints=100",
        );
        assert_eq!(p.all("target"), vec!["a.b", "c.d"]);
        assert_eq!(p.get("from"), Some("-2h"));
        assert!(p.has("maxDataPoints"));
        assert!(!p.has("until"));
        let p = Params::from_request(
            Some("target=sumSeries(a.%2A)%7Calias(%27x%27)"),
            &HeaderMap::new(),
            b"",
        );
        assert_eq!(p.get("target"), Some("sumSeries(a.*)|alias('x')"));
    }
}
