//! carbon's storage rules: `storage-schemas.conf` picks each new metric's retentions,
//! `storage-aggregation.conf` its xFilesFactor and aggregationMethod. First matching section
//! wins (its `pattern` is a regular expression searched in the metric name, as carbon's
//! `re.search`); `match-all = true` matches everything; when nothing matches, carbon's own
//! defaults apply (`60:10080` i.e. one week of minutes; xFilesFactor 0.5, `average`).

use std::path::Path;

use regex::Regex;

use super::ini;
use crate::whisper::{parse_retentions, AggregationMethod, Retention};

/// The storage-schemas.conf used when the settings name none.
///
/// Decision: carbon ships `60s:1d` for everything, which cannot fill the 7-day graphs of the
/// status pages nor show collectd's 10-second points. carbonhound's default keeps 10 s points
/// for 6 hours, minutes for a week and 10-minute points for a year (759 KiB a metric), and
/// carbon's own `carbon.*` rule for the self metrics.
pub const DEFAULT_SCHEMAS: &str = "\
# carbonhound's embedded storage-schemas.conf (carbon syntax; first match wins)
[carbon]
pattern = ^carbon\\.
retentions = 60:90d

[default]
pattern = .*
retentions = 10s:6h,1m:7d,10m:1y
";

/// The storage-aggregation.conf used when the settings name none: carbon's example file.
pub const DEFAULT_AGGREGATION: &str = "\
# carbonhound's embedded storage-aggregation.conf (carbon's example rules)
[min]
pattern = \\.lower$
xFilesFactor = 0.1
aggregationMethod = min

[max]
pattern = \\.upper(_\\d+)?$
xFilesFactor = 0.1
aggregationMethod = max

[sum]
pattern = \\.sum$
xFilesFactor = 0
aggregationMethod = sum

[count]
pattern = \\.count$
xFilesFactor = 0
aggregationMethod = sum

[count_legacy]
pattern = ^stats_counts.*
xFilesFactor = 0
aggregationMethod = sum

[default_average]
pattern = .*
xFilesFactor = 0.5
aggregationMethod = average
";

/// carbon's retention for metrics no rule matches: one week of minutes.
pub const CARBON_DEFAULT_RETENTION: Retention = Retention {
    seconds_per_point: 60,
    points: 10080,
};

/// A rule file that could not be used: the file, the 1-based line, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaError {
    /// The file, or `<embedded>`.
    pub path: String,
    /// 1-based line of the offending item.
    pub line: usize,
    /// What was wrong.
    pub message: String,
}

impl std::fmt::Display for SchemaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.path, self.line, self.message)
    }
}

impl std::error::Error for SchemaError {}

#[derive(Debug, Clone)]
enum Matcher {
    All,
    Pattern(Regex),
}

impl Matcher {
    fn matches(&self, metric: &str) -> bool {
        match self {
            Matcher::All => true,
            Matcher::Pattern(re) => re.is_match(metric),
        }
    }
}

/// One `[section]` of storage-schemas.conf.
#[derive(Debug, Clone)]
pub struct SchemaRule {
    /// The section name.
    pub name: String,
    matcher: Matcher,
    /// The archives, highest precision first, validated as whisper validates them.
    pub retentions: Vec<Retention>,
}

/// One `[section]` of storage-aggregation.conf; `None` fields fall back to whisper's defaults.
#[derive(Debug, Clone)]
pub struct AggregationRule {
    /// The section name.
    pub name: String,
    matcher: Matcher,
    /// xFilesFactor, 0..=1.
    pub x_files_factor: Option<f32>,
    /// aggregationMethod.
    pub aggregation_method: Option<AggregationMethod>,
}

/// What a new metric's whisper file looks like, as the rules decide it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoragePlan {
    /// Archives, highest precision first.
    pub retentions: Vec<Retention>,
    /// xFilesFactor.
    pub x_files_factor: f32,
    /// aggregationMethod.
    pub aggregation_method: AggregationMethod,
}

/// Both rule files, ready to answer [`StorageRules::plan`] for a metric name.
#[derive(Debug, Clone)]
pub struct StorageRules {
    schemas: Vec<SchemaRule>,
    aggregation: Vec<AggregationRule>,
}

