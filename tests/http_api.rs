//! graphite-web's HTTP contract as carbonhound serves it: render by GET and POST (query and
//! form merged), every output format, `now`, `maxDataPoints`, `noNullPoints`, `jsonp`;
//! `/metrics/find` formats, `/metrics/expand`, `/metrics/index.json`, `/functions`, `/version`;
//! and the limits, each a clear HTTP error rather than a hang.

mod common;

use common::{enc, http_post_form, now, python, wait_for, Server};

fn seeded() -> (tempfile::TempDir, Server, i64) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(dir.path(), &[]);
    // Ten-second points over the last ten minutes, with a gap.
    let t0 = (now() / 10) * 10 - 600;
    let mut text = String::new();
    for i in 0..60 {
        for (host, scale) in [("web1", 1.0), ("web2", 2.0), ("db1", 10.0)] {
            if host == "web2" && (20..25).contains(&i) {
                continue;
            }
            text.push_str(&format!(
                "servers.{host}.cpu.user {} {}\n",
                scale * i as f64,
                t0 + 10 * i
            ));
        }
    }
    server.send_tcp(&text);
    wait_for(10, "seed data", || {
        let v = server.get_json("/render?target=servers.db1.cpu.user&from=-15min&format=json");
        v.as_array()?.first()?["datapoints"]
            .as_array()?
            .iter()
            .any(|p| p[0] == 590.0)
            .then_some(())
    });
    (dir, server, t0)
}

