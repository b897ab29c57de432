//! Rules compiled into a plan, and the plan applied to a message.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use serde_json::{Map, Value as Json};

use crate::eval::evaluate;
use crate::expr::{self, Expr};
use crate::json_path;
use crate::path::{self, FieldPath, InputPath, Metadata, Place, Root, Segment};
use crate::value::Value;

/// The three rule lists of a `builtInTransformationSettings`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransformationSpec {
    pub datasets: Vec<DatasetSpec>,
    pub filter: Vec<FilterSpec>,
    pub map: Vec<MapSpec>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MapSpec {
    pub inputs: Vec<String>,
    /// `None` or empty: the inputs are removed from the output.
    pub output: Option<String>,
    pub expression: Option<String>,
    pub mapping_type: Option<MappingType>,
    pub description: Option<String>,
}

/// `type` of a map rule (`DataflowMappingType` of the Azure IoT Operations API). The
/// documentation never says it changes what a rule does; it is checked against the rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MappingType {
    NewProperties,
    Rename,
    Compute,
    PassThrough,
    BuiltInFunction,
}

impl MappingType {
    pub const NAMES: &'static [&'static str] = &[
        "NewProperties",
        "Rename",
        "Compute",
        "PassThrough",
        "BuiltInFunction",
    ];

    pub fn named(name: &str) -> Option<Self> {
        Some(match name {
            "NewProperties" => Self::NewProperties,
            "Rename" => Self::Rename,
            "Compute" => Self::Compute,
            "PassThrough" => Self::PassThrough,
            "BuiltInFunction" => Self::BuiltInFunction,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilterSpec {
    pub inputs: Vec<String>,
    pub expression: String,
    pub description: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DatasetSpec {
    /// The state store key, optionally `<key> as <alias>`.
    pub key: String,
    pub inputs: Vec<String>,
    pub expression: String,
    pub description: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    Datasets,
    Filter,
    Map,
}

impl Stage {
    pub fn field(self) -> &'static str {
        match self {
            Stage::Datasets => "datasets",
            Stage::Filter => "filter",
            Stage::Map => "map",
        }
    }
}

/// A rule that does not load: which rule, which of its fields (`inputs[1]`, `expression`,
/// `output`, `key`, `type`), and why (with the column, for syntax errors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    pub stage: Stage,
    pub rule: usize,
    pub field: String,
    pub message: String,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}[{}].{}: {}",
            self.stage.field(),
            self.rule,
            self.field,
            self.message
        )
    }
}

/// A message as the transformation sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub payload: Json,
    pub topic: String,
    pub content_type: Option<String>,
    pub user_properties: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The message goes on, transformed.
    Pass(Record),
    /// A filter rule was true (howto-dataflow-filter: "When a filter expression evaluates to
    /// true, the message is dropped"); the index of the rule.
    Dropped(usize),
}

/// A rule that failed on this message, with what failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub stage: Stage,
    pub rule: usize,
    pub message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{}]: {}", self.stage.field(), self.rule, self.message)
    }
}

/// The records of each dataset key, as the state store would hold them (one JSON object each).
pub type DatasetRecords = HashMap<String, Vec<Json>>;

#[derive(Debug, Clone)]
struct Input {
    path: InputPath,
    text: String,
    /// For `$context(<dataset>)` inputs, which dataset (resolved when compiled).
    dataset: Option<usize>,
}

#[derive(Debug, Clone)]
struct MapRule {
    inputs: Vec<Input>,
    /// `None`: a removal rule.
    output: Option<FieldPath>,
    expression: Option<Expr>,
    /// Which input's `*` captures (the first with a wildcard).
    capturing: Option<usize>,
    /// Datasets the rule reads: skipped for a message none of their records matched.
    contexts: Vec<usize>,
}

#[derive(Debug, Clone)]
struct FilterRule {
    inputs: Vec<Input>,
    expression: Expr,
    contexts: Vec<usize>,
}

#[derive(Debug, Clone)]
struct Dataset {
    key: String,
    alias: String,
    inputs: Vec<Input>,
    expression: Expr,
}

