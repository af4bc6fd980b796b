//! The HTTP parameter layer: any query string and body (form-encoded or not, by the first
//! byte) merge into parameters without a panic, and lookups of the parameters graphite-web
//! reads work on whatever came out.
#![no_main]
use axum::http::{header, HeaderMap, HeaderValue};
use carbonhound::api::Params;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (query, body) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let mut headers = HeaderMap::new();
    if body.first().is_some_and(|b| b % 2 == 0) {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
    }
    let query = String::from_utf8_lossy(query);
    let params = Params::from_request(Some(&query), &headers, body);
    for key in [
        "target",
        "from",
        "until",
        "format",
        "jsonp",
        "maxDataPoints",
        "tz",
    ] {
        let _ = params.get(key);
        let _ = params.all(key);
        let _ = params.has(key);
    }
});
