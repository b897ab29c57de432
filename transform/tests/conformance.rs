//! The examples of the Azure IoT Operations documentation, each run through the mapping
//! language: input record, rules, expected output, and the page it is from. Numbers the pages
//! print rounded (two decimals) are compared to within 0.01; everything else exactly.
//!
//! Pages (learn.microsoft.com/azure/iot-operations/connect-to-cloud/...):
//! concept-dataflow-mapping, concept-dataflow-conversions, concept-dataflow-enrich,
//! concept-dataflow-graphs-expressions, howto-dataflow-filter, howto-create-dataflow,
//! howto-dataflow-graphs-map.

use dataflow_transform::{
    DatasetRecords, DatasetSpec, FilterSpec, MapSpec, MappingType, Record, Transformation,
    TransformationSpec, Verdict,
};
use serde_json::{json, Value as Json};

fn map(inputs: &[&str], output: &str, expression: Option<&str>) -> MapSpec {
    MapSpec {
        inputs: inputs.iter().map(|s| s.to_string()).collect(),
        output: Some(output.to_string()),
        expression: expression.map(str::to_string),
        ..MapSpec::default()
    }
}

fn filter(inputs: &[&str], expression: &str) -> FilterSpec {
    FilterSpec {
        inputs: inputs.iter().map(|s| s.to_string()).collect(),
        expression: expression.into(),
        description: None,
    }
}

fn record(payload: Json) -> Record {
    Record {
        payload,
        topic: "factory/line1".into(),
        content_type: None,
        user_properties: vec![("priority".into(), "high".into())],
    }
}

fn run(spec: TransformationSpec, datasets: DatasetRecords, input: Json) -> Verdict {
    let mut plan = Transformation::compile(&spec).unwrap_or_else(|e| panic!("{e:?}"));
    plan.bind_datasets(&datasets);
    plan.apply(record(input)).unwrap_or_else(|e| panic!("{e}"))
}

fn mapped(rules: Vec<MapSpec>, input: Json) -> Record {
    match run(
        TransformationSpec {
            map: rules,
            ..Default::default()
        },
        DatasetRecords::new(),
        input,
    ) {
        Verdict::Pass(record) => record,
        other => panic!("{other:?}"),
    }
}

/// Equal, numbers to within `tolerance`.
fn close(actual: &Json, expected: &Json, tolerance: f64) -> bool {
    match (actual, expected) {
        (Json::Number(a), Json::Number(b)) => {
            (a.as_f64().unwrap() - b.as_f64().unwrap()).abs() <= tolerance
        }
        (Json::Object(a), Json::Object(b)) => {
            a.len() == b.len()
                && a.iter()
                    .all(|(k, v)| b.get(k).is_some_and(|w| close(v, w, tolerance)))
        }
        (Json::Array(a), Json::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(v, w)| close(v, w, tolerance))
        }
        _ => actual == expected,
    }
}

macro_rules! assert_output {
    ($rules:expr, $input:expr, $expected:expr) => {
        assert_output!($rules, $input, $expected, 0.0)
    };
    ($rules:expr, $input:expr, $expected:expr, $tolerance:expr) => {{
        let out = mapped($rules, $input);
        let expected = $expected;
        assert!(
            close(&out.payload, &expected, $tolerance),
            "got {}\nwanted {}",
            out.payload,
            expected
        );
        out
    }};
}

fn color_ranges() -> Json {
    json!({
        "Saturation": {"Max": 0.42, "Min": 0.67, "Mid": {"Avg": 0.51, "Mean": 0.56}},
        "Brightness": {"Max": 0.78, "Min": 0.93, "Mid": {"Avg": 0.81, "Mean": 0.82}},
        "Opacity": {"Max": 0.88, "Min": 0.91, "Mid": {"Avg": 0.89, "Mean": 0.89}}
    })
}

/// concept-dataflow-mapping, "Wildcard": `'*' -> '*'` maps every field unchanged.
#[test]
fn mapping_identity_wildcard() {
    let input = json!({"a": 1, "b": {"c": "x", "d": [1, 2]}, "e": {}});
    assert_output!(vec![map(&["*"], "*", None)], input.clone(), input);
}