/// A compiled transformation, with the last known values of its `? $last` inputs.
#[derive(Debug, Clone)]
pub struct Transformation {
    datasets: Vec<Dataset>,
    records: Vec<Vec<Json>>,
    filter: Vec<FilterRule>,
    map: Vec<MapRule>,
    last_known: HashMap<(Stage, usize, usize), Json>,
    /// Each rule's `description`, which the documentation puts in error messages.
    descriptions: HashMap<(Stage, usize), String>,
}

impl Transformation {
    /// Compiles every rule; every problem is reported, each naming its rule and field.
    pub fn compile(spec: &TransformationSpec) -> Result<Self, Vec<RuleError>> {
        let mut errors = Vec::new();
        let mut datasets = Vec::new();
        for (index, dataset) in spec.datasets.iter().enumerate() {
            if let Some(d) = compile_dataset(index, dataset, &mut errors) {
                datasets.push(d);
            }
        }
        let aliases: Vec<String> = datasets.iter().map(|d| d.alias.clone()).collect();
        for (i, alias) in aliases.iter().enumerate() {
            if aliases[..i].contains(alias) {
                errors.push(RuleError {
                    stage: Stage::Datasets,
                    rule: i,
                    field: "key".into(),
                    message: format!("another dataset is named `{alias}` already"),
                });
            }
        }
        let filter = spec
            .filter
            .iter()
            .enumerate()
            .filter_map(|(i, rule)| compile_filter(i, rule, &aliases, &mut errors))
            .collect();
        let map = spec
            .map
            .iter()
            .enumerate()
            .filter_map(|(i, rule)| compile_map(i, rule, &aliases, &mut errors))
            .collect();
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Self {
            records: vec![Vec::new(); datasets.len()],
            datasets,
            filter,
            map,
            last_known: HashMap::new(),
            descriptions: descriptions(spec),
        })
    }

    /// A rule's `description`, if it has one.
    pub fn description(&self, stage: Stage, rule: usize) -> Option<&str> {
        self.descriptions.get(&(stage, rule)).map(String::as_str)
    }

    /// The state store keys the datasets read, in the order of `datasets`.
    pub fn dataset_keys(&self) -> Vec<&str> {
        self.datasets.iter().map(|d| d.key.as_str()).collect()
    }

    /// Gives the datasets their records (by state store key). A key without records leaves
    /// its dataset empty: no record matches, and rules that read it are skipped.
    pub fn bind_datasets(&mut self, records: &DatasetRecords) {
        for (i, dataset) in self.datasets.iter().enumerate() {
            self.records[i] = records.get(&dataset.key).cloned().unwrap_or_default();
        }
    }

    pub fn is_empty(&self) -> bool {
        self.datasets.is_empty() && self.filter.is_empty() && self.map.is_empty()
    }

    /// Applies enrich, filter and map to one message.
    pub fn apply(&mut self, mut record: Record) -> Result<Verdict, Failure> {
        Ok(match self.apply_in_place(&mut record)? {
            Some(rule) => Verdict::Dropped(rule),
            None => Verdict::Pass(record),
        })
    }

    /// As `apply`, changing the record where it is: `Ok(None)` when it passed (transformed),
    /// `Ok(Some(rule))` when that filter rule dropped it; a dropped or failed record is left
    /// as it came.
    pub fn apply_in_place(&mut self, record: &mut Record) -> Result<Option<usize>, Failure> {
        let matched = self.enrich(record)?;
        let Self {
            records,
            filter,
            map,
            last_known,
            ..
        } = self;
        // The record each dataset matched, by dataset.
        let contexts: Vec<Option<&Json>> = matched
            .iter()
            .enumerate()
            .map(|(d, m)| m.map(|position| &records[d][position]))
            .collect();
        // One buffer of inputs and one of values for all the rules of a message.
        let (mut inputs, mut values) = (Vec::new(), Vec::new());
        for (index, rule) in filter.iter().enumerate() {
            if rule.contexts.iter().any(|&d| contexts[d].is_none()) {
                continue;
            }
            resolve(
                &mut inputs,
                &rule.inputs,
                last_known,
                (Stage::Filter, index),
                record,
                &contexts,
                &[],
            );
            expression_values(&mut values, &inputs);
            if truth(
                Stage::Filter,
                index,
                &rule.inputs,
                &rule.expression,
                &values,
            )? {
                return Ok(Some(index));
            }
        }
        if map.is_empty() {
            return Ok(None);
        }
        let (payload, metadata) = map_record(map, last_known, record, &contexts)?;
        record.payload = payload;
        for (property, value) in metadata {
            set_metadata(record, property, value);
        }
        Ok(None)
    }

    /// For each dataset, the first record its expression matches.
    fn enrich(&self, record: &Record) -> Result<Vec<Option<usize>>, Failure> {
        let mut matched = Vec::with_capacity(self.datasets.len());
        for (index, dataset) in self.datasets.iter().enumerate() {
            let mut found = None;
            for (position, candidate) in self.records[index].iter().enumerate() {
                let values: Vec<Value> = dataset
                    .inputs
                    .iter()
                    .map(|input| {
                        let value = match &input.path.path.root {
                            Root::DatasetRecord => {
                                json_path::get(candidate, &names(&input.path.path))
                                    .map(Cow::Borrowed)
                            }
                            _ => read(record, input, &[], &[]),
                        };
                        value.as_deref().map_or(Value::Empty, Value::from_json)
                    })
                    .collect();
                if truth(
                    Stage::Datasets,
                    index,
                    &dataset.inputs,
                    &dataset.expression,
                    &values,
                )? {
                    found = Some(position);
                    break;
                }
            }
            matched.push(found);
        }
        Ok(matched)
    }
}