fn matcher_of(section: &ini::Section, path: &str) -> Result<Option<Matcher>, SchemaError> {
    if let Some((v, _)) = section.get("match-all") {
        if v.eq_ignore_ascii_case("true") {
            return Ok(Some(Matcher::All));
        }
    }
    match section.get("pattern") {
        Some((p, line)) => Regex::new(p).map(|re| Some(Matcher::Pattern(re))).map_err(|e| SchemaError {
            path: path.into(),
            line,
            message: format!("[{}] pattern is not a valid regular expression: {e}", section.name),
        }),
        None => Ok(None),
    }
}

fn ini_error(path: &str, e: ini::IniError) -> SchemaError {
    SchemaError {
        path: path.into(),
        line: e.line,
        message: e.message,
    }
}

/// Parses storage-schemas.conf text. `path` names it in errors.
///
/// Errors (with line): INI syntax, a section without `pattern` or `match-all`, a bad regular
/// expression, missing `retentions`, or retentions whisper refuses.
pub fn parse_schemas(text: &str, path: &str) -> Result<Vec<SchemaRule>, SchemaError> {
    let mut rules = Vec::new();
    for section in ini::parse(text).map_err(|e| ini_error(path, e))? {
        let matcher = matcher_of(&section, path)?.ok_or_else(|| SchemaError {
            path: path.into(),
            line: section.line,
            message: format!("[{}] has neither 'pattern' nor 'match-all = true'", section.name),
        })?;
        let (ret, line) = section.get("retentions").ok_or_else(|| SchemaError {
            path: path.into(),
            line: section.line,
            message: format!("[{}] has no 'retentions'", section.name),
        })?;
        let flat: String = ret.split_whitespace().collect();
        let retentions = parse_retentions(&flat).map_err(|e| SchemaError {
            path: path.into(),
            line,
            message: format!("[{}] retentions '{flat}': {e}", section.name),
        })?;
        rules.push(SchemaRule {
            name: section.name.clone(),
            matcher,
            retentions,
        });
    }
    Ok(rules)
}

/// Parses storage-aggregation.conf text. `path` names it in errors.
///
/// Errors (with line): INI syntax, a section without `pattern` or `match-all`, a bad regular
/// expression, an xFilesFactor that is not a number in 0..=1, an unknown aggregationMethod.
pub fn parse_aggregation(text: &str, path: &str) -> Result<Vec<AggregationRule>, SchemaError> {
    let mut rules = Vec::new();
    for section in ini::parse(text).map_err(|e| ini_error(path, e))? {
        let matcher = matcher_of(&section, path)?.ok_or_else(|| SchemaError {
            path: path.into(),
            line: section.line,
            message: format!("[{}] has neither 'pattern' nor 'match-all = true'", section.name),
        })?;
        let x_files_factor = match section.get("xfilesfactor") {
            None => None,
            Some((v, line)) => match v.parse::<f32>() {
                Ok(x) if (0.0..=1.0).contains(&x) => Some(x),
                _ => {
                    return Err(SchemaError {
                        path: path.into(),
                        line,
                        message: format!("[{}] xFilesFactor '{v}' is not a number between 0 and 1", section.name),
                    })
                }
            },
        };
        let aggregation_method = match section.get("aggregationmethod") {
            None => None,
            Some((v, line)) => Some(v.parse::<AggregationMethod>().map_err(|e| SchemaError {
                path: path.into(),
                line,
                message: format!("[{}] {e}", section.name),
            })?),
        };
        rules.push(AggregationRule {
            name: section.name.clone(),
            matcher,
            x_files_factor,
            aggregation_method,
        });
    }
    Ok(rules)
}

impl StorageRules {
    /// Reads both files; `None` means the embedded default for that file.
    /// Errors name the file and line (see [`parse_schemas`], [`parse_aggregation`]).
    pub fn load(schemas: Option<&Path>, aggregation: Option<&Path>) -> Result<StorageRules, SchemaError> {
        let read = |p: &Path| {
            std::fs::read_to_string(p).map_err(|e| SchemaError {
                path: p.display().to_string(),
                line: 0,
                message: format!("cannot read: {e}"),
            })
        };
        let schemas = match schemas {
            Some(p) => parse_schemas(&read(p)?, &p.display().to_string())?,
            None => parse_schemas(DEFAULT_SCHEMAS, "<embedded storage-schemas.conf>")?,
        };
        let aggregation = match aggregation {
            Some(p) => parse_aggregation(&read(p)?, &p.display().to_string())?,
            None => parse_aggregation(DEFAULT_AGGREGATION, "<embedded storage-aggregation.conf>")?,
        };
        Ok(StorageRules { schemas, aggregation })
    }