/// concept-dataflow-mapping, "Asterisk at the beginning": two prefix wildcards flatten.
#[test]
fn mapping_flatten_two_prefixes() {
    let input = json!({
        "ColorProperties": {"Hue": "blue", "Saturation": "90%", "Brightness": "50%", "Opacity": "0.8"},
        "TextureProperties": {"type": "fabric", "SurfaceFeel": "soft", "SurfaceAppearance": "matte", "Pattern": "knitted"}
    });
    let expected = json!({
        "Hue": "blue", "Saturation": "90%", "Brightness": "50%", "Opacity": "0.8",
        "type": "fabric", "SurfaceFeel": "soft", "SurfaceAppearance": "matte", "Pattern": "knitted"
    });
    assert_output!(
        vec![
            map(&["ColorProperties.*"], "*", None),
            map(&["TextureProperties.*"], "*", None)
        ],
        input,
        expected
    );
}

/// concept-dataflow-mapping, "Multi-input wildcards" (the page prints two decimals).
#[test]
fn mapping_multi_input_average() {
    let input = json!({"Saturation": {"Max": 0.42, "Min": 0.67}, "Brightness": {"Max": 0.78, "Min": 0.93}, "Opacity": {"Max": 0.88, "Min": 0.91}});
    let expected =
        json!({"ColorProperties": {"Saturation": 0.54, "Brightness": 0.85, "Opacity": 0.89}});
    assert_output!(
        vec![map(
            &["*.Max", "*.Min"],
            "ColorProperties.*",
            Some("($1 + $2) / 2")
        )],
        input,
        expected,
        0.01
    );
}

/// concept-dataflow-mapping: `*.Avg` does not resolve where Avg sits under Mid, so that
/// capture is skipped (concept-dataflow-graphs-expressions: "that segment is skipped"); the
/// corrected rule with `*.Mid.Avg` builds the tuple "[0.88, 0.91, 0.89, 0.89]" for Opacity.
#[test]
fn mapping_wrong_and_corrected_nesting() {
    let wrong = vec![map(
        &["*.Max", "*.Min", "*.Avg", "*.Mean"],
        "ColorProperties.*",
        Some("($1, $2, $3, $4)"),
    )];
    assert_output!(wrong, color_ranges(), json!({}));
    let fixed = vec![map(
        &["*.Max", "*.Min", "*.Mid.Avg", "*.Mid.Mean"],
        "ColorProperties.*",
        Some("($1, $2, $3, $4)"),
    )];
    let out = mapped(fixed, color_ranges());
    assert_eq!(
        out.payload["ColorProperties"]["Opacity"],
        json!([0.88, 0.91, 0.89, 0.89])
    );
    assert_eq!(
        out.payload["ColorProperties"]["Saturation"],
        json!([0.42, 0.67, 0.51, 0.56])
    );
}

/// concept-dataflow-mapping, "Second rule": two rules on the same inputs both apply.
#[test]
fn mapping_second_rule() {
    let rules = vec![
        map(
            &["*.Max", "*.Min"],
            "ColorProperties.*.Avg",
            Some("($1 + $2) / 2"),
        ),
        map(
            &["*.Max", "*.Min"],
            "ColorProperties.*.Diff",
            Some("abs($1 - $2)"),
        ),
    ];
    let expected = json!({"ColorProperties": {
        "Saturation": {"Avg": 0.54, "Diff": 0.25},
        "Brightness": {"Avg": 0.85, "Diff": 0.15},
        "Opacity": {"Avg": 0.89, "Diff": 0.03}
    }});
    assert_output!(rules, color_ranges(), expected, 0.01);
}

/// concept-dataflow-mapping, "Specialization": an empty output for Opacity.Max/Min (rank 0)
/// overrides the wildcard rule (rank 1) for Opacity, "effectively removing `Opacity`".
#[test]
fn mapping_specialization_removes() {
    let rules = vec![
        map(
            &["*.Max", "*.Min"],
            "ColorProperties.*",
            Some("($1 + $2) / 2"),
        ),
        MapSpec {
            inputs: vec!["Opacity.Max".into(), "Opacity.Min".into()],
            output: None,
            ..Default::default()
        },
    ];
    let expected = json!({"ColorProperties": {"Saturation": 0.545, "Brightness": 0.855}});
    assert_output!(rules, color_ranges(), expected, 1e-9);
}