fn descriptions(spec: &TransformationSpec) -> HashMap<(Stage, usize), String> {
    let mut out = HashMap::new();
    let mut add = |stage, rule, description: &Option<String>| {
        if let Some(d) = description {
            out.insert((stage, rule), d.clone());
        }
    };
    for (i, d) in spec.datasets.iter().enumerate() {
        add(Stage::Datasets, i, &d.description);
    }
    for (i, f) in spec.filter.iter().enumerate() {
        add(Stage::Filter, i, &f.description);
    }
    for (i, m) in spec.map.iter().enumerate() {
        add(Stage::Map, i, &m.description);
    }
    out
}

/// Inputs as expressions see them: a missing one is the empty value.
/// The values an expression sees, into `values` (emptied first).
fn expression_values(values: &mut Vec<Value>, inputs: &[Option<Cow<'_, Json>>]) {
    values.clear();
    values.extend(
        inputs
            .iter()
            .map(|v| v.as_deref().map_or(Value::Empty, Value::from_json)),
    );
}

/// A filter's or a dataset's expression: true or false, anything else is a failure.
fn truth(
    stage: Stage,
    rule: usize,
    inputs: &[Input],
    expression: &Expr,
    values: &[Value],
) -> Result<bool, Failure> {
    match evaluate(expression, values) {
        Ok(Value::Bool(b)) => Ok(b),
        Ok(other) => Err(failure(
            stage,
            rule,
            inputs,
            values,
            format!("the expression gave {other}, not true or false"),
        )),
        Err(e) => Err(failure(stage, rule, inputs, values, e)),
    }
}

/// What failed, with the rule's inputs and the values they had.
fn failure(
    stage: Stage,
    rule: usize,
    inputs: &[Input],
    values: &[Value],
    message: String,
) -> Failure {
    let shown: Vec<String> = inputs
        .iter()
        .zip(values)
        .enumerate()
        .map(|(i, (input, value))| format!("${} `{}` = {value}", i + 1, input.text))
        .collect();
    let message = match shown.is_empty() {
        true => message,
        false => format!("{message} ({})", shown.join(", ")),
    };
    Failure {
        stage,
        rule,
        message,
    }
}

/// The values of a rule's inputs (`None`: missing) into `values` (emptied first), remembering
/// and using last known values (kept by stage, rule and input).
fn resolve<'a>(
    values: &mut Vec<Option<Cow<'a, Json>>>,
    inputs: &[Input],
    last_known: &mut HashMap<(Stage, usize, usize), Json>,
    (stage, rule): (Stage, usize),
    record: &'a Record,
    contexts: &[Option<&'a Json>],
    capture: &[&str],
) {
    values.clear();
    for (index, input) in inputs.iter().enumerate() {
        let value = read(record, input, capture, contexts);
        let value = match (value, input.path.last_known) {
            (Some(v), true) if !v.is_null() => {
                last_known.insert((stage, rule, index), v.clone().into_owned());
                Some(v)
            }
            (v, true) => last_known
                .get(&(stage, rule, index))
                .map(|known| Cow::Owned(known.clone()))
                .or(v),
            (v, false) => v,
        };
        values.push(value);
    }
}

/// The new payload, and the metadata properties the rules set (in order; `None` removes).
#[allow(clippy::type_complexity)]
fn map_record(
    map: &[MapRule],
    last_known: &mut HashMap<(Stage, usize, usize), Json>,
    record: &Record,
    contexts: &[Option<&Json>],
) -> Result<(Json, Vec<(Metadata, Option<String>)>), Failure> {
    // Every (rule, capture) the rules resolve to, in rule order. A later application with
    // a lower rank (fewer captured segments) on the same field overrides an earlier one
    // ("specialization") when it removes that field or writes the same output; otherwise
    // both apply ("second rule"; concept-dataflow-mapping: "Because the output fields are
    // different in this example, they wouldn't override each other").
    struct Application<'a> {
        rule: usize,
        /// Segments of the payload (or a dataset's record) the wildcard stands for.
        capture: Vec<&'a str>,
    }
    let mut applications: Vec<Application> = Vec::new();
    for (index, rule) in map.iter().enumerate() {
        if rule.contexts.iter().any(|&d| contexts[d].is_none()) {
            continue;
        }
        let captures: Vec<Vec<&str>> = match rule.capturing {
            None => vec![Vec::new()],
            Some(input) => {
                let input = &rule.inputs[input];
                let path = &input.path.path;
                let star = path
                    .wildcard_index()
                    .expect("a capturing input has a wildcard");
                let prefix = names_of(&path.segments[..star]);
                let suffix = names_of(&path.segments[star + 1..]);
                let mut found = Vec::new();
                if let Some(base) =
                    source(record, input, contexts).and_then(|s| json_path::get(s, &prefix))
                {
                    json_path::captures(base, &suffix, &mut found);
                }
                // Every other wildcard input must resolve for the same capture.
                found.retain(|capture| {
                    rule.inputs.iter().all(|i| {
                        !i.path.path.has_wildcard() || read(record, i, capture, contexts).is_some()
                    })
                });
                found
            }
        };
        for capture in captures {
            let rank = capture.len();
            // Only an earlier application that captured more segments can be overridden.
            if applications.iter().any(|a| a.capture.len() > rank) {
                applications.retain(|earlier| {
                    if earlier.rule == index || earlier.capture.len() <= rank {
                        return true;
                    }
                    let earlier_rule = &map[earlier.rule];
                    let Some(first) = earlier_rule.inputs.first() else {
                        return true;
                    };
                    let first = &first.path.path;
                    // The outputs first: most later rules write elsewhere.
                    let replaces = match (&rule.output, &earlier_rule.output) {
                        (None, _) => true,
                        (Some(new), Some(old)) => {
                            new.root == old.root
                                && captured(&new.segments, &capture)
                                    .eq(captured(&old.segments, &earlier.capture))
                        }
                        (Some(_), None) => false,
                    };
                    let same_field = || {
                        rule.inputs.iter().any(|i| {
                            i.path.path.root == first.root
                                && is_prefix(
                                    captured(&i.path.path.segments, &capture),
                                    captured(&first.segments, &earlier.capture),
                                )
                        })
                    };
                    !(replaces && same_field())
                });
            }
            applications.push(Application {
                rule: index,
                capture,
            });
        }
    }
    let mut output = Map::new();
    let mut metadata = Vec::new();
    let (mut inputs, mut values) = (Vec::new(), Vec::new());
    for application in &applications {
        let index = application.rule;
        let rule = &map[index];
        let Some(target) = &rule.output else {
            continue; // A removal rule writes nothing.
        };
        resolve(
            &mut inputs,
            &rule.inputs,
            last_known,
            (Stage::Map, index),
            record,
            contexts,
            &application.capture,
        );
        let result = match &rule.expression {
            None => inputs.drain(..).next().flatten().map(Cow::into_owned),
            Some(expression) => {
                expression_values(&mut values, &inputs);
                evaluate(expression, &values)
                    .and_then(Value::into_json)
                    .map_err(|e| failure(Stage::Map, index, &rule.inputs, &values, e))?
            }
        };
        write(
            &mut output,
            &mut metadata,
            target,
            &application.capture,
            result,
        )
        .map_err(|e| failure(Stage::Map, index, &[], &[], e))?;
    }
    Ok((Json::Object(output), metadata))
}

