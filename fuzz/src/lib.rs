//! A small mutation fuzzer (stable Rust, no sanitizers needed): seeds of valid and invalid
//! inputs are mutated at random and fed to the YAML configuration reader, the plugin's
//! key/value configuration and the payload conversion. Beyond "no panic", it checks
//! properties: a converted row encodes to valid JSON with one value per column, and to CSV
//! with one field per column.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use adx_destination::config::{DestinationConfig, StreamFormat};
use adx_destination::convert::RowConverter;
use adx_destination::encode::RowEncoder;
use adx_destination::message::Message;
use adx_destination::payload::parse_object;
use adx_destination::scan::{scan_object, WantedKeys};
use dataflow_runtime::config::Deployment;
use local_adx::formats::parse_csv;

/// SplitMix64: fast, seedable, good enough to drive mutations.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

const TOKENS: &[&str] = &[
    "\"",
    "{",
    "}",
    "[",
    "]",
    ":",
    ",",
    "\n",
    "-",
    "<x>",
    "$.",
    "$metadata.",
    "$const:",
    "\\u0000",
    "\\\"",
    "NaN",
    "1e999",
    "-0",
    "9223372036854775808",
    "2026-02-30",
    "T25:",
    "+99:99",
    "P1DT",
    "é",
    "\u{1F600}",
    "null",
    "true",
    "    ",
    "---\n",
    "&a",
    "*a",
    "!!binary",
    "~",
    "0x1F",
];

pub fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut data = seeds[rng.below(seeds.len())].clone();
    for _ in 0..1 + rng.below(8) {
        let at = rng.below(data.len() + 1);
        match rng.below(6) {
            0 if !data.is_empty() => {
                let i = rng.below(data.len());
                data[i] ^= 1 << rng.below(8);
            }
            1 => data.insert(at, rng.next_u64() as u8),
            2 if !data.is_empty() => {
                let end = (at + 1 + rng.below(16)).min(data.len());
                data.drain(at.min(end)..end);
            }
            3 => {
                let token = TOKENS[rng.below(TOKENS.len())].as_bytes();
                data.splice(at..at, token.iter().copied());
            }
            4 if !data.is_empty() => {
                let start = rng.below(data.len());
                let end = (start + 1 + rng.below(32)).min(data.len());
                let copy = data[start..end].to_vec();
                data.splice(at..at, copy);
            }
            _ => {
                let other = &seeds[rng.below(seeds.len())];
                if !other.is_empty() {
                    let start = rng.below(other.len());
                    let end = (start + 1 + rng.below(64)).min(other.len());
                    data.splice(at..at, other[start..end].iter().copied());
                }
            }
        }
    }
    data
}

pub const SCHEMA: &str = ".create table t (s: string, r: real, i: int, l: long, b: bool, d: datetime, ts: timespan, g: guid, dec: decimal, dyn: dynamic, deep: real, topic: string)";