/// concept-dataflow-mapping, "Specialization": a specific rule with another output does
/// not take the field from the wildcard rule: "Because the output fields are different in
/// this example, they wouldn't override each other" (with E11's numbers, 1.555 for Opacity).
/// concept-dataflow-graphs-expressions says of the same example that the specific rule
/// overrides; this host follows the mapping page, which howto-create-dataflow's thermostat
/// example (a pass-through plus TemperatureF from temperature.Value) needs.
#[test]
fn mapping_specific_rule_with_another_output() {
    let input =
        json!({"Opacity": {"Max": 0.88, "Min": 0.91}, "Saturation": {"Max": 0.42, "Min": 0.67}});
    let rules = vec![
        map(
            &["*.Max", "*.Min"],
            "ColorProperties.*",
            Some("($1 + $2) / 2"),
        ),
        map(
            &["Opacity.Max", "Opacity.Min"],
            "ColorProperties.OpacityAdjusted",
            Some("($1 + $2 + 1.32) / 2"),
        ),
    ];
    assert_output!(
        rules,
        input,
        json!({"ColorProperties": {"Opacity": 0.895, "Saturation": 0.545, "OpacityAdjusted": 1.555}}),
        1e-9
    );
}

/// concept-dataflow-graphs-expressions, "Multi-input wildcards" (Sensors).
#[test]
fn expressions_multi_input_average() {
    let input =
        json!({"Temperature": {"Max": 85.3, "Min": 62.1}, "Pressure": {"Max": 15.2, "Min": 14.1}});
    assert_output!(
        vec![map(
            &["*.Max", "*.Min"],
            "Averaged.*",
            Some("($1 + $2) / 2")
        )],
        input,
        json!({"Averaged": {"Temperature": 73.7, "Pressure": 14.65}}),
        1e-9
    );
}

/// concept-dataflow-graphs-expressions, "Flatten" (Sensors and Metadata).
#[test]
fn expressions_flatten() {
    let input = json!({"Sensors": {"Temperature": 72.5, "Pressure": 14.7}, "Metadata": {"LineId": "Line-3", "Shift": "A"}});
    let expected = json!({"Temperature": 72.5, "Pressure": 14.7, "LineId": "Line-3", "Shift": "A"});
    assert_output!(
        vec![
            map(&["Sensors.*"], "*", None),
            map(&["Metadata.*"], "*", None)
        ],
        input,
        expected
    );
}

/// concept-dataflow-graphs-expressions, "Restructure": `*` -> `Telemetry.*` wraps every field.
#[test]
fn expressions_wrap() {
    assert_output!(
        vec![map(&["*"], "Telemetry.*", None)],
        json!({"a": 1, "b": {"c": 2}}),
        json!({"Telemetry": {"a": 1, "b": {"c": 2}}})
    );
}

/// howto-dataflow-graphs-map: restructure, "Only fields listed in a rule's output appear".
#[test]
fn graphs_map_restructure() {
    let input = json!({"Name": "Grace Owens", "BirthDate": "19840202", "Position": "Analyst"});
    let rules = vec![
        map(&["Name"], "Employee.Name", None),
        map(&["BirthDate"], "Employee.DateOfBirth", None),
    ];
    assert_output!(
        rules,
        input,
        json!({"Employee": {"Name": "Grace Owens", "DateOfBirth": "19840202"}})
    );
}

/// howto-dataflow-graphs-map, "Combine": `"Analyst, Kent, WA"`; concept-dataflow-mapping's
/// first example gives the same Employment.Position.
#[test]
fn graphs_map_combine() {
    let input = json!({"Position": "Analyst", "Office": "Kent, WA"});
    assert_output!(
        vec![map(
            &["Position", "Office"],
            "Employment.Position",
            Some("$1 + \", \" + $2")
        )],
        input,
        json!({"Employment": {"Position": "Analyst, Kent, WA"}})
    );
}

/// howto-dataflow-graphs-map, prefix wildcard flatten.
#[test]
fn graphs_map_prefix_flatten() {
    let input =
        json!({"ColorProperties": {"Hue": "blue", "Saturation": "90%", "Brightness": "50%"}});
    assert_output!(
        vec![map(&["ColorProperties.*"], "*", None)],
        input,
        json!({"Hue": "blue", "Saturation": "90%", "Brightness": "50%"})
    );
}

/// howto-dataflow-graphs-map, "Remove fields" and "Override a wildcard".
#[test]
fn graphs_map_remove_and_override() {
    let input = json!({"password": "p", "internal_id": 7, "temperature": 100, "site": "a"});
    let rules = vec![
        map(&["*"], "*", None),
        MapSpec {
            inputs: vec!["password".into(), "internal_id".into()],
            output: Some(String::new()),
            ..Default::default()
        },
        map(&["temperature"], "temperature", Some("cToF($1)")),
    ];
    assert_output!(rules, input, json!({"temperature": 212.0, "site": "a"}));
}