/// A path's segment names, `capture` standing for its wildcard.
fn captured<'a>(segments: &'a [Segment], capture: &'a [&'a str]) -> impl Iterator<Item = &'a str> {
    segments.iter().flat_map(move |s| {
        let (field, wildcard) = match s {
            Segment::Field(name) => (Some(name.as_str()), &[][..]),
            Segment::Wildcard => (None, capture),
        };
        field.into_iter().chain(wildcard.iter().copied())
    })
}

/// Whether `prefix` is the start of (or all of) `path`.
fn is_prefix<'a>(
    mut prefix: impl Iterator<Item = &'a str>,
    mut path: impl Iterator<Item = &'a str>,
) -> bool {
    loop {
        match (prefix.next(), path.next()) {
            (None, _) => return true,
            (Some(_), None) => return false,
            (Some(a), Some(b)) if a != b => return false,
            _ => {}
        }
    }
}

fn names_of(segments: &[Segment]) -> Vec<String> {
    segments
        .iter()
        .map(|s| match s {
            Segment::Field(name) => name.clone(),
            Segment::Wildcard => "*".into(),
        })
        .collect()
}

fn names(path: &FieldPath) -> Vec<String> {
    names_of(&path.segments)
}

/// The JSON an input reads from: the payload, or the record its dataset matched.
fn source<'a>(
    record: &'a Record,
    input: &Input,
    contexts: &[Option<&'a Json>],
) -> Option<&'a Json> {
    match input.path.path.root {
        Root::Payload => Some(&record.payload),
        Root::Context(_) => input.dataset.and_then(|d| contexts[d]),
        Root::DatasetRecord | Root::Metadata(_) => None,
    }
}

