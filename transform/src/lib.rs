//! The Azure IoT Operations dataflow mapping language, as the documentation writes it
//! (concept-dataflow-mapping, concept-dataflow-conversions, concept-dataflow-enrich,
//! howto-dataflow-filter, concept-dataflow-graphs-expressions): field paths, expressions,
//! `datasets`, `filter` and `map` rules. A transformation is compiled once, when the
//! configuration is read, into a plan; each message is then only walked, never parsed.
//!
//! Stages run in the documented order whatever the order of the configuration: enrich
//! (datasets), filter, map (howto-create-dataflow, "Transformation").

pub mod documented;
mod eval;
pub mod expr;
pub mod functions;
mod json_path;
pub mod path;
mod plan;
pub mod value;

pub use eval::evaluate;
pub use plan::{
    DatasetRecords, DatasetSpec, Failure, FilterSpec, MapSpec, MappingType, Record, RuleError,
    Stage, Transformation, TransformationSpec, Verdict,
};