/// howto-create-dataflow, "Remove": after a PassThrough, each removal rule drops its field;
/// removing `weight` drops everything below it.
#[test]
fn create_dataflow_remove_after_pass_through() {
    let input = json!({"weight": {"SourceTimestamp": "t", "Value": 3, "StatusCode": {"Code": 0, "Symbol": "Good"}}, "temperature": 21});
    let mut pass = map(&["*"], "*", None);
    pass.mapping_type = Some(MappingType::PassThrough);
    let remove = |p: &str| MapSpec {
        inputs: vec![p.into()],
        output: Some(String::new()),
        ..Default::default()
    };
    let rules = vec![
        pass.clone(),
        remove("weight"),
        remove("weight.SourceTimestamp"),
        remove("weight.Value"),
        remove("weight.StatusCode"),
        remove("weight.StatusCode.Code"),
        remove("weight.StatusCode.Symbol"),
    ];
    assert_output!(rules, input.clone(), json!({"temperature": 21}));
    assert_output!(
        vec![pass, remove("weight")],
        input,
        json!({"temperature": 21})
    );
}

/// concept-dataflow-conversions, "Arrays": `min($1)` of the Measurements array.
#[test]
fn conversions_array_minimum() {
    assert_output!(
        vec![map(&["Measurements"], "Measurement", Some("min($1)"))],
        json!({"Measurements": [2.34, 12.3, 32.4]}),
        json!({"Measurement": 2.34})
    );
}

/// concept-dataflow-conversions, "Arrays": a tuple of four inputs becomes an array.
#[test]
fn conversions_build_array() {
    let input = json!({"minimum": 1, "maximum": 9, "average": 5.5, "mean": 5});
    assert_output!(
        vec![map(
            &["minimum", "maximum", "average", "mean"],
            "stats",
            Some("($1, $2, $3, $4)")
        )],
        input,
        json!({"stats": [1, 9, 5.5, 5]})
    );
}

/// concept-dataflow-mapping, "MQTT user properties" and "Topic": metadata in and out.
#[test]
fn mapping_metadata_in_and_out() {
    let out = assert_output!(
        vec![
            map(&["$metadata.topic"], "origin_topic", None),
            map(
                &["$metadata.topic"],
                "$metadata.user_property.origin_topic",
                None
            ),
            map(&["$metadata.user_properties.priority"], "priority", None),
        ],
        json!({"x": 1}),
        json!({"origin_topic": "factory/line1", "priority": "high"})
    );
    assert!(
        out.user_properties
            .contains(&("origin_topic".into(), "factory/line1".into())),
        "{:?}",
        out.user_properties
    );
}

fn enrich(key: &str, inputs: &[&str]) -> DatasetSpec {
    DatasetSpec {
        key: key.into(),
        inputs: inputs.iter().map(|s| s.to_string()).collect(),
        expression: "$1 == $2".into(),
        description: None,
    }
}

fn positions() -> DatasetRecords {
    DatasetRecords::from([(
        "position".to_string(),
        vec![
            json!({"Position": "Analyst", "BaseSalary": 70000, "WorkingHours": "Regular"}),
            json!({"Position": "Receptionist", "BaseSalary": 43000, "WorkingHours": "Regular"}),
        ],
    )])
}

/// concept-dataflow-enrich: the first record whose Position matches; WorkingHours added, and
/// BaseSalary from the dataset only where the message has none (`if($1 == (), $2, $1)`).
#[test]
fn enrich_by_position() {
    let spec = |map: Vec<MapSpec>| TransformationSpec {
        datasets: vec![enrich(
            "position",
            &["$source.Position", "$context.Position"],
        )],
        map,
        ..Default::default()
    };
    let rules = vec![
        map(&["$context(position).WorkingHours"], "WorkingHours", None),
        map(
            &["BaseSalary", "$context(position).BaseSalary"],
            "BaseSalary",
            Some("if($1 == (), $2, $1)"),
        ),
    ];
    let Verdict::Pass(out) = run(
        spec(rules.clone()),
        positions(),
        json!({"Position": "Receptionist"}),
    ) else {
        panic!()
    };
    assert_eq!(
        out.payload,
        json!({"WorkingHours": "Regular", "BaseSalary": 43000})
    );
    let Verdict::Pass(out) = run(
        spec(rules.clone()),
        positions(),
        json!({"Position": "Analyst", "BaseSalary": 75000}),
    ) else {
        panic!()
    };
    assert_eq!(
        out.payload,
        json!({"WorkingHours": "Regular", "BaseSalary": 75000})
    );
    // No record matches: the rules that read the dataset are skipped (howto-dataflow-graphs-enrich).
    let Verdict::Pass(out) = run(spec(rules), positions(), json!({"Position": "Pilot"})) else {
        panic!()
    };
    assert_eq!(out.payload, json!({}));
}