/// An input's value in this message, `capture` standing for its wildcard: borrowed from the
/// payload or the dataset's record (a copy is made only where a value is kept).
fn read<'a>(
    record: &'a Record,
    input: &Input,
    capture: &[&str],
    contexts: &[Option<&'a Json>],
) -> Option<Cow<'a, Json>> {
    let text = |text: &str| Cow::Owned(Json::String(text.to_string()));
    match &input.path.path.root {
        Root::Metadata(Metadata::Topic) => Some(text(&record.topic)),
        Root::Metadata(Metadata::ContentType) => record.content_type.as_deref().map(text),
        Root::Metadata(Metadata::UserProperty(key)) => record
            .user_properties
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| text(v)),
        _ => {
            let base = source(record, input, contexts)?;
            json_path::get_captured(base, &input.path.path.segments, capture).map(Cow::Borrowed)
        }
    }
}

/// Writes a rule's result into the payload, or notes a metadata property to set. The empty
/// value writes nothing, and removes a metadata property.
fn write(
    output: &mut Map<String, Json>,
    metadata: &mut Vec<(Metadata, Option<String>)>,
    target: &FieldPath,
    capture: &[&str],
    value: Option<Json>,
) -> Result<(), String> {
    let text = |v: Json| match v {
        Json::String(s) => s,
        other => other.to_string(),
    };
    match &target.root {
        Root::Metadata(Metadata::Topic) if value.is_none() => {
            return Err("the topic cannot be removed".into())
        }
        Root::Metadata(property) => metadata.push((property.clone(), value.map(text))),
        _ => {
            if let Some(value) = value {
                // Output paths are short: their segments on the stack, a `Vec` past eight.
                let mut short = [""; 8];
                let mut long = Vec::new();
                let mut count = 0;
                for segment in captured(&target.segments, capture) {
                    if count < short.len() {
                        short[count] = segment;
                    } else {
                        if long.is_empty() {
                            long.extend_from_slice(&short);
                        }
                        long.push(segment);
                    }
                    count += 1;
                }
                let path = if long.is_empty() {
                    &short[..count]
                } else {
                    &long[..]
                };
                json_path::set(output, path, value)?;
            }
        }
    }
    Ok(())
}

