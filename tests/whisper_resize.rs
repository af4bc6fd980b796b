//! `carbonhound whisper resize` against the real `whisper-resize` (Debian python3-whisper) on
//! random files: the same file resized by both gives the same header and the same values in
//! every archive (read by whisper.py), the same output lines, and the same `.bak` / `--newfile`
//! handling. Both tools read the clock once; a case whose two runs straddled a second is run
//! again, so they always resize against the same `now`.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

const PYTHON: &str = "/usr/bin/python3";
const WHISPER_RESIZE: &str = "/usr/bin/whisper-resize";

fn support() -> String {
    format!(
        "{}/tests/support/whisper_resize_case.py",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn python(args: &[&str]) -> String {
    let out = Command::new(PYTHON)
        .arg(support())
        .args(args)
        .output()
        .expect("/usr/bin/python3 is required (apt-get install python3-whisper)");
    assert!(
        out.status.success(),
        "whisper_resize_case.py {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Both files of a comparison are read at the same `now` (epoch seconds).
fn read(path: &Path, now: u64) -> Value {
    serde_json::from_str(&python(&["read", path.to_str().unwrap(), &now.to_string()])).unwrap()
}

fn second() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("run");
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Resizes a copy of `original` with each tool (same extra arguments) within one second;
/// returns (python's output, ours, python's file, our file).
fn resize_both(
    dir: &Path,
    original: &Path,
    retentions: &[String],
    extra: &[&str],
    newfile: bool,
) -> (String, String, std::path::PathBuf, std::path::PathBuf) {
    for _ in 0..10 {
        let py = dir.join("py.wsp");
        let ours = dir.join("ours.wsp");
        for p in [&py, &ours] {
            for suffix in ["", ".bak", ".tmp", ".new"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", p.display()));
            }
            std::fs::copy(original, p).unwrap();
        }
        let target = |p: &Path| format!("{}.new", p.display());
        let start = second();
        let mut py_cmd = Command::new(PYTHON);
        py_cmd
            .arg(WHISPER_RESIZE)
            .arg(&py)
            .args(retentions)
            .args(extra);
        let mut our_cmd = Command::new(env!("CARGO_BIN_EXE_carbonhound"));
        our_cmd
            .args(["whisper", "resize"])
            .arg(&ours)
            .args(retentions)
            .args(extra);
        if newfile {
            py_cmd.arg("--newfile").arg(target(&py));
            our_cmd.arg("--newfile").arg(target(&ours));
        }
        let py_out = run(&mut py_cmd);
        let our_out = run(&mut our_cmd);
        if second() != start {
            continue; // the two tools may have seen different clocks: again
        }
        let (py_file, our_file) = if newfile {
            (target(&py).into(), target(&ours).into())
        } else {
            (py.clone(), ours.clone())
        };
        let text = |o: &Output, p: &Path| {
            String::from_utf8_lossy(&o.stdout).replace(p.to_str().unwrap(), "FILE")
        };
        return (text(&py_out, &py), text(&our_out, &ours), py_file, our_file);
    }
    panic!("could not run both tools within one second in 10 tries");
}

#[test]
fn resize_matches_whisper_resize_on_random_files() {
    assert!(
        Path::new(WHISPER_RESIZE).exists(),
        "{WHISPER_RESIZE} is required: apt-get install python3-whisper"
    );
    let dir = tempfile::tempdir().unwrap();
    let mut compared = 0;
    for seed in 0..16u64 {
        let original = dir.path().join(format!("case{seed}.wsp"));
        let made: Value = serde_json::from_str(&python(&[
            "make",
            &seed.to_string(),
            original.to_str().unwrap(),
        ]))
        .unwrap();
        let retentions: Vec<String> = made["retentions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap().to_string())
            .collect();
        let extra: &[&str] = match seed % 4 {
            0 => &[],
            1 => &["--xFilesFactor", "0.25"],
            2 => &["--aggregationMethod", "max", "--nobackup"],
            _ => &["--force"],
        };
        let newfile = seed % 5 == 3;
        let (py_text, our_text, py_file, our_file) =
            resize_both(dir.path(), &original, &retentions, extra, newfile);
        assert_eq!(our_text, py_text, "seed {seed}: output lines");
        let at = second();
        let (py_read, our_read) = (read(&py_file, at), read(&our_file, at));
        assert_eq!(our_read, py_read, "seed {seed} {retentions:?} {extra:?}");
        let bak = |p: &Path| Path::new(&format!("{}.bak", p.display())).exists();
        let (py_base, our_base) = (dir.path().join("py.wsp"), dir.path().join("ours.wsp"));
        assert_eq!(
            bak(&our_base),
            bak(&py_base),
            "seed {seed}: .bak kept or not"
        );
        if newfile {
            // The original stays untouched beside the new file.
            assert_eq!(read(&our_base, at), read(&original, at));
        }
        let kept = our_read["archives"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|a| a["values"].as_array().unwrap().iter())
            .filter(|v| !v.is_null())
            .count();
        assert!(kept > 0, "seed {seed}: some points carried over");
        compared += 1;
    }
    assert_eq!(compared, 16);
}

/// `--aggregate` (which the Python tool cannot run under Python 3): each new archive holds,
/// per step, the aggregate of the old points in it when enough of them are known.
#[test]
fn resize_with_aggregate_aggregates_into_the_new_steps() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.wsp");
    let now = second() as i64;
    let now_aligned = now - now % 60;
    let script = format!(
        "import whisper\n\
         whisper.create({p:?}, [(10, 360)], xFilesFactor=0.5, aggregationMethod='sum')\n\
         whisper.update_many({p:?}, [({t} - 10 * i, 1.0) for i in range(1, 300)])\n",
        p = path.to_str().unwrap(),
        t = now_aligned
    );
    run(Command::new(PYTHON).args(["-c", &script]));
    run(Command::new(env!("CARGO_BIN_EXE_carbonhound"))
        .args(["whisper", "resize"])
        .arg(&path)
        .args(["60:60", "--aggregate", "--nobackup"]));
    let v = read(&path, second());
    let a = &v["archives"][0];
    assert_eq!(a["secondsPerPoint"], 60);
    let values: Vec<f64> = a["values"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .map(|s| s.parse().unwrap())
        .collect();
    // Six 10-second points of 1.0 in each full minute, summed.
    assert!(
        values.iter().filter(|&&x| x == 6.0).count() >= 40,
        "{values:?}"
    );
    assert!(values.iter().all(|&x| x <= 6.0), "{values:?}");
    assert!(!Path::new(&format!("{}.bak", path.display())).exists());
}
