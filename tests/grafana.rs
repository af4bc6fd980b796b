//! Replays what Grafana's Graphite data source (Grafana 12, graphiteVersion 1.1) sends, and
//! checks the answers have the shapes it parses: the data source test (`constantLine(100)`),
//! dashboard queries (POST `/render` with `aliasSub(…, "(^.*$)", "\1 <refId>")` wrapping and
//! `maxDataPoints`), the metric tree (`/metrics/find` with from/until), `/functions`,
//! `/version`, tag autocompletion and `seriesByTag`.

mod common;

use common::{enc, http_post_form, now, wait_for, Server};
use serde_json::Value;

fn post_render(server: &Server, form: &[(&str, &str)]) -> Value {
    let (status, ct, body) = http_post_form(server.http, "/render", form);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert!(ct.starts_with("application/json"), "{ct}");
    serde_json::from_slice(&body).expect("JSON")
}

#[test]
fn grafana_graphite_data_source_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(dir.path(), &[]);
    let t0 = (now() / 10) * 10 - 3600;
    let mut text = String::new();
    for i in 0..360 {
        let t = t0 + 10 * i;
        text.push_str(&format!("prod.web1.nginx.requests {} {t}\n", 100 + i % 7));
        text.push_str(&format!("prod.web2.nginx.requests {} {t}\n", 200 + i % 5));
        text.push_str(&format!("cpu.usage;host=web1;dc=east {} {t}\n", 10 + i % 3));
        text.push_str(&format!("cpu.usage;host=web2;dc=west {} {t}\n", 20 + i % 3));
    }
    server.send_tcp(&text);
    wait_for(15, "data", || {
        let v = server.get_json("/render?target=prod.web2.nginx.requests&from=-2min&format=json");
        v.as_array()?.first()?["datapoints"]
            .as_array()?
            .iter()
            .any(|p| !p[0].is_null())
            .then_some(())
    });

    // "Save & test": constantLine(100) over the last hour, no stored data needed.
    let v = post_render(
        &server,
        &[
            ("target", "constantLine(100)"),
            ("from", "-1h"),
            ("until", "now"),
            ("format", "json"),
            ("maxDataPoints", "300"),
        ],
    );
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["target"], "100.0");
    assert!(v[0]["datapoints"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p[0] == 100.0));

    // Version detection.
    let (_, _, body) = server.get("/version");
    let version = String::from_utf8(body).unwrap();
    assert!(version.trim().starts_with("1.1"), "{version}");

    // A dashboard panel with two queries, as Grafana 12 wraps them to read the refId back.
    let a = r#"aliasSub(sumSeries(prod.*.nginx.requests), "(^.*$)", "\1 A")"#;
    let b = r#"aliasSub(aliasByNode(prod.*.nginx.requests, 1), "(^.*$)", "\1 B")"#;
    let v = post_render(
        &server,
        &[
            ("target", a),
            ("target", b),
            ("from", "-6h"),
            ("until", "now"),
            ("format", "json"),
            ("maxDataPoints", "120"),
        ],
    );
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["target"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        vec!["sumSeries(prod.*.nginx.requests) A", "web1 B", "web2 B"]
    );
    for s in v.as_array().unwrap() {
        let dp = s["datapoints"].as_array().unwrap();
        assert!(dp.len() <= 121, "maxDataPoints honoured: {}", dp.len());
        assert!(dp
            .iter()
            .all(|p| p.as_array().unwrap().len() == 2 && p[1].is_i64()));
        assert!(s["tags"].is_object());
    }
    // Absolute ranges come as epoch seconds.
    let v = post_render(
        &server,
        &[
            ("target", "prod.web1.nginx.requests"),
            ("from", &(t0 - 1).to_string()),
            ("until", &(t0 + 600).to_string()),
            ("format", "json"),
            ("maxDataPoints", "1000"),
        ],
    );
    assert_eq!(v[0]["datapoints"][0], serde_json::json!([100.0, t0]));

    // The metric tree in the query editor.
    let (f, u) = ((now() - 21600).to_string(), now().to_string());
    let tree = server.get_json(&format!("/metrics/find?query=*&from={f}&until={u}"));
    let roots: Vec<&str> = tree
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["text"].as_str().unwrap())
        .collect();
    assert!(roots.contains(&"prod"), "{roots:?}");
    let hosts = server.get_json(&format!("/metrics/find?query=prod.*&from={f}&until={u}"));
    for n in hosts.as_array().unwrap() {
        assert_eq!(n["expandable"], 1);
        assert_eq!(n["leaf"], 0);
        assert!(n["id"].as_str().unwrap().starts_with("prod."));
    }
    let leaves = server.get_json("/metrics/find?query=prod.web1.nginx.*");
    assert_eq!(leaves[0]["leaf"], 1);
    assert_eq!(leaves[0]["expandable"], 0);
    // A template variable query.
    let v = server.get_json(&format!("/metrics/expand?query={}", enc("prod.*")));
    assert_eq!(v["results"], serde_json::json!(["prod.web1", "prod.web2"]));

    // The function editor's catalogue.
    let (status, _, raw) = server.get("/functions");
    assert_eq!(status, 200);
    let text = String::from_utf8(raw).unwrap();
    let funcs: Value = serde_json::from_str(&text.replace(":1e9999", ":\"inf\"")).unwrap();
    for name in [
        "aliasSub",
        "sumSeries",
        "aliasByNode",
        "seriesByTag",
        "movingAverage",
        "groupByTags",
        "highestCurrent",
    ] {
        let f = &funcs[name];
        assert!(
            f["params"].is_array() && f["group"].is_string() && f["description"].is_string(),
            "{name}"
        );
    }

    // Tag autocompletion and seriesByTag.
    let tags = server.get_json("/tags/autoComplete/tags?tagPrefix=&limit=100");
    assert_eq!(tags, serde_json::json!(["dc", "host", "name"]));
    let tags = server.get_json(&format!(
        "/tags/autoComplete/tags?expr={}&limit=100",
        enc("name=cpu.usage")
    ));
    assert_eq!(tags, serde_json::json!(["dc", "host"]));
    let values = server.get_json(&format!(
        "/tags/autoComplete/values?expr={}&tag=host&valuePrefix=web&limit=100",
        enc("dc=east")
    ));
    assert_eq!(values, serde_json::json!(["web1"]));
    let values = server.get_json("/tags/autoComplete/values?tag=dc");
    assert_eq!(values, serde_json::json!(["east", "west"]));
    let found = server.get_json(&format!(
        "/tags/findSeries?expr={}&expr={}",
        enc("name=cpu.usage"),
        enc("host=~web.*")
    ));
    assert_eq!(
        found,
        serde_json::json!(["cpu.usage;dc=east;host=web1", "cpu.usage;dc=west;host=web2"])
    );
    let v = server.get_json("/tags");
    assert_eq!(v[0]["tag"], "dc");
    let v = server.get_json("/tags/host");
    assert_eq!(
        v["values"][1],
        serde_json::json!({"id": 2, "value": "web2", "count": 1})
    );
    let q = r#"aliasSub(seriesByTag('name=cpu.usage', 'dc=west'), "(^.*$)", "\1 C")"#;
    let v = post_render(
        &server,
        &[
            ("target", q),
            ("from", "-1h"),
            ("until", "now"),
            ("format", "json"),
            ("maxDataPoints", "100"),
        ],
    );
    assert_eq!(v[0]["target"], "cpu.usage;dc=west;host=web2 C");
    assert_eq!(v[0]["tags"]["host"], "web2");
    let v = post_render(
        &server,
        &[
            (
                "target",
                "groupByTags(seriesByTag('name=cpu.usage'), 'sum', 'dc')",
            ),
            ("from", "-1h"),
            ("format", "json"),
        ],
    );
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["target"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["cpu.usage;dc=east", "cpu.usage;dc=west"]);
    let (status, _, body) = server.get("/tags/autoComplete/values");
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("no tag specified"));
}