fn set_metadata(record: &mut Record, property: Metadata, value: Option<String>) {
    match property {
        Metadata::Topic => record.topic = value.unwrap_or_default(),
        Metadata::ContentType => record.content_type = value,
        Metadata::UserProperty(key) => {
            record.user_properties.retain(|(k, _)| *k != key);
            if let Some(v) = value {
                record.user_properties.push((key, v));
            }
        }
    }
}

fn error(
    stage: Stage,
    rule: usize,
    field: impl Into<String>,
    message: impl Into<String>,
) -> RuleError {
    RuleError {
        stage,
        rule,
        field: field.into(),
        message: message.into(),
    }
}

fn compile_inputs(
    stage: Stage,
    rule: usize,
    texts: &[String],
    place: Place,
    aliases: &[String],
    errors: &mut Vec<RuleError>,
) -> Option<(Vec<Input>, Vec<usize>)> {
    let mut inputs = Vec::with_capacity(texts.len());
    let mut contexts = Vec::new();
    let before = errors.len();
    for (i, text) in texts.iter().enumerate() {
        let field = format!("inputs[{i}]");
        match path::parse_input(text, place) {
            Ok(input) => {
                if let Root::Context(alias) = &input.path.root {
                    match aliases.iter().position(|a| a == alias) {
                        Some(d) => {
                            if !contexts.contains(&d) {
                                contexts.push(d)
                            }
                        }
                        None => errors.push(error(
                            stage,
                            rule,
                            &field,
                            match aliases.is_empty() {
                                true => format!(
                                    "`$context({alias})` names no dataset: there are no `datasets`"
                                ),
                                false => format!(
                                    "`$context({alias})` names no dataset (datasets: {})",
                                    aliases.join(", ")
                                ),
                            },
                        )),
                    }
                }
                if stage != Stage::Map && input.path.has_wildcard() {
                    errors.push(error(
                        stage,
                        rule,
                        &field,
                        format!(
                            "wildcards are for map rules only; each {} input names one field",
                            stage.field()
                        ),
                    ));
                }
                if input.last_known && input.path.has_wildcard() {
                    errors.push(error(
                        stage,
                        rule,
                        &field,
                        "`? $last` needs one field, not a wildcard",
                    ));
                }
                let dataset = match &input.path.root {
                    Root::Context(alias) => aliases.iter().position(|a| a == alias),
                    _ => None,
                };
                inputs.push(Input {
                    path: input,
                    text: text.clone(),
                    dataset,
                });
            }
            Err(e) => errors.push(error(stage, rule, field, e.to_string())),
        }
    }
    (errors.len() == before).then_some((inputs, contexts))
}

fn compile_expression(
    stage: Stage,
    rule: usize,
    text: &str,
    inputs: usize,
    errors: &mut Vec<RuleError>,
) -> Option<Expr> {
    match expr::parse(text, inputs) {
        Ok(e) => Some(e),
        Err(e) => {
            errors.push(error(stage, rule, "expression", e.to_string()));
            None
        }
    }
}