#[test]
fn render_formats_and_parameters() {
    let (_dir, server, t0) = seeded();
    let range = format!("from={}&until={}", t0 - 1, t0 + 599);

    // json: graphite-web's shape, sorted by name, tags present.
    let v = server.get_json(&format!(
        "/render?target=servers.*.cpu.user&{range}&format=json"
    ));
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["target"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        vec![
            "servers.db1.cpu.user",
            "servers.web1.cpu.user",
            "servers.web2.cpu.user"
        ]
    );
    assert_eq!(v[0]["tags"]["name"], "servers.db1.cpu.user");
    let dp = v[1]["datapoints"].as_array().unwrap();
    assert_eq!(dp.len(), 60);
    assert_eq!(dp[0], serde_json::json!([0.0, t0]));
    assert!(v[2]["datapoints"][20][0].is_null(), "the gap is null");

    // POST form merged with the query string: both targets evaluated.
    let (status, ct, body) = http_post_form(
        server.http,
        &format!("/render?target=servers.web1.cpu.user&{range}"),
        &[("target", "servers.db1.cpu.user"), ("format", "json")],
    );
    assert_eq!((status, ct.as_str()), (200, "application/json"));
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2);

    // maxDataPoints consolidates (average by default), noNullPoints drops nulls.
    let v = server.get_json(&format!(
        "/render?target=servers.web1.cpu.user&{range}&format=json&maxDataPoints=10"
    ));
    let dp = v[0]["datapoints"].as_array().unwrap();
    assert!(dp.len() <= 11 && dp.len() >= 9, "{} points", dp.len());
    let v = server.get_json(&format!(
        "/render?target=servers.web2.cpu.user&{range}&format=json&noNullPoints=1"
    ));
    assert_eq!(v[0]["datapoints"].as_array().unwrap().len(), 55);

    // jsonp wraps.
    let (status, ct, body) = server.get(&format!(
        "/render?target=servers.web1.cpu.user&{range}&format=json&jsonp=cb"
    ));
    assert_eq!((status, ct.as_str()), (200, "text/javascript"));
    assert!(body.starts_with(b"cb([{") && body.ends_with(b"}])"));

    // raw and csv.
    let (_, _, body) = server.get(&format!(
        "/render?target=servers.web1.cpu.user&{range}&format=raw"
    ));
    let raw = String::from_utf8(body).unwrap();
    assert!(
        raw.starts_with(&format!(
            "servers.web1.cpu.user,{t0},{},10|0.0,1.0,2.0,",
            t0 + 600
        )),
        "{raw}"
    );
    let (_, ct, body) = server.get(&format!(
        "/render?target=servers.web2.cpu.user&{range}&format=csv"
    ));
    assert_eq!(ct, "text/csv");
    let csv = String::from_utf8(body).unwrap();
    let lines: Vec<&str> = csv.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 60);
    assert!(
        lines[20].ends_with(','),
        "null is an empty field: {}",
        lines[20]
    );

    // pickle: Python unpickles it into graphite-web's getInfo() dicts.
    let (_, ct, body) = server.get(&format!(
        "/render?target=servers.web1.cpu.user&{range}&format=pickle"
    ));
    assert_eq!(ct, "application/pickle");
    let path = _dir.path().join("out.pickle");
    std::fs::write(&path, body).unwrap();
    let out = python("import pickle,sys,json; d=pickle.load(open(sys.argv[1],'rb')); print(json.dumps([(s['name'], s['step'], s['values'][:3], s['pathExpression']) for s in d]))", &[path.to_str().unwrap()]);
    assert_eq!(
        out.trim(),
        "[[\"servers.web1.cpu.user\", 10, [0.0, 1.0, 2.0], \"servers.web1.cpu.user\"]]"
    );

    // svg.
    let (status, ct, body) = server.get(&format!(
        "/render?target=servers.web1.cpu.user&{range}&format=svg"
    ));
    assert_eq!((status, ct.as_str()), (200, "image/svg+xml"));
    assert!(String::from_utf8_lossy(&body).contains("<svg"));

    // A pie of literal slices (`name:value` targets) beside an evaluated one, as glyph.py's
    // PieGraph draws them: a legend entry each and percent labels.
    let (status, ct, body) = server.get(&format!(
        "/render?target=db:30&target=web:10&target=servers.web1.cpu.user&{range}&format=svg&graphType=pie"
    ));
    assert_eq!((status, ct.as_str()), (200, "image/svg+xml"));
    let svg = String::from_utf8_lossy(&body);
    for text in [
        ">db</text>",
        ">web</text>",
        ">servers.web1.cpu.user</text>",
        ">%",
    ] {
        assert!(svg.contains(text), "{text} in {svg}");
    }
    let (status, _, _) = server.get(&format!(
        "/render?target=db:lots&{range}&format=png&graphType=pie"
    ));
    assert_eq!(status, 400, "graphite-web's Invalid target");
    let (status, _, body) = server.get(&format!(
        "/render?target=servers.web1.cpu.user&{range}&format=png&yMin=10&yMax=5"
    ));
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("must be less than"));

    // `now` moves relative times: from=-5min&until=now relative to now=t0+300.
    let v = server.get_json(&format!(
        "/render?target=servers.web1.cpu.user&from=-5min&until=now&now={}&format=json",
        t0 + 300
    ));
    let dp = v[0]["datapoints"].as_array().unwrap();
    assert_eq!(dp.first().unwrap()[1].as_i64().unwrap(), t0 + 10);
    assert_eq!(dp.last().unwrap()[1].as_i64().unwrap(), t0 + 300);

    // Bad requests say what is wrong.
    for (q, needle) in [
        ("target=servers.web1.cpu.user&format=xml", "unknown format"),
        (
            "target=servers.web1.cpu.user&from=yesterdayish",
            "invalid from",
        ),
        (
            "target=servers.web1.cpu.user&from=now&until=now",
            "Invalid empty time range",
        ),
        (
            "target=nosuchfunction(a)&format=json",
            "unknown function 'nosuchfunction'",
        ),
        (
            "target=scale(servers.web1.cpu.user)&format=json",
            "Missing required parameter \"factor\"",
        ),
    ] {
        let (status, _, body) = server.get(&format!("/render?{q}"));
        assert_eq!(status, 400, "{q}");
        assert!(
            String::from_utf8_lossy(&body).contains(needle),
            "{q}: {}",
            String::from_utf8_lossy(&body)
        );
    }
}