fn plugin_pairs(extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = [
        ("host", "c.westeurope.kusto.windows.net"),
        ("database", "db"),
        ("schema", SCHEMA),
        ("columns.deep", "$.nested.list[1].x"),
        ("columns.topic", "$metadata.topic"),
        ("units.d", "unixMilliseconds"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    pairs.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    pairs
}

pub fn payload_seeds() -> Vec<Vec<u8>> {
    [
        r#"{"s":"a","r":21.5,"i":3,"l":9007199254740993,"b":true,"d":"2026-11-28T10:20:30.1234567Z","ts":"1.02:03:04","g":"0F8FAD5B-D9CB-469F-A165-70867728950E","dec":"1.25","dyn":{"a":[1,2]},"nested":{"list":[0,{"x":2.5}]}}"#,
        r#"{"s":null,"r":"NaN","i":"42","l":"-7","b":"false","d":1764325230123,"ts":"PT1H","g":null,"dec":12.5,"dyn":"text"}"#,
        r#"{"s":"line\nbreak \"quoted\"","r":"hot","i":2147483648,"b":2,"d":"yesterday","ts":"25:00","dec":"1.2.3"}"#,
        r#"[1,2,3]"#,
        r#"{"\u0073": "escaped key", "r": 1e3}"#,
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect()
}

pub fn config_seeds() -> Vec<Vec<u8>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut seeds = Vec::new();
    for dir in ["thermostat", "local", "transformation"] {
        let mut all = String::new();
        for file in ["endpoint.yaml", "dataflow.yaml", "table.yaml"] {
            let text = std::fs::read_to_string(root.join(dir).join(file)).unwrap_or_default();
            seeds.push(text.as_bytes().to_vec());
            all.push_str(&text);
            all.push_str("\n---\n");
        }
        seeds.push(all.into_bytes());
    }
    seeds
}

/// The fast path never accepts what the general reader refuses, and finds the same values.
pub fn check_scanner(payload: &[u8]) -> Result<(), String> {
    const KEYS: &[&str] = &["s", "r", "i", "l", "b", "d", "dyn", "nested", "missing"];
    let Ok(text) = std::str::from_utf8(payload) else {
        return Ok(());
    };
    let mut wanted = WantedKeys::default();
    for key in KEYS {
        wanted.slot_for(key);
    }
    let mut values = vec![None; KEYS.len()];
    if scan_object(text, &wanted, &mut values).is_none() {
        return Ok(());
    }
    let fields = parse_object(payload).map_err(|e| {
        format!("the scanner accepted what the general reader refuses ({e}): {text}")
    })?;
    for (key, value) in KEYS.iter().zip(values) {
        if fields.get(key) != value {
            return Err(format!(
                "for {key} the scanner found {value:?}, the general reader {:?}: {text}",
                fields.get(key)
            ));
        }
    }
    Ok(())
}

/// Checks the properties on one payload; returns a description of any violation.
pub fn check_payload(converter: &RowConverter, payload: &[u8]) -> Result<(), String> {
    check_scanner(payload)?;
    let message = Message {
        sequence: 1,
        topic: "t/1".into(),
        payload: payload.to_vec(),
        ..Default::default()
    };
    let mut cells = Vec::new();
    if converter.convert(&message.view(), &mut cells).is_err() {
        return Ok(());
    }
    let columns: Vec<_> = converter.columns().cloned().collect();
    let mut json = Vec::new();
    RowEncoder::new(StreamFormat::MultiJson, columns.iter()).encode(&cells, &mut json);
    let text = String::from_utf8(json).map_err(|e| format!("multijson row is not UTF-8: {e}"))?;
    if text.matches('\n').count() != 1 {
        return Err(format!("multijson row spans lines: {text:?}"));
    }
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| format!("multijson row is not JSON ({e}): {text}"))?;
    if value.as_object().map(|o| o.len()) != Some(columns.len()) {
        return Err(format!("multijson row has the wrong columns: {text}"));
    }
    let mut csv = Vec::new();
    RowEncoder::new(StreamFormat::Csv, columns.iter()).encode(&cells, &mut csv);
    let csv = String::from_utf8(csv).map_err(|e| format!("csv row is not UTF-8: {e}"))?;
    let records = parse_csv(&csv).map_err(|e| format!("csv row does not parse ({e}): {csv:?}"))?;
    if records.len() != 1 || records[0].len() != columns.len() {
        return Err(format!(
            "csv row has {} record(s) and the wrong field count: {csv:?}",
            records.len()
        ));
    }
    Ok(())
}

pub fn expression_seeds() -> Vec<Vec<u8>> {
    [
        "$1 * $2 < 100000",
        "cToF($1)",
        "if($1 == (), $2, $1)",
        "($1 + $2) / 2",
        "$1 + \", \" + $2",
        "scale($1, 0, 4095, 0, 100)",
        "-$1 ^ 2 ^ 3 % 7",
        "min(($1, $2, 3.5, -1))",
        "str::substring(str::to_uppercase($3), 0, 2) == 'AB' || !($4 > 1e3)",
        "round_n(math::hypot($1, $2), 3)",
        "contains_any(($1, $2), (1, 'x', true))",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect()
}

/// The parser answers every text with a tree or an error; a tree evaluates on any inputs
/// to a value or an error, the same twice.
pub fn check_expression(text: &[u8]) -> Result<bool, String> {
    let text = String::from_utf8_lossy(text);
    let Ok(expr) = dataflow_transform::expr::parse(&text, 4) else {
        return Ok(false);
    };
    use dataflow_transform::value::Value;
    let inputs = [
        vec![
            Value::Int(3),
            Value::Float(2.5),
            Value::Str("abc".into()),
            Value::Empty,
        ],
        vec![
            Value::Int(i64::MAX),
            Value::Int(-1),
            Value::Bool(true),
            Value::Tuple(vec![Value::Int(1)]),
        ],
    ];
    for values in &inputs {
        // Compared as text: NaN is not equal to itself.
        let once = format!("{:?}", dataflow_transform::evaluate(&expr, values));
        if once != format!("{:?}", dataflow_transform::evaluate(&expr, values)) {
            return Err(format!("two evaluations of {text:?} differ"));
        }
    }
    Ok(true)
}

/// Documented rule sets (howto-create-dataflow's thermostat, concept-dataflow-mapping's
/// wildcards and removals) on mutated payloads: an answer for every payload, a JSON object
/// out of every map, the same answer from a fresh plan.
pub fn check_map(
    plans: &[dataflow_transform::TransformationSpec],
    payload: &[u8],
) -> Result<bool, String> {
    use dataflow_transform::{Record, Transformation, Verdict};
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(payload) else {
        return Ok(false);
    };
    let record = Record {
        payload: json,
        topic: "t/1".into(),
        content_type: None,
        user_properties: vec![("k".into(), "v".into())],
    };
    let mut passed = false;
    for spec in plans {
        let mut plan = Transformation::compile(spec)
            .map_err(|e| format!("a seed plan does not compile: {e:?}"))?;
        let first = plan.apply(record.clone());
        let again = Transformation::compile(spec).unwrap().apply(record.clone());
        if first != again {
            return Err(format!(
                "two fresh plans disagree on {}",
                String::from_utf8_lossy(payload)
            ));
        }
        if let Ok(Verdict::Pass(out)) = first {
            if !spec.map.is_empty() && !out.payload.is_object() {
                return Err(format!(
                    "a map made {} of {}",
                    out.payload,
                    String::from_utf8_lossy(payload)
                ));
            }
            passed = true;
        }
    }
    Ok(passed)
}

pub fn map_plans() -> Vec<dataflow_transform::TransformationSpec> {
    use dataflow_transform::documented::{map_rule, thermostat};
    use dataflow_transform::TransformationSpec;
    vec![
        thermostat(),
        TransformationSpec {
            map: vec![
                map_rule(
                    &["*.Max", "*.Min"],
                    Some("ColorProperties.*"),
                    Some("($1 + $2) / 2"),
                ),
                map_rule(&["Opacity.Max", "Opacity.Min"], None, None),
                map_rule(&["*"], Some("all.*"), None),
                map_rule(&["r ? $last"], Some("$metadata.user_property.r"), None),
                map_rule(&["$metadata.topic", "s"], Some("s.topic"), Some("$1 + $2")),
            ],
            ..TransformationSpec::default()
        },
    ]
}

pub fn transformation_payload_seeds() -> Vec<Vec<u8>> {
    let mut seeds = payload_seeds();
    seeds.push(dataflow_transform::documented::thermostat_payload(7));
    seeds.push(br#"{"Saturation":{"Max":0.42,"Min":0.67},"Opacity":{"Max":0.88,"Min":0.91,"Mid":{"Avg":1}},"s":"x"}"#.to_vec());
    seeds
}

#[derive(Debug, Default)]
pub struct Report {
    pub iterations: u64,
    pub payloads_converted: u64,
    pub configs_accepted: u64,
    pub expressions_parsed: u64,
    pub maps_applied: u64,
    pub failures: Vec<String>,
}

/// Runs every target in turn until `duration` has passed.
pub fn run(duration: Duration, seed: u64) -> Report {
    let mut rng = Rng::new(seed);
    let converter =
        RowConverter::new(&DestinationConfig::from_pairs(&plugin_pairs(&[])).unwrap()).unwrap();
    let payloads = payload_seeds();
    let configs = config_seeds();
    let expressions = expression_seeds();
    let transformation_payloads = transformation_payload_seeds();
    let plans = map_plans();
    let mut report = Report::default();
    let started = Instant::now();
    while started.elapsed() < duration && report.failures.len() < 10 {
        report.iterations += 1;
        let target = report.iterations % 5;
        let seeds = match target {
            1 => &configs,
            3 => &expressions,
            4 => &transformation_payloads,
            _ => &payloads,
        };
        let input = mutate(&mut rng, seeds);
        let outcome = catch_unwind(AssertUnwindSafe(|| match target {
            0 => check_payload(&converter, &input).map(|_| false),
            3 => check_expression(&input),
            4 => check_map(&plans, &input),
            1 => {
                let text = String::from_utf8_lossy(&input).into_owned();
                Ok(Deployment::from_texts(&[("fuzz.yaml".into(), text)], Vec::new()).is_ok())
            }
            _ => {
                let value = String::from_utf8_lossy(&input).into_owned();
                let keys = [
                    "schema",
                    "columns.deep",
                    "units.d",
                    "batching.maxMessages",
                    "host",
                    "required",
                    "columns.s",
                ];
                let key = keys[(input.len()) % keys.len()];
                Ok(
                    DestinationConfig::from_pairs(&plugin_pairs(&[(key, &value)]))
                        .ok()
                        .and_then(|c| RowConverter::new(&c).ok())
                        .is_some(),
                )
            }
        }));
        match outcome {
            Ok(Ok(accepted)) => match target {
                1 if accepted => report.configs_accepted += 1,
                0 => report.payloads_converted += 1,
                3 if accepted => report.expressions_parsed += 1,
                4 if accepted => report.maps_applied += 1,
                _ => {}
            },
            Ok(Err(violation)) => report.failures.push(violation),
            Err(_) => report.failures.push(format!(
                "panic on input {:?}",
                String::from_utf8_lossy(&input)
            )),
        }
    }
    report
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_short_fuzzing_run_finds_nothing() {
        let report = super::run(std::time::Duration::from_secs(5), 0x5eed);
        assert!(report.iterations > 1000, "{report:?}");
        assert!(
            report.expressions_parsed > 0 && report.maps_applied > 0,
            "{report:?}"
        );
        assert!(report.failures.is_empty(), "{:#?}", report.failures);
    }
}