fn compile_filter(
    index: usize,
    spec: &FilterSpec,
    aliases: &[String],
    errors: &mut Vec<RuleError>,
) -> Option<FilterRule> {
    if spec.inputs.is_empty() {
        errors.push(error(
            Stage::Filter,
            index,
            "inputs",
            "a filter rule reads at least one input",
        ));
    }
    let expression = compile_expression(
        Stage::Filter,
        index,
        &spec.expression,
        spec.inputs.len(),
        errors,
    );
    let (inputs, contexts) = compile_inputs(
        Stage::Filter,
        index,
        &spec.inputs,
        Place::RuleInput,
        aliases,
        errors,
    )?;
    Some(FilterRule {
        inputs,
        expression: expression?,
        contexts,
    })
}

fn compile_dataset(
    index: usize,
    spec: &DatasetSpec,
    errors: &mut Vec<RuleError>,
) -> Option<Dataset> {
    let (key, alias) = match spec.key.split_once(" as ") {
        Some((key, alias)) => (key.trim().to_string(), alias.trim().to_string()),
        None => (spec.key.trim().to_string(), spec.key.trim().to_string()),
    };
    if key.is_empty() || alias.is_empty() || alias.contains([' ', '(', ')']) {
        errors.push(error(
            Stage::Datasets,
            index,
            "key",
            format!("`{}` is not `<key>` or `<key> as <alias>`", spec.key),
        ));
        return None;
    }
    if spec.inputs.is_empty() {
        errors.push(error(
            Stage::Datasets,
            index,
            "inputs",
            "a dataset matches on at least one input",
        ));
    }
    let expression = compile_expression(
        Stage::Datasets,
        index,
        &spec.expression,
        spec.inputs.len(),
        errors,
    );
    let (mut inputs, _) = compile_inputs(
        Stage::Datasets,
        index,
        &spec.inputs,
        Place::DatasetInput,
        std::slice::from_ref(&alias),
        errors,
    )?;
    // `$context(<itself>).x` in its own inputs is the record being tested, as `$context.x` is.
    for input in &mut inputs {
        if let Root::Context(_) = input.path.path.root {
            input.path.path.root = Root::DatasetRecord;
        }
    }
    Some(Dataset {
        key,
        alias,
        inputs,
        expression: expression?,
    })
}

fn compile_map(
    index: usize,
    spec: &MapSpec,
    aliases: &[String],
    errors: &mut Vec<RuleError>,
) -> Option<MapRule> {
    let before = errors.len();
    let report = |errors: &mut Vec<RuleError>, field: &str, message: String| {
        errors.push(error(Stage::Map, index, field, message))
    };
    let output_text = spec.output.as_deref().filter(|o| !o.is_empty());
    let output = match output_text {
        None => None,
        Some(text) => match path::parse(text, Place::Output) {
            Ok(p) => Some(p),
            Err(e) => {
                report(errors, "output", e.to_string());
                None
            }
        },
    };
    let compiled = compile_inputs(
        Stage::Map,
        index,
        &spec.inputs,
        Place::RuleInput,
        aliases,
        errors,
    );
    let expression = spec
        .expression
        .as_deref()
        .and_then(|text| compile_expression(Stage::Map, index, text, spec.inputs.len(), errors));
    let (inputs, contexts) = compiled?;
    if errors.len() > before {
        return None;
    }
    let capturing = inputs.iter().position(|i| i.path.path.has_wildcard());
    let removal = output_text.is_none();
    if removal && spec.expression.is_some() {
        report(
            errors,
            "expression",
            "a removal rule (empty `output`) takes no expression".into(),
        );
    }
    if removal && inputs.is_empty() {
        report(
            errors,
            "inputs",
            "a removal rule (empty `output`) names the inputs it removes".into(),
        );
    }
    if let Some(out) = &output {
        if matches!(out.root, Root::Metadata(_)) && out.has_wildcard() {
            report(
                errors,
                "output",
                "a metadata property takes no wildcard".into(),
            );
        }
        match (out.has_wildcard(), capturing) {
            (true, None) => report(
                errors,
                "output",
                "the output has a `*`, but no input captures one".into(),
            ),
            (false, Some(i)) => report(
                errors,
                "output",
                format!(
                    "input {} has a `*`: the output needs a `*` where the captured segment goes",
                    i + 1
                ),
            ),
            _ => {}
        }
        if spec.expression.is_none() && inputs.len() != 1 {
            report(errors, "expression", match inputs.len() {
                0 => "a rule without inputs needs an expression (a new property's value)".into(),
                n => format!("`expression` is required when {n} inputs are combined into one output (concept-dataflow-mapping)"),
            });
        }
    }
    let is_pass_through = inputs.len() == 1
        && inputs[0].path.path.segments == [Segment::Wildcard]
        && inputs[0].path.path.root == Root::Payload
        && output
            .as_ref()
            .is_some_and(|o| o.segments == [Segment::Wildcard] && o.root == Root::Payload)
        && spec.expression.is_none();
    if let Some(kind) = spec.mapping_type {
        let fits = match kind {
            MappingType::PassThrough => is_pass_through,
            MappingType::Rename => inputs.len() == 1 && spec.expression.is_none() && !removal,
            MappingType::Compute => spec.expression.is_some(),
            MappingType::BuiltInFunction => matches!(expression, Some(Expr::Call(..))),
            MappingType::NewProperties => !removal,
        };
        if !fits {
            let what = match kind {
                MappingType::PassThrough => {
                    "PassThrough copies every field: inputs ['*'], output '*', no expression"
                }
                MappingType::Rename => {
                    "Rename copies one input to a new output, without an expression"
                }
                MappingType::Compute => "Compute needs an expression",
                MappingType::BuiltInFunction => {
                    "BuiltInFunction needs an expression that is a function call"
                }
                MappingType::NewProperties => "NewProperties writes an output",
            };
            report(
                errors,
                "type",
                format!("this rule does not do what its type says: {what}"),
            );
        }
    }
    if errors.len() > before {
        return None;
    }
    Some(MapRule {
        inputs,
        output,
        expression,
        capturing,
        contexts,
    })
}