#[test]
fn metrics_endpoints() {
    let (_dir, server, _) = seeded();
    let v = server.get_json("/metrics/find?query=servers.*");
    assert_eq!(
        v,
        server.get_json("/metrics?query=servers.*"),
        "/metrics is find, as in graphite-web"
    );
    assert_eq!(
        v[0],
        serde_json::json!({"allowChildren": 1, "expandable": 1, "id": "servers.db1", "leaf": 0, "text": "db1"})
    );
    assert_eq!(v.as_array().unwrap().len(), 3);
    let v = server.get_json("/metrics/find?query=servers.web*.cpu.*&format=completer");
    assert_eq!(
        v["metrics"][0],
        serde_json::json!({"path": "servers.web1.cpu.user", "name": "user", "is_leaf": "1"})
    );
    let v = server.get_json("/metrics/find?query=servers.*.cpu&format=nodelist&position=1");
    assert_eq!(v["nodes"], serde_json::json!(["db1", "web1", "web2"]));
    let v = server.get_json("/metrics/find?query=servers.*&wildcards=1");
    assert_eq!(v[0]["text"], "*");
    let v = server.get_json(&format!(
        "/metrics/expand?query={}&leavesOnly=1",
        enc("servers.{web1,db1}.*.*")
    ));
    assert_eq!(
        v["results"],
        serde_json::json!(["servers.db1.cpu.user", "servers.web1.cpu.user"])
    );
    let v = server.get_json("/metrics/expand?query=servers.w*&query=servers.d*&groupByExpr=1");
    assert_eq!(
        v["results"]["servers.d*"],
        serde_json::json!(["servers.db1"])
    );
    let v = server.get_json("/metrics/index.json");
    assert_eq!(
        v,
        serde_json::json!([
            "servers.db1.cpu.user",
            "servers.web1.cpu.user",
            "servers.web2.cpu.user"
        ])
    );
    let (status, _, body) = server.get("/metrics/find");
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("query"));

    let (status, ct, body) = server.get("/version");
    assert_eq!((status, ct.as_str()), (200, "text/plain"));
    assert!(body.starts_with(b"1.1."));

    // /functions is valid JSON (infinite defaults are the number 1e9999, as graphite-web's own
    // encoder and Grafana's workaround write them), with graphite-web's fields.
    let functions = |q: &str| -> serde_json::Value {
        let (status, _, raw) = server.get(q);
        assert_eq!(status, 200);
        let text = String::from_utf8(raw).unwrap();
        assert!(!text.contains("Infinity"), "no bare Infinity");
        serde_json::from_str(&text.replace(":1e9999", ":\"inf\"")).expect("valid JSON")
    };
    let v = functions("/functions");
    let sum = &v["sumSeries"];
    assert_eq!(sum["group"], "Combine");
    assert_eq!(sum["function"], "sumSeries(*seriesLists)");
    assert_eq!(
        sum["params"][0],
        serde_json::json!({"name": "seriesLists", "type": "seriesList", "required": true, "multiple": true})
    );
    let v = functions("/functions?grouped=1");
    assert!(v["Combine"]["sumSeries"].is_object());
    let (_, _, raw) = server.get("/functions/keepLastValue");
    let out = python("import json,sys; d=json.loads(sys.stdin.read() if False else sys.argv[1]); print(d['params'][1]['default'])", &[&String::from_utf8(raw).unwrap()]);
    assert_eq!(
        out.trim(),
        "inf",
        "Python's json reads the default as infinity"
    );
    let (status, _, _) = server.get("/functions/noSuchThing");
    assert_eq!(status, 404);
}

#[test]
fn limits_answer_with_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(
        dir.path(),
        &[
            ("CARBONHOUND_QUERY__MAX_TARGETS", "2"),
            ("CARBONHOUND_QUERY__MAX_SERIES_PER_TARGET", "3"),
            ("CARBONHOUND_QUERY__MAX_POINTS_PER_RESPONSE", "500"),
            ("CARBONHOUND_QUERY__MAX_EXPRESSION_DEPTH", "3"),
            ("CARBONHOUND_QUERY__MAX_BODY_BYTES", "2000"),
        ],
    );
    let t = now() - 30;
    server.send_tcp(
        &(0..5)
            .map(|i| format!("m.s{i} {i} {t}\n"))
            .collect::<String>(),
    );
    wait_for(10, "seed", || {
        let v = server.get_json("/metrics/find?query=m.*");
        (v.as_array()?.len() == 5).then_some(())
    });
    let cases = [
        (
            "/render?target=m.s0&target=m.s1&target=m.s2&format=json".to_string(),
            400,
            "at most 2",
        ),
        (
            "/render?target=m.*&format=json&from=-1min".to_string(),
            413,
            "more than 3 series",
        ),
        (
            "/render?target=m.s0&format=json&from=-7d".to_string(),
            413,
            "datapoints",
        ),
        (
            format!(
                "/render?target={}&format=json",
                enc("scale(scale(scale(scale(m.s0,1),1),1),1)")
            ),
            400,
            "nested",
        ),
    ];
    for (q, status, needle) in cases {
        let (got, _, body) = server.get(&q);
        let text = String::from_utf8_lossy(&body);
        assert_eq!(got, status, "{q}: {text}");
        assert!(text.contains(needle), "{q}: {text}");
    }
    let big: String = "x".repeat(5000);
    let (got, _, _) = http_post_form(server.http, "/render", &[("target", big.as_str())]);
    assert_eq!(got, 413, "body over query.max_body_bytes");

    // A request that runs past request_timeout is a 503.
    let dir2 = tempfile::tempdir().unwrap();
    let slow = Server::start_in(
        dir2.path(),
        &[("CARBONHOUND_QUERY__REQUEST_TIMEOUT", "1ns")],
    );
    slow.send_tcp(&format!("a.b 1 {t}\n"));
    wait_for(10, "seed", || {
        (slow.get_json("/metrics/find?query=a.*").as_array()?.len() == 1).then_some(())
    });
    let (got, _, body) = slow.get("/render?target=a.b&format=json");
    assert_eq!(got, 503, "{}", String::from_utf8_lossy(&body));
}