/// concept-dataflow-mapping, "Context dataset" wildcard: every field of the matched record.
#[test]
fn mapping_context_wildcard() {
    let spec = TransformationSpec {
        datasets: vec![enrich(
            "datasets.parag10.rule42 as position",
            &["$source.Position", "$context.Position"],
        )],
        map: vec![map(&["$context(position).*"], "Employment.*", None)],
        ..Default::default()
    };
    let datasets = DatasetRecords::from([(
        "datasets.parag10.rule42".to_string(),
        positions()["position"].clone(),
    )]);
    let Verdict::Pass(out) = run(spec, datasets, json!({"Position": "Analyst"})) else {
        panic!()
    };
    assert_eq!(
        out.payload,
        json!({"Employment": {"Position": "Analyst", "BaseSalary": 70000, "WorkingHours": "Regular"}})
    );
}

/// howto-dataflow-filter: "When a filter expression evaluates to true, the message is
/// dropped"; several rules combine with OR. The truth table of
/// howto-dataflow-graphs-filter-route gives the same results.
#[test]
fn filter_drops_when_true() {
    let spec = || TransformationSpec {
        filter: vec![
            filter(&["temperature"], "$1 > 100"),
            filter(&["humidity"], "$1 > 95"),
        ],
        ..Default::default()
    };
    let verdict = |input: Json| run(spec(), DatasetRecords::new(), input);
    assert_eq!(
        verdict(json!({"temperature": 150, "humidity": 60})),
        Verdict::Dropped(0)
    );
    assert_eq!(
        verdict(json!({"temperature": 80, "humidity": 98})),
        Verdict::Dropped(1)
    );
    assert!(matches!(
        verdict(json!({"temperature": 80, "humidity": 60})),
        Verdict::Pass(_)
    ));
}

/// howto-dataflow-filter, "Threshold with last known value": a message without temperature is
/// judged by the last one seen.
#[test]
fn filter_last_known_value() {
    let spec = TransformationSpec {
        filter: vec![filter(&["temperature ? $last"], "$1 <= 20")],
        ..Default::default()
    };
    let mut plan = Transformation::compile(&spec).unwrap();
    assert!(matches!(
        plan.apply(record(json!({"temperature": 25}))),
        Ok(Verdict::Pass(_))
    ));
    assert!(
        matches!(
            plan.apply(record(json!({"other": 1}))),
            Ok(Verdict::Pass(_))
        ),
        "25 is remembered"
    );
    assert_eq!(
        plan.apply(record(json!({"temperature": 10}))),
        Ok(Verdict::Dropped(0))
    );
    assert_eq!(
        plan.apply(record(json!({}))),
        Ok(Verdict::Dropped(0)),
        "10 is remembered"
    );
}

/// concept-dataflow-mapping, "Last known value" in a map rule.
#[test]
fn mapping_last_known_value() {
    let spec = TransformationSpec {
        map: vec![map(
            &["Temperature ? $last"],
            "Thermostat.Temperature",
            None,
        )],
        ..Default::default()
    };
    let mut plan = Transformation::compile(&spec).unwrap();
    let Ok(Verdict::Pass(_)) = plan.apply(record(json!({"Temperature": 21.5}))) else {
        panic!()
    };
    let Ok(Verdict::Pass(out)) = plan.apply(record(json!({"Humidity": 40}))) else {
        panic!()
    };
    assert_eq!(out.payload, json!({"Thermostat": {"Temperature": 21.5}}));
}