/// What a plan does, one line per rule, for `validate`.
impl Transformation {
    /// The top-level payload field each map rule writes: `Some(field)`, or `None` for a rule
    /// whose output starts with `*` (it may write any field). Removals and metadata outputs
    /// are left out; rules that do not parse too (they were reported).
    pub fn top_level_outputs(spec: &TransformationSpec) -> Vec<(usize, Option<String>)> {
        let mut out = Vec::new();
        for (i, rule) in spec.map.iter().enumerate() {
            let Some(text) = rule.output.as_deref().filter(|o| !o.is_empty()) else {
                continue;
            };
            let Ok(path) = path::parse(text, Place::Output) else {
                continue;
            };
            if path.root != Root::Payload {
                continue;
            }
            match path.segments.first() {
                Some(Segment::Field(name)) => out.push((i, Some(name.clone()))),
                Some(Segment::Wildcard) => out.push((i, None)),
                None => {}
            }
        }
        out
    }

    pub fn describe(spec: &TransformationSpec) -> Vec<String> {
        let mut lines = Vec::new();
        for (i, d) in spec.datasets.iter().enumerate() {
            lines.push(format!(
                "datasets[{i}]  `{}`: the first record where {} (inputs {})",
                d.key,
                d.expression,
                d.inputs.join(", ")
            ));
        }
        for (i, f) in spec.filter.iter().enumerate() {
            if let Some(d) = &f.description {
                lines.push(format!("filter[{i}]    \"{d}\""));
            }
            lines.push(format!(
                "filter[{i}]    drops the message when {} (inputs {})",
                f.expression,
                f.inputs.join(", ")
            ));
        }
        if spec.map.is_empty() {
            lines.push("map          none: the payload goes on as it is".into());
        }
        for (i, m) in spec.map.iter().enumerate() {
            if let Some(d) = &m.description {
                lines.push(format!("map[{i}]       \"{d}\""));
            }
            let output = m.output.as_deref().filter(|o| !o.is_empty());
            lines.push(match (output, &m.expression) {
                (None, _) => format!("map[{i}]       removes {}", m.inputs.join(", ")),
                (Some(o), None) => format!("map[{i}]       {} -> {o}", m.inputs.join(", ")),
                (Some(o), Some(e)) => {
                    format!("map[{i}]       {e} -> {o} (inputs {})", m.inputs.join(", "))
                }
            });
        }
        lines
    }
}
