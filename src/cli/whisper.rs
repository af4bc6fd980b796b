//! `carbonhound whisper info|fetch|dump|create|set-aggregation`: python3-whisper's command-line
//! tools (`whisper-info.py`, `whisper-fetch.py`, `whisper-dump.py`, `whisper-create.py`,
//! `whisper-set-aggregation-method.py`), same options, same output byte for byte.
//!
//! Owns only the command line and the printing; the file format is `crate::whisper`'s. Must
//! never panic on a bad file or a closed pipe: errors go to stderr as the Python tools word
//! them (`[ERROR] …`) with exit status 1.
//!
//! Differences from the Python tools, all on error paths: where a Python tool dies with a
//! traceback (a bad retention definition in whisper-create.py, a missing file in
//! whisper-info.py, a corrupt header in whisper-dump.py) these print `[ERROR] message` and exit
//! 1; files the engine refuses as corrupt (see `crate::whisper`) are refused here too, where
//! whisper-dump.py or whisper-info.py may print what the damaged header says; usage errors are
//! clap's (exit 2, as optparse's); `set-aggregation` on a missing file does not print the help
//! text after the error; `--from`/`--until` take decimal integers only (optparse also takes
//! `0x…`); `create` with a bad method or xFilesFactor creates nothing (whisper-create.py leaves
//! an empty file).

use std::fmt::Write as _;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};

use crate::python::{format_g, format_g_prec, repr_f64};
use crate::whisper::{
    aggregate_into, create, parse_retention_def, read_archives, validate_archive_list,
    AggregationMethod, CreateOptions, Header, Preallocation, Retention, WhisperError, WhisperFile,
};