    /// The embedded defaults.
    pub fn embedded() -> StorageRules {
        Self::load(None, None).expect("embedded storage rules are valid")
    }

    /// Builds rules from already-parsed parts.
    pub fn new(schemas: Vec<SchemaRule>, aggregation: Vec<AggregationRule>) -> StorageRules {
        StorageRules { schemas, aggregation }
    }

    /// The file layout for a new metric: first matching schema (else carbon's `60:10080`),
    /// first matching aggregation rule (else xFilesFactor 0.5, `average`).
    pub fn plan(&self, metric: &str) -> StoragePlan {
        let retentions = self
            .schemas
            .iter()
            .find(|r| r.matcher.matches(metric))
            .map(|r| r.retentions.clone())
            .unwrap_or_else(|| vec![CARBON_DEFAULT_RETENTION]);
        let agg = self.aggregation.iter().find(|r| r.matcher.matches(metric));
        StoragePlan {
            retentions,
            x_files_factor: agg.and_then(|a| a.x_files_factor).unwrap_or(0.5),
            aggregation_method: agg.and_then(|a| a.aggregation_method).unwrap_or_default(),
        }
    }

    /// The name of the schema section that would match `metric`, `None` for carbon's default.
    pub fn schema_name(&self, metric: &str) -> Option<&str> {
        self.schemas.iter().find(|r| r.matcher.matches(metric)).map(|r| r.name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_match_wins_with_defaults_behind() {
        let rules = StorageRules::new(
            parse_schemas("[a]\npattern = ^bench\\.\nretentions = 10s:6h,1m:7d\n[b]\npattern = ^bench\\.x\nretentions = 60:10\n", "s").unwrap(),
            parse_aggregation("[s]\npattern = \\.sum$\nxFilesFactor = 0\naggregationMethod = sum\n", "a").unwrap(),
        );
        let p = rules.plan("bench.x.sum");
        assert_eq!(p.retentions.len(), 2);
        assert_eq!(p.retentions[0].seconds_per_point, 10);
        assert_eq!(p.x_files_factor, 0.0);
        assert_eq!(p.aggregation_method, AggregationMethod::Sum);
        let p = rules.plan("other.metric");
        assert_eq!(p.retentions, vec![CARBON_DEFAULT_RETENTION]);
        assert_eq!(p.x_files_factor, 0.5);
        assert_eq!(p.aggregation_method, AggregationMethod::Average);
    }

    #[test]
    fn embedded_rules_parse() {
        let rules = StorageRules::embedded();
        assert_eq!(rules.plan("carbon.agents.x.cache.size").retentions[0].seconds_per_point, 60);
        assert_eq!(rules.plan("collectd.h.load.load.shortterm").retentions.len(), 3);
        assert_eq!(rules.plan("a.b.count").aggregation_method, AggregationMethod::Sum);
        assert_eq!(rules.plan("a.b.lower").aggregation_method, AggregationMethod::Min);
    }

    #[test]
    fn errors_name_file_and_line() {
        let e = parse_schemas("[a]\npattern = x\nretentions = 60:10,90:100\n", "/etc/s.conf").unwrap_err();
        assert_eq!((e.path.as_str(), e.line), ("/etc/s.conf", 3));
        assert!(e.to_string().starts_with("/etc/s.conf:3: [a] retentions"), "{e}");
        let e = parse_schemas("[a]\npattern = (\nretentions = 60:10\n", "s").unwrap_err();
        assert_eq!(e.line, 2);
        let e = parse_schemas("[a]\nretentions = 60:10\n", "s").unwrap_err();
        assert_eq!(e.line, 1);
        let e = parse_aggregation("[a]\npattern = x\nxFilesFactor = 2\n", "a").unwrap_err();
        assert_eq!(e.line, 3);
        let e = parse_aggregation("[a]\npattern = x\naggregationMethod = median\n", "a").unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.message.contains("Unrecognized aggregation method: median"));
    }
}