/// Bad render parameters get a 400 saying which parameter, never a panic or a silent default;
/// what graphite-web accepts keeps working as it does there.
#[test]
fn bad_render_parameters_are_refused_by_name() {
    let (_dir, server, t0) = seeded();
    let range = format!("from={}&until={}", t0 - 1, t0 + 599);
    let base = format!("/render?target=servers.web1.cpu.user&format=json&{range}");
    for (extra, needle) in [
        ("maxDataPoints=0", "maxDataPoints=0"),
        ("maxDataPoints=-5", "maxDataPoints=-5"),
        ("maxDataPoints=1.5", "maxDataPoints=1.5"),
        ("tz=Bogus%2FZone", "Bogus/Zone"),
        ("jsonp=%3Cscript%3Ealert(1)%3C%2Fscript%3E", "jsonp"),
        ("jsonp=alert(1)%2F%2F", "jsonp"),
    ] {
        let q = format!("{base}&{extra}");
        let (status, _, body) = server.get(&q);
        let text = String::from_utf8_lossy(&body);
        assert_eq!(status, 400, "{q}: {text}");
        assert!(text.contains(needle), "{q}: {text}");
        assert!(!text.contains("<script>"), "{q} echoed the script: {text}");
    }
    // The same jsonp refusal on other endpoints that echo it.
    let (status, _, _) = server.get("/metrics/find?query=*&jsonp=%3Cx%3E");
    assert_eq!(status, 400);

    // Accepted as graphite-web accepts them.
    let (status, _, body) = server.get(&format!("{base}&maxDataPoints=abc"));
    assert_eq!(status, 200, "non-numeric maxDataPoints is ignored");
    let all = serde_json::from_slice::<serde_json::Value>(&body).unwrap();
    let (_, _, body) = server.get(&format!("{base}&maxDataPoints=10"));
    let ten = serde_json::from_slice::<serde_json::Value>(&body).unwrap();
    assert_eq!(all[0]["datapoints"].as_array().unwrap().len(), 60);
    assert!(ten[0]["datapoints"].as_array().unwrap().len() <= 10);
    let (status, ct, body) = server.get(&format!("{base}&jsonp=jQuery1_2.cb"));
    assert_eq!(status, 200);
    assert!(ct.contains("javascript"), "{ct}");
    assert!(body.starts_with(b"jQuery1_2.cb("));
    let (status, _, _) = server.get(&format!("{base}&tz=Europe%2FParis"));
    assert_eq!(status, 200);
    // until before from: the range is swapped, as graphite-web does.
    let swapped = server.get_json(&format!(
        "/render?target=servers.web1.cpu.user&format=json&from={}&until={}",
        t0 + 599,
        t0 - 1
    ));
    assert_eq!(swapped, all);
    // An empty range is a 400 (graphite-web's assertion).
    let (status, _, _) = server.get(&format!(
        "/render?target=servers.web1.cpu.user&format=json&from={t0}&until={t0}"
    ));
    assert_eq!(status, 400);
}