/// The `whisper` tools.
#[derive(Subcommand, Debug)]
pub enum WhisperCommand {
    /// Print a file's header, as whisper-info.py: `key: value` lines, or JSON, or one field.
    Info {
        /// The whisper file.
        file: PathBuf,
        /// Print only this field (aggregationMethod, maxRetention, xFilesFactor, archives,
        /// fileSize).
        field: Option<String>,
        /// Output results in JSON form.
        #[arg(long)]
        json: bool,
    },
    /// Print the values of a time range, as whisper-fetch.py: `timestamp<TAB>value` lines.
    Fetch {
        /// The whisper file.
        file: PathBuf,
        /// Unix epoch time of the beginning of your requested interval (default: 24 hours ago).
        #[arg(long = "from", allow_negative_numbers = true)]
        from: Option<i64>,
        /// Unix epoch time of the end of your requested interval (default: now).
        #[arg(long, allow_negative_numbers = true)]
        until: Option<i64>,
        /// Output results in JSON form.
        #[arg(long)]
        json: bool,
        /// Show human-readable timestamps (local time, as `ctime`) instead of unix times.
        #[arg(long)]
        pretty: bool,
        /// Time format to use with --pretty (strftime).
        #[arg(short = 't', long = "time-format")]
        time_format: Option<String>,
        /// Drop null values (`nulls`), zero values (`zeroes`) or both (`empty`). As
        /// whisper-fetch.py, timestamps are then counted from the start over the values kept.
        #[arg(long, value_enum)]
        drop: Option<DropFilter>,
    },
    /// Print the header and every stored slot of every archive, as whisper-dump.py.
    Dump {
        /// The whisper file.
        file: PathBuf,
        /// Show human-readable timestamps (local time, as `ctime`) instead of unix times.
        #[arg(long)]
        pretty: bool,
        /// Time format to use with --pretty (strftime).
        #[arg(short = 't', long = "time-format")]
        time_format: Option<String>,
    },
    /// Create a whisper file, as whisper-create.py: `PATH timePerPoint:timeToStore...`
    /// (e.g. `60:1440`, `15m:8`, `1h:7d`, `12h:2y`), or with --estimate only retentions.
    Create {
        /// The path, then one or more retentions (only retentions with --estimate).
        #[arg(required = true, value_name = "PATH RETENTION")]
        args: Vec<String>,
        /// Fraction of an interval's points that must be known to propagate it (0..=1).
        #[arg(long = "xFilesFactor", default_value_t = 0.5)]
        x_files_factor: f64,
        /// Function to use when aggregating values (average, sum, last, max, min, avg_zero,
        /// absmax, absmin).
        #[arg(long = "aggregationMethod", default_value = "average")]
        aggregation_method: String,
        /// Replace the file if it exists.
        #[arg(long)]
        overwrite: bool,
        /// Don't create a whisper file, estimate storage requirements based on archive
        /// definitions.
        #[arg(long)]
        estimate: bool,
        /// Create new whisper as sparse file.
        #[arg(long)]
        sparse: bool,
        /// Create new whisper and use fallocate (wins over --sparse, as in whisper-create.py).
        #[arg(long)]
        fallocate: bool,
    },
    /// Change a file's aggregation method (and xFilesFactor), as
    /// whisper-set-aggregation-method.py.
    SetAggregation {
        /// The whisper file.
        file: PathBuf,
        /// average, sum, last, max, min, avg_zero, absmax or absmin.
        method: String,
        /// New xFilesFactor (0..=1); unchanged when left out.
        x_files_factor: Option<String>,
    },
    /// Change a file's retentions, as whisper-resize.py: `PATH timePerPoint:timeToStore...`.
    /// Every stored point is carried over (lowest precision first, so the finest data wins);
    /// the old file is kept as `PATH.bak` unless --nobackup.
    Resize {
        /// The whisper file.
        path: PathBuf,
        /// The new retentions (`60:1440`, `15m:8`, `1h:7d`, `12h:2y`).
        #[arg(required = true, value_name = "RETENTION")]
        retentions: Vec<String>,
        /// Change the xFilesFactor.
        #[arg(long = "xFilesFactor")]
        x_files_factor: Option<f64>,
        /// Change the aggregation function.
        #[arg(long = "aggregationMethod")]
        aggregation_method: Option<String>,
        /// Accepted for whisper-resize.py's command line; it changes nothing there either.
        #[arg(long)]
        force: bool,
        /// Create a new database file without removing the existing one.
        #[arg(long)]
        newfile: Option<PathBuf>,
        /// Delete the .bak file after successful execution.
        #[arg(long)]
        nobackup: bool,
        /// Aggregate the old points into each new archive's step (with the xFilesFactor)
        /// instead of copying them point by point.
        #[arg(long)]
        aggregate: bool,
    },
}

/// whisper-fetch.py's `--drop` choices.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropFilter {
    /// Drop null values.
    Nulls,
    /// Drop zero values.
    Zeroes,
    /// Drop null and zero values.
    Empty,
}

impl DropFilter {
    /// whisper-fetch.py's `_DROP_FUNCTIONS`: whether a value is kept.
    fn keeps(self, v: Option<f64>) -> bool {
        match self {
            DropFilter::Nulls => v.is_some(),
            DropFilter::Zeroes => v != Some(0.0),
            DropFilter::Empty => matches!(v, Some(x) if x != 0.0),
        }
    }
}

/// Why a tool stopped.
enum Failure {
    /// A message for stderr; exit status 1.
    Error(String),
    /// Exit with this status, the output already written (whisper-info's unknown field).
    Exit(u8),
    /// Writing to stdout failed (a closed pipe, usually).
    Stdout(io::Error),
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        Failure::Stdout(e)
    }
}

type Outcome = Result<(), Failure>;