/// howto-create-dataflow, "Example": the thermostat dataflow. Its filter drops the messages
/// where temperature * "Tag 10" < 100000 (howto-dataflow-filter's reading of true), its map
/// passes every field through and adds TemperatureF and Humidity.
#[test]
fn create_dataflow_thermostat_example() {
    let spec = TransformationSpec {
        filter: vec![filter(
            &["temperature.Value", "\"Tag 10\".Value"],
            "$1 * $2 < 100000",
        )],
        map: vec![
            map(&["*"], "*", None),
            map(&["temperature.Value"], "TemperatureF", Some("cToF($1)")),
            map(&["\"Tag 10\".Value"], "Humidity", None),
        ],
        ..Default::default()
    };
    let mut plan = Transformation::compile(&spec).unwrap();
    let low = json!({"temperature": {"Value": 10}, "Tag 10": {"Value": 50}});
    assert_eq!(plan.apply(record(low)), Ok(Verdict::Dropped(0)));
    let high = json!({"temperature": {"Value": 2000, "SourceTimestamp": "2026-12-02T00:00:00Z"}, "Tag 10": {"Value": 60}});
    let Ok(Verdict::Pass(out)) = plan.apply(record(high)) else {
        panic!()
    };
    assert_eq!(
        out.payload,
        json!({
            "temperature": {"Value": 2000, "SourceTimestamp": "2026-12-02T00:00:00Z"},
            "Tag 10": {"Value": 60},
            "TemperatureF": 3632.0,
            "Humidity": 60
        })
    );
    // A string where a number is needed: the rule and its inputs are named.
    let wrong = json!({"temperature": {"Value": "hot"}, "Tag 10": {"Value": 60}});
    let failure = plan.apply(record(wrong)).unwrap_err();
    assert_eq!((failure.stage.field(), failure.rule), ("filter", 0));
    assert!(
        failure.message.contains("\"hot\"") && failure.message.contains("temperature.Value"),
        "{failure}"
    );
}

/// Rules that cannot work are refused when loaded, naming the rule, the field and the column.
#[test]
fn bad_rules_are_refused_with_their_place() {
    let spec = TransformationSpec {
        filter: vec![filter(&["a"], "$1 >")],
        map: vec![
            map(&["*.Max"], "Total", None),
            map(&["a", "b"], "c", None),
            map(&["a"], "b", Some("nosuch($1)")),
            MapSpec {
                inputs: vec!["a".into()],
                output: Some("b".into()),
                mapping_type: Some(MappingType::PassThrough),
                ..Default::default()
            },
            map(&["$context(missing).x"], "y", None),
        ],
        ..Default::default()
    };
    let errors = Transformation::compile(&spec).unwrap_err();
    let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
    let expect = [
        "filter[0].expression: column 5: expected a value",
        "map[0].output: input 1 has a `*`",
        "map[1].expression: `expression` is required when 2 inputs",
        "map[2].expression: column 1: `nosuch` is not a function",
        "map[3].type: this rule does not do what its type says",
        "map[4].inputs[0]: `$context(missing)` names no dataset",
    ];
    for wanted in expect {
        assert!(
            shown.iter().any(|s| s.starts_with(wanted)),
            "missing {wanted:?} in {shown:#?}"
        );
    }
    assert_eq!(shown.len(), expect.len(), "{shown:#?}");
}

/// howto-dataflow-graphs-map: `description` is a "Human-readable label for the rule, included
/// in error messages"; howto-dataflow-filter's rules carry one each.
#[test]
fn descriptions_label_their_rules() {
    let mut rule = filter(&["temperature"], "$1 <= 20");
    rule.description = Some("Drop low temperatures".into());
    let spec = TransformationSpec {
        filter: vec![rule],
        ..Default::default()
    };
    let plan = Transformation::compile(&spec).unwrap();
    assert_eq!(
        plan.description(dataflow_transform::Stage::Filter, 0),
        Some("Drop low temperatures")
    );
    assert_eq!(plan.description(dataflow_transform::Stage::Map, 0), None);
    assert!(Transformation::describe(&spec)
        .contains(&"filter[0]    \"Drop low temperatures\"".to_string()));
}

/// The wildcard's captures and the output paths are kept without copies, a path on the stack
/// up to eight segments: deeper ones, and a capture of several segments inside one, are
/// written the same way.
#[test]
fn deep_output_paths_and_multi_segment_captures_are_written_whole() {
    let input = json!({"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": 1}}}}}}}}, "x": "y"});
    assert_output!(vec![map(&["*"], "*", None)], input.clone(), input.clone());
    assert_output!(
        vec![map(&["a.*"], "out.p.q.r.s.t.u.v.w.*", None)],
        input,
        json!({"out": {"p": {"q": {"r": {"s": {"t": {"u": {"v": {"w": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": 1}}}}}}}}}}}}}}}}})
    );
}