/// A corrupt whisper file fails its series visibly: a render over it and good series answers
/// with the good ones and a warning header naming it; a render of it alone fails (as
/// graphite-web, when all its fetches fail); `/health` lists it.
#[test]
fn corrupt_files_are_named_not_silently_dropped() {
    let (_dir, mut server, t0) = seeded();
    let range = format!("from={}&until={}", t0 - 1, t0 + 599);
    // Flush to disk, then garble web2's header (while the server is stopped, so no cached
    // points remain), and start again on the same data.
    server.terminate();
    let file = server.whisper_dir().join("servers/web2/cpu/user.wsp");
    let mut bytes = std::fs::read(&file).unwrap_or_else(|e| {
        let listing = std::process::Command::new("find")
            .arg(&server.dir)
            .output()
            .unwrap();
        panic!(
            "{}: {e}\n{}",
            file.display(),
            String::from_utf8_lossy(&listing.stdout)
        )
    });
    bytes.truncate(20);
    std::fs::write(&file, &bytes).unwrap();
    let dir = server.dir.clone();
    drop(server);
    let server = Server::start_in(&dir, &[]);

    let q = format!(
        "/render?target={}&{range}&format=json",
        enc("sumSeries(servers.*.cpu.user)")
    );
    let resp = ureq::get(&format!("http://{}{q}", server.http))
        .call()
        .unwrap();
    assert_eq!(resp.status(), 200);
    let warning = resp
        .header("x-carbonhound-warning")
        .expect("a warning header naming the unreadable series")
        .to_string();
    assert!(
        warning.contains("1 series unreadable") && warning.contains("servers.web2.cpu.user"),
        "{warning}"
    );
    let v: serde_json::Value = serde_json::from_str(&resp.into_string().unwrap()).unwrap();
    // db1 (10 × i) + web1 (i) at the last point, i = 59.
    let last = v[0]["datapoints"].as_array().unwrap().last().unwrap()[0].as_f64();
    assert_eq!(last, Some(59.0 * 11.0));

    let (status, _, body) = server.get(&format!(
        "/render?target=servers.web2.cpu.user&{range}&format=json"
    ));
    let text = String::from_utf8_lossy(&body);
    assert_eq!(status, 500, "{text}");
    assert!(text.contains("servers.web2.cpu.user"), "{text}");

    let h = server.get_json("/health");
    assert!(h["store"]["corruptReads"].as_u64().unwrap() >= 2, "{h}");
    assert_eq!(
        h["corrupt_files"][0]["metric"], "servers.web2.cpu.user",
        "{h}"
    );
}

/// The first pixel (top left, the background) of a PNG.
fn corner_pixel(png_bytes: &[u8]) -> [u8; 3] {
    let mut reader = png::Decoder::new(png_bytes).read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size()];
    reader.next_frame(&mut buf).expect("PNG data");
    [buf[0], buf[1], buf[2]]
}

#[test]
fn graph_templates_conf_is_read_and_a_bad_one_refused() {
    let conf = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/graphTemplates.conf"
    );
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(dir.path(), &[("CARBONHOUND_QUERY__GRAPH_TEMPLATES", conf)]);
    let png_of = |q: &str| {
        let (status, ct, body) = server.get(&format!(
            "/render?target=constantLine(1)&from=-1h&width=100&height=80{q}"
        ));
        assert_eq!((status, ct.as_str()), (200, "image/png"), "{q}");
        body
    };
    assert_eq!(
        corner_pixel(&png_of("")),
        [255, 255, 255],
        "[default]: white"
    );
    assert_eq!(
        corner_pixel(&png_of("&template=noc")),
        [0, 0, 0],
        "[noc]: black"
    );
    assert_eq!(
        corner_pixel(&png_of("&template=noc&bgcolor=red")),
        [200, 0, 50],
        "a parameter wins over the template (glyph.py's red)"
    );
    assert_eq!(corner_pixel(&png_of("&template=nosuch")), [255, 255, 255]);
    drop(server);

    // A file graphite-web would fail every graph with is refused at start, by path and line.
    let bad = dir.path().join("bad.conf");
    std::fs::write(
        &bad,
        "[default]\nbackground = white\nforeground = nocolor\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_carbonhound"))
        .arg("serve")
        .current_dir(dir.path())
        .env("CARBONHOUND_HTTP__LISTEN", "127.0.0.1:0")
        .env("CARBONHOUND_CARBON__PLAINTEXT_TCP", "127.0.0.1:0")
        .env("CARBONHOUND_CARBON__PLAINTEXT_UDP", "127.0.0.1:0")
        .env("CARBONHOUND_CARBON__PICKLE_TCP", "127.0.0.1:0")
        .env("CARBONHOUND_QUERY__GRAPH_TEMPLATES", &bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{}:3: foreground: unknown color 'nocolor'",
            bad.display()
        )),
        "{stderr}"
    );
    // check-config says the same without starting anything.
    let check = std::process::Command::new(env!("CARGO_BIN_EXE_carbonhound"))
        .arg("check-config")
        .current_dir(dir.path())
        .env("CARBONHOUND_QUERY__GRAPH_TEMPLATES", &bad)
        .output()
        .unwrap();
    assert!(!check.status.success());
    let said = String::from_utf8_lossy(&check.stderr);
    assert!(said.contains(":3: foreground: unknown color"), "{said}");
}