/// Runs one tool, printing to stdout/stderr; returns the process exit status (0, or 1 after an
/// error; 141 when stdout was closed early, as a Python tool killed by SIGPIPE).
pub fn run(command: WhisperCommand) -> ExitCode {
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let result = match command {
        WhisperCommand::Info { file, field, json } => info(&mut out, &file, field.as_deref(), json),
        WhisperCommand::Fetch {
            file,
            from,
            until,
            json,
            pretty,
            time_format,
            drop,
        } => fetch(
            &mut out,
            &file,
            from,
            until,
            json,
            pretty.then_some(time_format.as_deref()),
            drop,
        ),
        WhisperCommand::Dump {
            file,
            pretty,
            time_format,
        } => dump(&mut out, &file, pretty.then_some(time_format.as_deref())),
        WhisperCommand::Create {
            args,
            x_files_factor,
            aggregation_method,
            overwrite,
            estimate,
            sparse,
            fallocate,
        } => {
            if estimate {
                estimate_size(&mut out, &args)
            } else {
                let prealloc = if fallocate {
                    Preallocation::Fallocate
                } else if sparse {
                    Preallocation::Sparse
                } else {
                    Preallocation::Zero
                };
                create_file(
                    &mut out,
                    &args,
                    x_files_factor,
                    &aggregation_method,
                    overwrite,
                    prealloc,
                )
            }
        }
        WhisperCommand::SetAggregation {
            file,
            method,
            x_files_factor,
        } => set_aggregation(&mut out, &file, &method, x_files_factor.as_deref()),
        WhisperCommand::Resize {
            path,
            retentions,
            x_files_factor,
            aggregation_method,
            force: _,
            newfile,
            nobackup,
            aggregate,
        } => resize(
            &mut out,
            &path,
            &retentions,
            ResizeOptions {
                x_files_factor,
                aggregation_method: aggregation_method.as_deref(),
                newfile: newfile.as_deref(),
                nobackup,
                aggregate,
                now: now_epoch(),
            },
        ),
    };
    let flushed = out.flush().map_err(Failure::Stdout);
    match result.and(flushed) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Error(message)) => {
            let _ = writeln!(io::stderr(), "{message}");
            ExitCode::FAILURE
        }
        Err(Failure::Exit(code)) => ExitCode::from(code),
        Err(Failure::Stdout(e)) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::from(141),
        Err(Failure::Stdout(e)) => {
            let _ = writeln!(io::stderr(), "[ERROR] writing output: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `[ERROR] …` as the Python tools print a `WhisperException` or `IOError`.
fn error(e: &WhisperError) -> Failure {
    Failure::Error(format!("[ERROR] {}", py_str(e)))
}

/// `str(exc)` of the Python exception matching `e`: whisper's messages as they are, I/O
/// errors as `[Errno 2] No such file or directory: 'path'`.
fn py_str(e: &WhisperError) -> String {
    match e {
        WhisperError::Io { path, source } => match source.raw_os_error() {
            Some(code) => {
                let text = source.to_string();
                let text = text
                    .strip_suffix(&format!(" (os error {code})"))
                    .unwrap_or(&text);
                format!(
                    "[Errno {code}] {text}: {}",
                    crate::python::repr_str(&path.display().to_string())
                )
            }
            None => source.to_string(),
        },
        other => other.to_string(),
    }
}

/// The options of `whisper resize` beyond the path and retentions.
struct ResizeOptions<'a> {
    x_files_factor: Option<f64>,
    aggregation_method: Option<&'a str>,
    newfile: Option<&'a Path>,
    nobackup: bool,
    aggregate: bool,
    /// whisper-resize.py's `now`, read once at start (epoch seconds).
    now: i64,
}

fn io_failure(path: &Path, e: io::Error) -> Failure {
    error(&WhisperError::Io {
        path: path.to_path_buf(),
        source: e,
    })
}

/// whisper-resize.py: read every archive of `path` (lowest precision first, each over its
/// whole retention ending `now`), create `PATH.tmp` (or `--newfile`) with the new retentions,
/// carry the points over, then swap the files (`PATH.bak` keeps the old one). Prints the lines
/// the Python tool prints. With `--aggregate`, the points of all archives are merged (finest
/// first where archives overlap) and each new archive gets one aggregated point per step whose
/// known fraction reaches the xFilesFactor, aligned to the step and written to that archive
/// alone (`crate::whisper::aggregate_into`, shared with the server's retention migration) —
/// what whisper-resize.py's `--aggregate` sets out to do (under Python 3 that branch of the
/// script fails with a TypeError).
fn resize(out: &mut impl Write, path: &Path, defs: &[String], o: ResizeOptions<'_>) -> Outcome {
    if !path.exists() {
        return Err(Failure::Error(format!(
            "[ERROR] File '{}' does not exist!",
            path.display()
        )));
    }
    let old = WhisperFile::open(path).map_err(|e| error(&e))?;
    let header = old.header().clone();
    let mut new_archives: Vec<Retention> = defs
        .iter()
        .map(|d| parse_retention_def(d))
        .collect::<Result<_, _>>()
        .map_err(|e| error(&e))?;
    let xff = o.x_files_factor.unwrap_or(f64::from(header.x_files_factor));
    let method: AggregationMethod = match o.aggregation_method {
        Some(m) => m.parse().map_err(|e| error(&e))?,
        None => header.aggregation_method,
    };
    let now = o.now;

    writeln!(out, "Retrieving all data from the archives")?;
    // Lowest precision first, as the script sorts them.
    let data = read_archives(&old, now).map_err(|e| error(&e))?;
    drop(old);

    let tmp = PathBuf::from(format!("{}.tmp", path.display()));
    let target = match o.newfile {
        Some(p) => p.to_path_buf(),
        None => {
            if tmp.exists() {
                writeln!(
                    out,
                    "Removing previous temporary database file: {}",
                    tmp.display()
                )?;
                std::fs::remove_file(&tmp).map_err(|e| io_failure(&tmp, e))?;
            }
            tmp.clone()
        }
    };
    writeln!(out, "Creating new whisper database: {}", target.display())?;
    validate_archive_list(&mut new_archives).map_err(|e| error(&e))?;
    create_reporting(
        out,
        &target,
        &new_archives,
        xff,
        method,
        Preallocation::Zero,
    )?;

    let mut new = WhisperFile::open_rw(&target).map_err(|e| error(&e))?;
    if o.aggregate {
        writeln!(out, "Migrating data with aggregation...")?;
        aggregate_into(&data, &mut new, xff, method, now).map_err(|e| error(&e))?;
    } else {
        writeln!(out, "Migrating data without aggregation...")?;
        for fetched in data.iter().flatten() {
            let points: Vec<(i64, f64)> = fetched
                .values
                .iter()
                .enumerate()
                .filter_map(|(i, v)| v.map(|v| (fetched.from + i as i64 * fetched.step, v)))
                .collect();
            new.update_many(&points, now).map_err(|e| error(&e))?;
        }
    }
    drop(new);
    if o.newfile.is_some() {
        return Ok(());
    }
    let backup = PathBuf::from(format!("{}.bak", path.display()));
    writeln!(out, "Renaming old database to: {}", backup.display())?;
    std::fs::rename(path, &backup).map_err(|e| io_failure(path, e))?;
    writeln!(out, "Renaming new database to: {}", path.display())?;
    if let Err(e) = std::fs::rename(&tmp, path) {
        writeln!(out, "\nOperation failed, restoring backup")?;
        std::fs::rename(&backup, path).map_err(|e| io_failure(path, e))?;
        return Err(io_failure(&tmp, e));
    }
    if o.nobackup {
        writeln!(out, "Unlinking backup: {}", backup.display())?;
        std::fs::remove_file(&backup).map_err(|e| io_failure(&backup, e))?;
    }
    Ok(())
}

fn now_epoch() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A timestamp as the tools print it: the number, or with --pretty `time.ctime()` / the
/// `time.strftime()` format, in local time (the TZ variable decides, as for Python).
fn time_string(t: i64, pretty: Option<Option<&str>>) -> Result<String, Failure> {
    use chrono::format::{Item, StrftimeItems};
    use chrono::TimeZone;
    let Some(format) = pretty else {
        return Ok(t.to_string());
    };
    let Some(local) = chrono::Local.timestamp_opt(t, 0).earliest() else {
        return Err(Failure::Error(format!(
            "[ERROR] timestamp {t} out of range"
        )));
    };
    let format = format.unwrap_or("%a %b %e %H:%M:%S %Y");
    let items: Vec<Item> = StrftimeItems::new(format).collect();
    if items.iter().any(|i| matches!(i, Item::Error)) {
        return Err(Failure::Error(format!(
            "[ERROR] Invalid time format '{format}'"
        )));
    }
    let mut s = String::new();
    write!(s, "{}", local.format_with_items(items.iter()))
        .map_err(|_| Failure::Error(format!("[ERROR] Invalid time format '{format}'")))?;
    Ok(s)
}

/// whisper-info.py's `info` dict as Python prints a value of it.
fn archives_repr(header: &Header) -> String {
    let items: Vec<String> = header
        .archives
        .iter()
        .map(|a| {
            format!(
                "{{'offset': {}, 'secondsPerPoint': {}, 'points': {}, 'retention': {}, 'size': {}}}",
                a.offset,
                a.seconds_per_point,
                a.points,
                a.retention(),
                a.size()
            )
        })
        .collect();
    format!("[{}]", items.join(", "))
}

/// whisper-info.py: `key: value` lines (aggregationMethod, maxRetention, xFilesFactor,
/// fileSize), a blank line, then per archive `Archive N` and its offset, secondsPerPoint,
/// points, retention and size, each followed by a blank line; `--json` prints the same dict as
/// `json.dumps(indent=2)`; a FIELD prints just that value (Python's `str()` of it).
fn info(out: &mut impl Write, path: &Path, field: Option<&str>, json: bool) -> Outcome {
    let file = WhisperFile::open(path).map_err(|e| error(&e))?;
    let header = file.header();
    let file_size = std::fs::metadata(path)
        .map_err(|e| {
            error(&WhisperError::Io {
                path: path.to_path_buf(),
                source: e,
            })
        })?
        .len();
    let xff = repr_f64(header.x_files_factor as f64);
    if let Some(field) = field {
        let value = match field {
            "aggregationMethod" => header.aggregation_method.name().to_string(),
            "maxRetention" => header.max_retention.to_string(),
            "xFilesFactor" => xff,
            "archives" => archives_repr(header),
            "fileSize" => file_size.to_string(),
            _ => {
                writeln!(
                    out,
                    "Unknown field \"{field}\". Valid fields are aggregationMethod,maxRetention,xFilesFactor,archives,fileSize"
                )?;
                return Err(Failure::Exit(1));
            }
        };
        writeln!(out, "{value}")?;
        return Ok(());
    }
    if json {
        writeln!(out, "{{")?;
        writeln!(
            out,
            "  \"aggregationMethod\": \"{}\",",
            header.aggregation_method.name()
        )?;
        writeln!(out, "  \"maxRetention\": {},", header.max_retention)?;
        writeln!(out, "  \"xFilesFactor\": {xff},")?;
        writeln!(out, "  \"archives\": [")?;
        for (i, a) in header.archives.iter().enumerate() {
            writeln!(out, "    {{")?;
            writeln!(out, "      \"offset\": {},", a.offset)?;
            writeln!(out, "      \"secondsPerPoint\": {},", a.seconds_per_point)?;
            writeln!(out, "      \"points\": {},", a.points)?;
            writeln!(out, "      \"retention\": {},", a.retention())?;
            writeln!(out, "      \"size\": {}", a.size())?;
            let comma = if i + 1 < header.archives.len() {
                ","
            } else {
                ""
            };
            writeln!(out, "    }}{comma}")?;
        }
        writeln!(out, "  ],")?;
        writeln!(out, "  \"fileSize\": {file_size}")?;
        writeln!(out, "}}")?;
        return Ok(());
    }
    writeln!(
        out,
        "aggregationMethod: {}",
        header.aggregation_method.name()
    )?;
    writeln!(out, "maxRetention: {}", header.max_retention)?;
    writeln!(out, "xFilesFactor: {xff}")?;
    writeln!(out, "fileSize: {file_size}")?;
    writeln!(out)?;
    for (i, a) in header.archives.iter().enumerate() {
        writeln!(out, "Archive {i}")?;
        writeln!(out, "offset: {}", a.offset)?;
        writeln!(out, "secondsPerPoint: {}", a.seconds_per_point)?;
        writeln!(out, "points: {}", a.points)?;
        writeln!(out, "retention: {}", a.retention())?;
        writeln!(out, "size: {}", a.size())?;
        writeln!(out)?;
    }
    Ok(())
}

/// Python's `'%f' % x`.
fn percent_f(x: f64) -> String {
    if x.is_nan() {
        "nan".into()
    } else if x.is_infinite() {
        if x > 0.0 { "inf" } else { "-inf" }.into()
    } else {
        format!("{x:.6}")
    }
}

/// whisper-fetch.py: `whisper.fetch(path, from, until)` (from defaulting to now − 24 h, until
/// to now), then `start<TAB>value` lines (`%f`, or `None`), or with `--json` its hand-made
/// JSON (`str(values)` with `None` → `null`). `No data in selected timerange` when the range is
/// wholly outside the file's retention.
fn fetch(
    out: &mut impl Write,
    path: &Path,
    from: Option<i64>,
    until: Option<i64>,
    json: bool,
    pretty: Option<Option<&str>>,
    drop: Option<DropFilter>,
) -> Outcome {
    let now = now_epoch();
    let from = from.unwrap_or(now - 86400);
    let until = until.unwrap_or(now);
    let file = WhisperFile::open(path).map_err(|e| error(&e))?;
    let Some(result) = file
        .fetch(from, Some(until), now, None)
        .map_err(|e| error(&e))?
    else {
        return Err(Failure::Error("No data in selected timerange".into()));
    };
    let mut values = result.values;
    if let Some(d) = drop {
        values.retain(|&v| d.keeps(v));
    }
    if json {
        let items: Vec<String> = values
            .iter()
            .map(|v| match v {
                None => "null".to_string(),
                Some(x) => repr_f64(*x),
            })
            .collect();
        write!(
            out,
            "{{\n    \"start\" : {},\n    \"end\" : {},\n    \"step\" : {},\n    \"values\" : [{}]\n  }}\n",
            result.from,
            result.until,
            result.step,
            items.join(", ")
        )?;
        return Ok(());
    }
    let mut t = result.from;
    for v in values {
        let value = match v {
            None => "None".to_string(),
            Some(x) => percent_f(x),
        };
        writeln!(out, "{}\t{value}", time_string(t, pretty)?)?;
        t += result.step;
    }
    Ok(())
}

/// whisper-dump.py: `Meta data:` (aggregation method, max retention, xFilesFactor as `%g`),
/// `Archive N info:` blocks, then per archive `Archive N data:` and one `slot: timestamp,
/// %10.35g value` line per stored slot, in slot order.
fn dump(out: &mut impl Write, path: &Path, pretty: Option<Option<&str>>) -> Outcome {
    if !path.exists() {
        return Err(Failure::Error(format!(
            "[ERROR] File \"{}\" does not exist!",
            path.display()
        )));
    }
    let file = WhisperFile::open(path).map_err(|e| error(&e))?;
    let header = file.header();
    writeln!(out, "Meta data:")?;
    writeln!(
        out,
        "  aggregation method: {}",
        header.aggregation_method.name()
    )?;
    writeln!(out, "  max retention: {}", header.max_retention)?;
    writeln!(
        out,
        "  xFilesFactor: {}",
        format_g(header.x_files_factor as f64)
    )?;
    writeln!(out)?;
    for (i, a) in header.archives.iter().enumerate() {
        writeln!(out, "Archive {i} info:")?;
        writeln!(out, "  offset: {}", a.offset)?;
        writeln!(out, "  seconds per point: {}", a.seconds_per_point)?;
        writeln!(out, "  points: {}", a.points)?;
        writeln!(out, "  retention: {}", a.retention())?;
        writeln!(out, "  size: {}", a.size())?;
        writeln!(out)?;
    }
    for i in 0..header.archives.len() {
        writeln!(out, "Archive {i} data:")?;
        let slots = file
            .archive_slots(i)
            .map_err(|e| error(&e))?
            .unwrap_or_default();
        for (n, (t, v)) in slots.into_iter().enumerate() {
            let value = format_g_prec(v, 35);
            writeln!(out, "{n}: {}, {value:>10}", time_string(t as i64, pretty)?)?;
        }
    }
    Ok(())
}

/// whisper-create.py's `byte_format`.
fn byte_format(num: f64) -> String {
    let mut num = num;
    for unit in ["bytes", "KB", "MB"] {
        if num < 1024.0 {
            return format!("{num:.3}{unit}");
        }
        num /= 1024.0;
    }
    format!("{num:.3}GB")
}

/// whisper-create.py `--estimate`: the archives, the file size and the disk needed for
/// 1k…500k metrics. A single argument with a comma in it (not first) is split.
fn estimate_size(out: &mut impl Write, args: &[String]) -> Outcome {
    let args: Vec<&str> = match args {
        [one] if one.find(',').is_some_and(|i| i > 0) => one.split(',').collect(),
        _ => args.iter().map(String::as_str).collect(),
    };
    let mut archives = 0u64;
    let mut total_points = 0u64;
    for def in args {
        let r = parse_retention_def(def).map_err(|e| error(&e))?;
        writeln!(
            out,
            "Archive {archives}: {} points of {}s precision",
            r.points, r.seconds_per_point
        )?;
        archives += 1;
        total_points += r.points as u64;
    }
    let size = 16 + archives * 12 + total_points * 12;
    let disk_size = size.div_ceil(4096) * 4096;
    writeln!(
        out,
        "\nEstimated Whisper DB Size: {} ({disk_size} bytes on disk with 4k blocks)\n",
        byte_format(size as f64)
    )?;
    for x in [1u64, 5, 10, 50, 100, 500] {
        writeln!(
            out,
            "Estimated storage requirement for {x}k metrics: {}",
            byte_format((x * 1000 * disk_size) as f64)
        )?;
    }
    Ok(())
}

/// whisper-create.py: parses the retentions, removes the file first with `--overwrite`
/// (`Overwriting existing file: PATH`), creates it and prints `Created: PATH (N bytes)`.
/// Errors are checked in whisper.py's order: the archive list, an existing file, the
/// aggregation method, the xFilesFactor — all before anything is written.
fn create_file(
    out: &mut impl Write,
    args: &[String],
    xff: f64,
    method: &str,
    overwrite: bool,
    prealloc: Preallocation,
) -> Outcome {
    let [path, defs @ ..] = args else {
        return Err(Failure::Error("[ERROR] no path given".into()));
    };
    if defs.is_empty() {
        return Err(Failure::Error(
            "[ERROR] give a path and at least one retention (timePerPoint:timeToStore)".into(),
        ));
    }
    let mut archives: Vec<Retention> = defs
        .iter()
        .map(|d| parse_retention_def(d))
        .collect::<Result<_, _>>()
        .map_err(|e| error(&e))?;
    let path = Path::new(path);
    if path.exists() && overwrite {
        writeln!(out, "Overwriting existing file: {}", path.display())?;
        std::fs::remove_file(path).map_err(|e| {
            error(&WhisperError::Io {
                path: path.to_path_buf(),
                source: e,
            })
        })?;
    }
    validate_archive_list(&mut archives).map_err(|e| error(&e))?;
    if path.exists() {
        return Err(Failure::Error(format!(
            "[ERROR] File {} already exists!",
            path.display()
        )));
    }
    let method: AggregationMethod = method.parse().map_err(|e| error(&e))?;
    create_reporting(out, path, &archives, xff, method, prealloc)
}

/// Creates `path` (archives already validated) and prints `Created: PATH (N bytes)`, as
/// whisper-create.py and whisper-resize.py do; an xFilesFactor outside 0..=1 is refused first.
fn create_reporting(
    out: &mut impl Write,
    path: &Path,
    archives: &[Retention],
    xff: f64,
    method: AggregationMethod,
    preallocation: Preallocation,
) -> Outcome {
    if !(0.0..=1.0).contains(&xff) {
        return Err(Failure::Error(format!(
            "[ERROR] Invalid xFilesFactor {}, not between 0 and 1",
            repr_f64(xff)
        )));
    }
    let opts = CreateOptions {
        x_files_factor: xff as f32,
        aggregation_method: method,
        preallocation,
    };
    create(path, archives, opts).map_err(|e| error(&e))?;
    let size = std::fs::metadata(path)
        .map_err(|e| io_failure(path, e))?
        .len();
    writeln!(out, "Created: {} ({size} bytes)", path.display())?;
    Ok(())
}

/// whisper-set-aggregation-method.py: `whisper.setAggregationMethod(path, method, xff)`, then
/// `Updated aggregation method: PATH (OLD -> NEW)`. Checked in whisper.py's order: the file,
/// its header, the method, the xFilesFactor (`not a float`, `not between 0 and 1`; NaN is
/// refused, where whisper.py would write it and then refuse to read the file).
fn set_aggregation(out: &mut impl Write, path: &Path, method: &str, xff: Option<&str>) -> Outcome {
    let mut file = match WhisperFile::open_rw(path) {
        Ok(f) => f,
        Err(WhisperError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            return Err(Failure::Error(format!(
                "[ERROR] File '{}' does not exist!",
                path.display()
            )));
        }
        Err(e) => return Err(error(&e)),
    };
    let new_method: AggregationMethod = method.parse().map_err(|e| error(&e))?;
    let xff = match xff {
        None => None,
        Some(s) => {
            let x: f64 = s.trim().parse().map_err(|_| {
                Failure::Error(format!("[ERROR] Invalid xFilesFactor {s}, not a float"))
            })?;
            if !(0.0..=1.0).contains(&x) {
                return Err(Failure::Error(format!(
                    "[ERROR] Invalid xFilesFactor {}, not between 0 and 1",
                    repr_f64(x)
                )));
            }
            Some(x as f32)
        }
    };
    let (old, _) = file
        .set_aggregation(Some(new_method), xff)
        .map_err(|e| error(&e))?;
    writeln!(
        out,
        "Updated aggregation method: {} ({old} -> {method})",
        path.display()
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_rules_follow_whisper_fetch() {
        let vals = [None, Some(0.0), Some(-0.0), Some(1.0), Some(f64::NAN)];
        let kept = |d: DropFilter| vals.iter().filter(|&&v| d.keeps(v)).count();
        assert_eq!(kept(DropFilter::Nulls), 4);
        assert_eq!(kept(DropFilter::Zeroes), 3);
        assert_eq!(kept(DropFilter::Empty), 2);
    }

    #[test]
    fn python_str_of_io_errors() {
        let e = WhisperError::Io {
            path: "/no/such.wsp".into(),
            source: io::Error::from_raw_os_error(2),
        };
        assert_eq!(
            py_str(&e),
            "[Errno 2] No such file or directory: '/no/such.wsp'"
        );
        assert_eq!(crate::python::repr_str("it's"), "\"it's\"");
    }

    #[test]
    fn byte_format_follows_whisper_create() {
        assert_eq!(byte_format(100.0), "100.000bytes");
        assert_eq!(byte_format(17320.0), "16.914KB");
        assert_eq!(byte_format(5.0 * 1024.0 * 1024.0 * 1024.0), "5.000GB");
    }
}
