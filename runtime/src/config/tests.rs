//! The documented examples, and a table of bad configurations with their exact messages.

use std::path::PathBuf;

use super::*;

const ENDPOINT_V1BETA1: &str = r#"
apiVersion: connectivity.iotoperations.azure.com/v1beta1
kind: DataflowEndpoint
metadata:
  name: adx
  namespace: azure-iot-operations
spec:
  endpointType: DataExplorer
  dataExplorerSettings:
    host: mycluster.westeurope.kusto.windows.net
    database: telemetry
    authentication:
      method: SystemAssignedManagedIdentity
      systemAssignedManagedIdentitySettings: {}
"#;

const DATAFLOW: &str = r#"
apiVersion: connectivity.iotoperations.azure.com/v1beta1
kind: Dataflow
metadata:
  name: flow
spec:
  profileRef: default
  operations:
    - operationType: Source
      sourceSettings:
        endpointRef: default
        dataSources: ["thermostats/+/telemetry", "$shared/group1/plant/#"]
    - operationType: Destination
      destinationSettings:
        endpointRef: adx
        dataDestination: thermostat
"#;

const TABLE: &str = r#"
apiVersion: dataflow-host/v1
kind: KustoTable
metadata:
  name: thermostat
spec:
  schema: ".create table thermostat (externalAssetId: string, CurrentTemperature: real, MqttTopic: string, Timestamp: datetime)"
  columns:
    - name: MqttTopic
      source: $metadata.topic
"#;

/// Writes `documents` as one file `adx.yaml` in a fresh directory and loads it.
fn load(documents: &[&str]) -> Result<Deployment, Vec<String>> {
    let dir = std::env::temp_dir().join(format!(
        "config-test-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("adx.yaml");
    std::fs::write(&file, documents.join("\n---\n")).unwrap();
    let result = Deployment::load(&[file]).map_err(|problems| {
        let prefix = format!("{}: ", dir.join("adx.yaml").display());
        problems
            .iter()
            .map(|p| p.to_string().replacen(&prefix, "adx.yaml: ", 1))
            .collect()
    });
    std::fs::remove_dir_all(&dir).ok();
    result
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

fn adx(deployment: &Deployment) -> DataExplorerEndpoint {
    match &deployment.endpoint("adx").unwrap().kind {
        EndpointKind::DataExplorer(e) => e.clone(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_documented_v1beta1_example_parses_with_the_documented_defaults() {
    let d = load(&[ENDPOINT_V1BETA1, DATAFLOW, TABLE]).unwrap();
    let e = adx(&d);
    assert_eq!(e.host, "https://mycluster.westeurope.kusto.windows.net");
    assert_eq!(e.database, "telemetry");
    assert_eq!(
        e.authentication,
        Authentication::SystemAssignedManagedIdentity {
            audience: "https://api.kusto.windows.net".into()
        }
    );
    assert_eq!((e.latency_seconds, e.max_messages), (60, 100_000));
    assert_eq!(
        d.dataflows[0].data_sources,
        ["thermostats/+/telemetry", "$shared/group1/plant/#"]
    );
    let plans = d.destination_plans();
    let config = &plans[0].plugin_config;
    let get = |k: &str| {
        config
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(get("table"), Some("thermostat"));
    assert_eq!(get("columns.MqttTopic"), Some("$metadata.topic"));
    assert_eq!(get("batching.latencySeconds"), Some("60"));
}

#[test]
fn the_documented_v1_example_with_user_assigned_identity_and_batching_parses() {
    let endpoint = r#"
apiVersion: connectivity.iotoperations.azure.com/v1
kind: DataflowEndpoint
metadata:
  name: adx
spec:
  endpointType: DataExplorer
  dataExplorerSettings:
    host: https://mycluster.westeurope.kusto.windows.net
    database: telemetry
    authentication:
      method: UserAssignedManagedIdentity
      userAssignedManagedIdentitySettings:
        clientId: 11111111-2222-3333-4444-555555555555
        tenantId: 66666666-7777-8888-9999-000000000000
    batching:
      latencySeconds: 100
      maxMessages: 1000
"#;
    let d = load(&[endpoint, DATAFLOW, TABLE]).unwrap();
    let e = adx(&d);
    assert_eq!(e.host, "https://mycluster.westeurope.kusto.windows.net");
    assert_eq!(
        e.authentication,
        Authentication::UserAssignedManagedIdentity {
            client_id: "11111111-2222-3333-4444-555555555555".into(),
            tenant_id: "66666666-7777-8888-9999-000000000000".into(),
            scope: "https://api.kusto.windows.net/.default".into(),
        }
    );
    assert_eq!((e.latency_seconds, e.max_messages), (100, 1000));
}

#[test]
fn an_audience_override_and_a_column_list_schema_are_read() {
    let endpoint = ENDPOINT_V1BETA1.replace(
        "systemAssignedManagedIdentitySettings: {}",
        "systemAssignedManagedIdentitySettings:\n        audience: https://mycluster.westeurope.kusto.windows.net",
    );
    let table = r#"
apiVersion: dataflow-host/v1
kind: KustoTable
metadata:
  name: thermostat
spec:
  columns:
    - {name: Device, type: string, source: "$.device.id", required: true}
    - {name: At, type: datetime, unit: unixMilliseconds}
    - {name: Site, type: string, constant: plant-7}
  format: csv
"#;
    let d = load(&[&endpoint, DATAFLOW, table]).unwrap();
    assert_eq!(
        adx(&d).authentication,
        Authentication::SystemAssignedManagedIdentity {
            audience: "https://mycluster.westeurope.kusto.windows.net".into()
        }
    );
    let config = &d.destination_plans()[0].plugin_config;
    let expected = [
        (
            "schema",
            ".create table ['thermostat'] (['Device']: string, ['At']: datetime, ['Site']: string)",
        ),
        ("columns.Device", "$.device.id"),
        ("units.At", "unixMilliseconds"),
        ("columns.Site", "$const:plant-7"),
        ("required", "Device"),
        ("format", "csv"),
    ];
    for (key, value) in expected {
        assert!(
            config.contains(&(key.to_string(), value.to_string())),
            "{key}={value} missing from {config:?}"
        );
    }
    // The plugin accepts exactly what the host produced.
    adx_destination::config::DestinationConfig::from_pairs(config).unwrap();
}

#[test]
fn the_examples_directory_validates() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples");
    for example in ["thermostat", "local"] {
        let d =
            Deployment::load(&[root.join(example)]).unwrap_or_else(|p| panic!("{example}: {p:?}"));
        assert_eq!(d.destination_plans().len(), 1);
    }
}

/// (what to change in the valid documents, the exact problem reported)
const BAD: &[(&str, &str, &str)] = &[
    ("host: mycluster.westeurope.kusto.windows.net", "host: <your cluster>.westeurope.kusto.windows.net",
     "adx.yaml: DataflowEndpoint/adx: spec.dataExplorerSettings.host: the placeholder `<your cluster>` was left in: replace it with the real value"),
    ("database: telemetry", "database: <your database>",
     "adx.yaml: DataflowEndpoint/adx: spec.dataExplorerSettings.database: the placeholder `<your database>` was left in: replace it with the real value"),
    ("    database: telemetry\n", "",
     "adx.yaml: DataflowEndpoint/adx: spec.dataExplorerSettings.database: required field is missing"),
    ("host: mycluster.westeurope.kusto.windows.net", "host: example.com",
     "adx.yaml: DataflowEndpoint/adx: spec.dataExplorerSettings.host: `example.com` is not an Azure Data Explorer host (expected <cluster>.<region>.kusto.windows.net or another Kusto domain: .kusto.windows.net, .kustomfa.windows.net, .kusto.usgovcloudapi.net, .kusto.chinacloudapi.cn, .kusto.azuresynapse.net, .kusto.fabric.microsoft.com)"),
    ("host: mycluster.westeurope.kusto.windows.net", "host: http://mycluster.westeurope.kusto.windows.net",
     "adx.yaml: DataflowEndpoint/adx: spec.dataExplorerSettings.host: `http://mycluster.westeurope.kusto.windows.net`: plain http is only for a loopback endpoint; a cluster is reached over https"),
    ("host: mycluster.westeurope.kusto.windows.net", "host: ftp://mycluster.westeurope.kusto.windows.net",
     "adx.yaml: DataflowEndpoint/adx: spec.dataExplorerSettings.host: scheme `ftp` is not https"),
    ("host: mycluster.westeurope.kusto.windows.net", "host: 42",
     "adx.yaml: DataflowEndpoint/adx: spec.dataExplorerSettings.host: expected a string, found a number"),
    ("method: SystemAssignedManagedIdentity", "method: ServicePrincipal",
     "adx.yaml: DataflowEndpoint/adx: spec.dataExplorerSettings.authentication.method: `ServicePrincipal` is not an authentication method for Azure Data Explorer (allowed: SystemAssignedManagedIdentity, UserAssignedManagedIdentity (and DevelopmentToken for a loopback endpoint))"),
    ("method: SystemAssignedManagedIdentity\n      systemAssignedManagedIdentitySettings: {}", "method: UserAssignedManagedIdentity\n      userAssignedManagedIdentitySettings:\n        tenantId: t",
     "adx.yaml: DataflowEndpoint/adx: spec.dataExplorerSettings.authentication.userAssignedManagedIdentitySettings.clientId: required field is missing"),
    ("method: SystemAssignedManagedIdentity\n      systemAssignedManagedIdentitySettings: {}", "method: UserAssignedManagedIdentity\n      userAssignedManagedIdentitySettings:\n        clientId: c",
     "adx.yaml: DataflowEndpoint/adx: spec.dataExplorerSettings.authentication.userAssignedManagedIdentitySettings.tenantId: required field is missing"),
    ("method: SystemAssignedManagedIdentity\n      systemAssignedManagedIdentitySettings: {}", "method: UserAssignedManagedIdentity",
     "adx.yaml: DataflowEndpoint/adx: spec.dataExplorerSettings.authentication.userAssignedManagedIdentitySettings: required field is missing"),
    ("method: SystemAssignedManagedIdentity\n      systemAssignedManagedIdentitySettings: {}", "method: DevelopmentToken\n      developmentTokenSettings: {token: t}",
     "adx.yaml: DataflowEndpoint/adx: spec.dataExplorerSettings.authentication.method: DevelopmentToken is only for a loopback endpoint (http://127.0.0.1:…); a cluster needs a managed identity"),
    ("systemAssignedManagedIdentitySettings: {}", "systemAssignedManagedIdentitySettings: {audiance: x}",
     "adx.yaml: DataflowEndpoint/adx: spec.dataExplorerSettings.authentication.systemAssignedManagedIdentitySettings.audiance: unknown field (did you mean `audience`?)"),
    ("systemAssignedManagedIdentitySettings: {}", "systemAssignedManagedIdentitySettings: {}\n      developmentTokenSettings:\n        token: t",
     "adx.yaml: DataflowEndpoint/adx: spec.dataExplorerSettings.authentication.developmentTokenSettings: settings of DevelopmentToken, and the method is SystemAssignedManagedIdentity"),
    ("    authentication:\n      method: SystemAssignedManagedIdentity\n      systemAssignedManagedIdentitySettings: {}\n", "",
     "adx.yaml: DataflowEndpoint/adx: spec.dataExplorerSettings.authentication: required field is missing"),
    ("    database: telemetry", "    database: telemetry\n    batching:\n      latencySeconds: 70000",
     "adx.yaml: DataflowEndpoint/adx: spec.dataExplorerSettings.batching.latencySeconds: 70000 is outside 0..65535"),
    ("    database: telemetry", "    database: telemetry\n    batching:\n      maxMessages: -1",
     "adx.yaml: DataflowEndpoint/adx: spec.dataExplorerSettings.batching.maxMessages: -1 is outside 0..4294967295"),
    ("    database: telemetry", "    database: telemetry\n    batching:\n      maxMessages: 4294967296",
     "adx.yaml: DataflowEndpoint/adx: spec.dataExplorerSettings.batching.maxMessages: 4294967296 is outside 0..4294967295"),
    ("    database: telemetry", "    database: telemetry\n    batching:\n      latencySeconds: ten",
     "adx.yaml: DataflowEndpoint/adx: spec.dataExplorerSettings.batching.latencySeconds: expected a whole number, found a string"),
    ("    database: telemetry", "    database: telemetry\n    batching:\n      latencySeconds: 1.5",
     "adx.yaml: DataflowEndpoint/adx: spec.dataExplorerSettings.batching.latencySeconds: 1.5 is not a whole number"),
    ("    database: telemetry", "    database: telemetry\n    batching:\n      maxMesages: 5",
     "adx.yaml: DataflowEndpoint/adx: spec.dataExplorerSettings.batching.maxMesages: unknown field (did you mean `maxMessages`?)"),
    ("    database: telemetry", "    database: telemetry\n    databse: other",
     "adx.yaml: DataflowEndpoint/adx: spec.dataExplorerSettings.databse: unknown field (did you mean `database`?)"),
    ("endpointType: DataExplorer", "endpointType: DataExplorr",
     "adx.yaml: DataflowEndpoint/adx: spec.endpointType: `DataExplorr` is not an endpoint type (known: DataExplorer, Mqtt, Kafka, LocalStorage, FabricOneLake, DataLakeStorage, OpenTelemetry)"),
    ("apiVersion: connectivity.iotoperations.azure.com/v1beta1\nkind: DataflowEndpoint", "apiVersion: connectivity.iotoperations.azure.com/v2\nkind: DataflowEndpoint",
     "adx.yaml: DataflowEndpoint/adx: apiVersion: `connectivity.iotoperations.azure.com/v2` is not supported for DataflowEndpoint (supported: connectivity.iotoperations.azure.com/v1beta1, connectivity.iotoperations.azure.com/v1)"),
    ("kind: DataflowEndpoint", "kind: DataflowEndpiont",
     "adx.yaml: DataflowEndpiont/adx: kind: `DataflowEndpiont` is not a resource this host reads (known: DataflowEndpoint, Dataflow, DataflowProfile, KustoTable)"),
    ("  name: adx\n  namespace: azure-iot-operations", "  namespace: azure-iot-operations",
     "adx.yaml: DataflowEndpoint/?: metadata.name: required field is missing"),
    ("endpointRef: adx", "endpointRef: adz",
     "adx.yaml: Dataflow/flow: spec.operations[1].destinationSettings.endpointRef: names no DataflowEndpoint `adz` (did you mean `adx`?)"),
    ("endpointRef: default", "endpointRef: adx",
     "adx.yaml: Dataflow/flow: spec.operations[0].sourceSettings.endpointRef: `adx` is an Azure Data Explorer endpoint: Azure Data Explorer is a destination only"),
    ("dataDestination: thermostat", "dataDestination: thermostats",
     "adx.yaml: Dataflow/flow: spec.operations[1].destinationSettings.dataDestination: no KustoTable `thermostats` gives this table's schema, and no transformation schemaRef does"),
    ("\"thermostats/+/telemetry\"", "\"thermostats/#/telemetry\"",
     "adx.yaml: Dataflow/flow: spec.operations[0].sourceSettings.dataSources[0]: `thermostats/#/telemetry`: `#` must be a whole level and the last one"),
    ("\"thermostats/+/telemetry\"", "\"thermostats/a+/telemetry\"",
     "adx.yaml: Dataflow/flow: spec.operations[0].sourceSettings.dataSources[0]: `thermostats/a+/telemetry`: `+` must be a whole level"),
    ("\"$shared/group1/plant/#\"", "\"$shared/plant\"",
     "adx.yaml: Dataflow/flow: spec.operations[0].sourceSettings.dataSources[1]: `$shared/plant`: a shared subscription is $shared/<group>/<filter>"),
    ("operationType: Destination", "operationType: Sink",
     "adx.yaml: Dataflow/flow: spec.operations[1].operationType: `Sink` is not an operation type (known: Source, BuiltInTransformation, Destination)"),
    ("MqttTopic: string, Timestamp: datetime)", "MqttTopic: strng, Timestamp: datetime)",
     "adx.yaml: KustoTable/thermostat: spec.schema: does not parse: column `MqttTopic`: unknown type `strng` (Kusto types: bool, int, long, real, decimal, string, datetime, timespan, guid, dynamic)"),
    (".create table thermostat (", ".create table other (",
     "adx.yaml: KustoTable/thermostat: spec.schema: creates table `other`, but this resource is `thermostat`"),
    ("    - name: MqttTopic\n      source: $metadata.topic", "    - name: Topic\n      source: $metadata.topic",
     "adx.yaml: KustoTable/thermostat: spec.columns[0].name: the schema has no column `Topic`"),
    ("      source: $metadata.topic", "      source: $metadata.topik",
     "adx.yaml: KustoTable/thermostat: spec.columns[0].source: unknown metadata `$metadata.topik` (known: $metadata.topic, $metadata.user_property.<key>, $metadata.system_property.content_type)"),
    ("      source: $metadata.topic", "      source: $.a..b",
     "adx.yaml: KustoTable/thermostat: spec.columns[0].source: `$.a..b` is not a JSON path (a `.` is not followed by a name)"),
    ("      source: $metadata.topic", "      source: $metadata.topic\n      type: string",
     "adx.yaml: KustoTable/thermostat: spec.columns[0].type: the type comes from spec.schema; give it in one place"),
    ("      source: $metadata.topic", "      source: $metadata.topic\n      unit: fortnights",
     "adx.yaml: KustoTable/thermostat: spec.columns[0].unit: `fortnights` is not a unit (known: unixSeconds, unixMilliseconds, unixMicroseconds, unixNanoseconds)"),
];

/// The garbage of a Dataflow's own fields and its transformation, each refused by path.
const BAD_TRANSFORMATION: &[(&str, &str, &str)] = &[
    ("profileRef: default", "profileRef: 42",
     "adx.yaml: Dataflow/flow: spec.profileRef: expected a string, found a number"),
    ("profileRef: default", "profileRef: defualt",
     "adx.yaml: Dataflow/flow: spec.profileRef: names no DataflowProfile `defualt` (did you mean `default`?)"),
    ("  profileRef: default\n", "",
     "adx.yaml: Dataflow/flow: spec.profileRef: required field is missing (the profile Azure IoT Operations creates is `default`)"),
    ("mode: Enabled", "mode: Bogus",
     "adx.yaml: Dataflow/flow: spec.mode: `Bogus` is neither Enabled nor Disabled"),
    ("profileRef: default", "profileRef: default\n  requestDiskPersistence: Maybe",
     "adx.yaml: Dataflow/flow: spec.requestDiskPersistence: `Maybe` is neither Enabled nor Disabled"),
    ("profileRef: default", "profileRef: default\n  frobnicate: true",
     "adx.yaml: Dataflow/flow: spec.frobnicate: unknown field (known fields: profileRef, mode, operations, requestDiskPersistence)"),
    ("        map:\n", "        map: \"not even a list\"\n        unused:\n",
     "adx.yaml: Dataflow/flow: spec.operations[1].builtInTransformationSettings.map: expected a list, found a string"),
    ("        map:\n", "        frobnicate: true\n        map:\n",
     "adx.yaml: Dataflow/flow: spec.operations[1].builtInTransformationSettings.frobnicate: unknown field (known fields: serializationFormat, schemaRef, datasets, filter, map)"),
    ("expression: '$1 * $2 < 100000'", "expression: '$1 * * $2'",
     "adx.yaml: Dataflow/flow: spec.operations[1].builtInTransformationSettings.filter[0].expression: column 6: expected a value, found `*`"),
    ("expression: cToF($1)", "expression: cToFF($1)",
     "adx.yaml: Dataflow/flow: spec.operations[1].builtInTransformationSettings.map[1].expression: column 1: `cToFF` is not a function (did you mean `cToF`?)"),
    ("output: 'Humidity'", "output: 'Humidity'\n            outptu: x",
     "adx.yaml: Dataflow/flow: spec.operations[1].builtInTransformationSettings.map[2].outptu: unknown field (did you mean `output`?)"),
    ("              - temperature.Value\n            output: TemperatureF", "              - temperature..Value\n            output: TemperatureF",
     "adx.yaml: Dataflow/flow: spec.operations[1].builtInTransformationSettings.map[1].inputs[0]: column 13: empty segment (two dots in a row, or a dot at an end)"),
    ("        map:\n", "        schemaRef: aio-sr://ns/thermostat:1\n        map:\n",
     "adx.yaml: Dataflow/flow: spec.operations[1].builtInTransformationSettings.schemaRef: aio-sr://ns/thermostat:1 is in the schema registry: give its directory with --schema-registry DIR (the schema is DIR/ns/thermostat/1.json)"),
    ("        map:\n", "        serializationFormat: Parquet\n        map:\n",
     "adx.yaml: Dataflow/flow: spec.operations[1].builtInTransformationSettings.serializationFormat: `Parquet` writes files for storage endpoints; this host ingests JSON rows into Azure Data Explorer by streaming ingestion, with the table's columns from its KustoTable resource: leave serializationFormat out, or write Json"),
    ("            output: 'Humidity'", "            output: 'Humidity'\n            type: Renamed",
     "adx.yaml: Dataflow/flow: spec.operations[1].builtInTransformationSettings.map[2].type: `Renamed` is not a map rule type (known: NewProperties, Rename, Compute, PassThrough, BuiltInFunction)"),
    ("        dataSources: [\"thermostats/+/telemetry\"]", "        dataSources: [\"thermostats/+/telemetry\"]\n        assetRef: thermostat-1",
     "adx.yaml: Dataflow/flow: spec.operations[0].sourceSettings.assetRef: this host does not read assets from Azure Device Registry: name the asset's MQTT topics in dataSources"),
    ("    - operationType: Destination", "    - operationType: Source\n      sourceSettings: {endpointRef: default, dataSources: [a]}\n    - operationType: Destination",
     "adx.yaml: Dataflow/flow: spec.operations[2].operationType: a second Source operation: a dataflow has one"),
];

/// howto-create-dataflow's "Example" dataflow (the thermostat, `operationType:
/// builtInTransformation` as the page writes it), into the ADX table instead of MQTT.
const THERMOSTAT_DATAFLOW: &str = r#"
apiVersion: connectivity.iotoperations.azure.com/v1
kind: Dataflow
metadata:
  name: flow
  namespace: azure-iot-operations
spec:
  profileRef: default
  mode: Enabled
  operations:
    - operationType: Source
      sourceSettings:
        endpointRef: default
        dataSources: ["thermostats/+/telemetry"]
    - operationType: builtInTransformation
      builtInTransformationSettings:
        filter:
          - inputs:
              - 'temperature.Value'
              - '"Tag 10".Value'
            expression: '$1 * $2 < 100000'
        map:
          - inputs:
              - '*'
            output: '*'
          - inputs:
              - temperature.Value
            output: TemperatureF
            expression: cToF($1)
          - inputs:
              - '"Tag 10".Value'
            output: 'Humidity'
    - operationType: Destination
      destinationSettings:
        endpointRef: adx
        dataDestination: thermostat
"#;

/// The table the thermostat transformation writes.
const THERMOSTAT_TABLE: &str = r#"
apiVersion: dataflow-host/v1
kind: KustoTable
metadata:
  name: thermostat
spec:
  schema: ".create table thermostat (TemperatureF: real, Humidity: real, MqttTopic: string)"
  columns:
    - name: MqttTopic
      source: $metadata.topic
"#;

#[test]
fn the_documented_thermostat_transformation_loads_and_compiles() {
    let deployment = load(&[ENDPOINT_V1BETA1, THERMOSTAT_DATAFLOW, THERMOSTAT_TABLE]).unwrap();
    let flow = &deployment.dataflows[0];
    assert!(flow.enabled);
    assert_eq!(flow.profile, "default");
    let transformation = flow
        .transformation
        .as_ref()
        .expect("the transformation is read");
    assert_eq!(
        (
            transformation.spec.filter.len(),
            transformation.spec.map.len()
        ),
        (1, 3)
    );
    assert_eq!(
        transformation.path,
        "spec.operations[1].builtInTransformationSettings"
    );
    assert!(!transformation.compile().is_empty());
}

#[test]
fn every_bad_transformation_is_reported_with_its_exact_message() {
    let valid = [ENDPOINT_V1BETA1, THERMOSTAT_DATAFLOW, THERMOSTAT_TABLE].join("\n---\n");
    assert_each_refused(&valid, BAD_TRANSFORMATION);
}

/// Each (from, to, expected) of `table`: `valid` with `from` changed to `to` is refused with
/// exactly `expected` among its problems.
fn assert_each_refused(valid: &str, table: &[(&str, &str, &str)]) {
    for (from, to, expected) in table {
        assert!(
            valid.contains(from),
            "the valid documents do not contain {from:?}"
        );
        let changed = valid.replacen(from, to, 1);
        match load(&[&changed]) {
            Ok(_) => panic!("accepted: {to}"),
            Err(problems) => assert!(
                problems.iter().any(|p| p == expected),
                "changing {from:?} to {to:?}\nexpected: {expected}\nreported: {problems:#?}"
            ),
        }
    }
}

/// The early v1beta1 pages write `mode: enabled` and lower-case operation types
/// (howto-create-dataflow, August 2024); a Disabled dataflow loads and is marked so.
#[test]
fn v1beta1_casings_and_mode() {
    let lower = THERMOSTAT_DATAFLOW
        .replace("mode: Enabled", "mode: disabled")
        .replace("operationType: Source", "operationType: source")
        .replace("operationType: Destination", "operationType: destination");
    let deployment = load(&[ENDPOINT_V1BETA1, &lower, THERMOSTAT_TABLE]).unwrap();
    assert!(!deployment.dataflows[0].enabled);
    assert!(deployment.dataflows[0].transformation.is_some());
}

/// howto-configure-dataflow-profile: the default profile as documented, a profile with two
/// instances, and the documented diagnostics (refused, with where to set them instead).
#[test]
fn dataflow_profiles() {
    let profile = |spec: &str| {
        format!("apiVersion: connectivity.iotoperations.azure.com/v1\nkind: DataflowProfile\nmetadata:\n  name: scaled\n  namespace: azure-iot-operations\nspec:\n{spec}")
    };
    let flow = THERMOSTAT_DATAFLOW.replace("profileRef: default", "profileRef: scaled");
    let deployment = load(&[
        ENDPOINT_V1BETA1,
        &flow,
        THERMOSTAT_TABLE,
        &profile("  instanceCount: 2\n"),
    ])
    .unwrap();
    assert_eq!(deployment.profile("scaled").unwrap().instance_count, 2);
    assert_eq!(deployment.profile("default").unwrap().instance_count, 1);
    let default = "apiVersion: connectivity.iotoperations.azure.com/v1\nkind: DataflowProfile\nmetadata:\n  name: default\n  namespace: azure-iot-operations\nspec:\n  instanceCount: 1\n";
    load(&[
        ENDPOINT_V1BETA1,
        THERMOSTAT_DATAFLOW,
        THERMOSTAT_TABLE,
        default,
    ])
    .unwrap();
    let problems = load(&[
        ENDPOINT_V1BETA1,
        &flow,
        THERMOSTAT_TABLE,
        &profile("  instanceCount: 21\n"),
    ])
    .unwrap_err();
    assert_eq!(
        problems,
        ["adx.yaml: DataflowProfile/scaled: spec.instanceCount: 21 is outside 1..20"]
    );
    let problems = load(&[
        ENDPOINT_V1BETA1,
        &flow,
        THERMOSTAT_TABLE,
        &profile("  instanceCount: 1\n  diagnostics:\n    logs:\n      level: debug\n"),
    ])
    .unwrap_err();
    assert!(problems[0].starts_with("adx.yaml: DataflowProfile/scaled: spec.diagnostics: this host does not take its log level"), "{problems:?}");
}

#[test]
fn every_bad_configuration_is_reported_with_its_exact_message() {
    let valid = [ENDPOINT_V1BETA1, DATAFLOW, TABLE].join("\n---\n");
    assert!(BAD.len() >= 25);
    assert_each_refused(&valid, BAD);
}

#[test]
fn every_problem_is_reported_at_once() {
    let valid = [ENDPOINT_V1BETA1, DATAFLOW, TABLE].join("\n---\n");
    let broken = valid
        .replacen("database: telemetry", "database: <db>", 1)
        .replacen("endpointRef: adx", "endpointRef: nope", 1)
        .replacen(
            "MqttTopic: string, Timestamp",
            "MqttTopic: strin, Timestamp",
            1,
        );
    let problems = load(&[&broken]).unwrap_err();
    assert_eq!(problems.len(), 3, "{problems:#?}");
}

#[test]
fn yaml_that_does_not_parse_names_the_file() {
    let problems = load(&["kind: [unclosed"]).unwrap_err();
    assert!(
        problems[0].starts_with("adx.yaml: not valid YAML: "),
        "{problems:?}"
    );
}

const BROKER: &str = r#"
apiVersion: connectivity.iotoperations.azure.com/v1
kind: DataflowEndpoint
metadata:
  name: plant-broker
spec:
  endpointType: Mqtt
  mqttSettings:
    host: 127.0.0.1:2883
    clientIdPrefix: edge1
    maxInflightMessages: 5000
    sessionExpirySeconds: 600
    tls:
      mode: Disabled
    authentication:
      method: Anonymous
"#;

#[test]
fn a_broker_endpoint_gives_the_source_of_the_plan() {
    let dataflow = DATAFLOW.replace("endpointRef: default", "endpointRef: plant-broker");
    let deployment = load(&[ENDPOINT_V1BETA1, BROKER, &dataflow, TABLE]).unwrap();
    let plans = deployment.destination_plans();
    let source = plans[0].source.as_ref().unwrap();
    assert_eq!((source.host.as_str(), source.port), ("127.0.0.1", 2883));
    assert_eq!(source.max_inflight_messages, 5000);
    assert_eq!(source.session_expiry_seconds, 600);
    assert_eq!(source.client_id_prefix.as_deref(), Some("edge1"));
    let builtin = load(&[ENDPOINT_V1BETA1, DATAFLOW, TABLE]).unwrap();
    assert_eq!(builtin.destination_plans()[0].source, None);
}

#[test]
fn broker_settings_this_host_cannot_honour_are_each_reported() {
    let broker = BROKER
        .replace("host: 127.0.0.1:2883", "host: 127.0.0.1:port")
        .replace(
            "maxInflightMessages: 5000",
            "maxInflightMessages: 70000\n    qos: 0",
        )
        .replace("mode: Disabled", "mode: Enabled")
        .replace("method: Anonymous", "method: X509Certificate");
    let problems = load(&[broker.as_str()]).unwrap_err();
    assert_eq!(
        problems,
        vec![
            "adx.yaml: DataflowEndpoint/plant-broker: spec.mqttSettings.host: `127.0.0.1:port`: the port `port` is not a number 1..65535",
            "adx.yaml: DataflowEndpoint/plant-broker: spec.mqttSettings.maxInflightMessages: 70000 is outside 1..65535",
            "adx.yaml: DataflowEndpoint/plant-broker: spec.mqttSettings.qos: this host reads with QoS 1 only (at least once): QoS 0 can lose messages",
            "adx.yaml: DataflowEndpoint/plant-broker: spec.mqttSettings.authentication.x509CertificateSettings: required field is missing",
        ]
    );
}

/// The default endpoint as howto-configure-mqtt-endpoint describes it ("Host:
/// `aio-broker:18883` … TLS: Enabled … Trusted CA certificate: … azure-iot-operations-aio-ca-
/// trust-bundle", service account token authentication with audience `aio-internal`).
const DEFAULT_ENDPOINT: &str = r#"
apiVersion: connectivity.iotoperations.azure.com/v1
kind: DataflowEndpoint
metadata:
  name: default
  namespace: azure-iot-operations
spec:
  endpointType: Mqtt
  mqttSettings:
    host: aio-broker:18883
    authentication:
      method: ServiceAccountToken
      serviceAccountTokenSettings:
        audience: aio-internal
    tls:
      mode: Enabled
      trustedCaCertificateConfigMapRef: azure-iot-operations-aio-ca-trust-bundle
"#;

fn broker_of(endpoint: &str) -> Result<MqttEndpoint, Vec<String>> {
    let deployment = load(&[endpoint])?;
    match &deployment.endpoints[0].kind {
        EndpointKind::Mqtt(mqtt) => Ok(mqtt.clone()),
        other => panic!("not an MQTT endpoint: {other:?}"),
    }
}

#[test]
fn the_documented_default_endpoint_is_tls_with_the_trust_bundle_and_a_service_account_token() {
    let broker = broker_of(DEFAULT_ENDPOINT).unwrap();
    assert_eq!((broker.host.as_str(), broker.port), ("aio-broker", 18883));
    assert_eq!(
        broker.tls,
        Some(MqttTls {
            trusted_ca_config_map: Some("azure-iot-operations-aio-ca-trust-bundle".into())
        })
    );
    assert_eq!(
        broker.authentication,
        MqttAuthentication::ServiceAccountToken {
            audience: "aio-internal".into()
        }
    );
    // Left out, `tls` is Enabled (the API's default mode) and `authentication` is a service
    // account token for aio-internal (the API reference: "DEFAULT:
    // kubernetes.audience=aio-internal").
    let bare = DEFAULT_ENDPOINT
        .split("    authentication:")
        .next()
        .unwrap();
    let broker = broker_of(bare).unwrap();
    assert_eq!(
        broker.tls,
        Some(MqttTls {
            trusted_ca_config_map: None
        })
    );
    assert_eq!(
        broker.authentication,
        MqttAuthentication::ServiceAccountToken {
            audience: "aio-internal".into()
        }
    );
}

#[test]
fn every_documented_broker_authentication_is_read_with_its_settings() {
    let with = |auth: &str| {
        let endpoint = DEFAULT_ENDPOINT.replace(
            "    authentication:\n      method: ServiceAccountToken\n      serviceAccountTokenSettings:\n        audience: aio-internal\n",
            auth,
        );
        broker_of(&endpoint).map(|b| b.authentication)
    };
    let cases: Vec<(&str, Result<MqttAuthentication, Vec<String>>)> = vec![
        ("    authentication:\n      method: Anonymous\n      anonymousSettings:\n        {}\n",
         Ok(MqttAuthentication::Anonymous)),
        ("    authentication:\n      method: ServiceAccountToken\n      serviceAccountTokenSettings: {}\n",
         Ok(MqttAuthentication::ServiceAccountToken { audience: "aio-internal".into() })),
        ("    authentication:\n      method: X509Certificate\n      x509CertificateSettings:\n        secretRef: my-x509\n",
         Ok(MqttAuthentication::X509Certificate { secret: "my-x509".into() })),
        // Event Grid's audience and scope when none is given (howto-configure-mqtt-endpoint).
        ("    authentication:\n      method: SystemAssignedManagedIdentity\n      systemAssignedManagedIdentitySettings:\n        {}\n",
         Ok(MqttAuthentication::ManagedIdentity(Authentication::SystemAssignedManagedIdentity {
             audience: "https://eventgrid.azure.net".into() }))),
        ("    authentication:\n      method: UserAssignedManagedIdentity\n      userAssignedManagedIdentitySettings:\n        clientId: c\n        tenantId: t\n",
         Ok(MqttAuthentication::ManagedIdentity(Authentication::UserAssignedManagedIdentity {
             client_id: "c".into(), tenant_id: "t".into(), scope: "https://eventgrid.azure.net/.default".into() }))),
        ("    authentication:\n      method: Anonymous\n      anonymousSettings:\n        user: me\n",
         Err(vec!["adx.yaml: DataflowEndpoint/default: spec.mqttSettings.authentication.anonymousSettings.user: unknown field (this mapping takes no fields: `{}`)".into()])),
        ("    authentication:\n      method: Anonymous\n      serviceAccountTokenSettings:\n        audience: aio-internal\n",
         Err(vec!["adx.yaml: DataflowEndpoint/default: spec.mqttSettings.authentication.serviceAccountTokenSettings: settings of ServiceAccountToken, and the method is Anonymous".into()])),
        ("    authentication:\n      method: Kerberos\n",
         Err(vec!["adx.yaml: DataflowEndpoint/default: spec.mqttSettings.authentication.method: `Kerberos` is not an authentication method for an MQTT broker (allowed: Anonymous, ServiceAccountToken, X509Certificate, SystemAssignedManagedIdentity, UserAssignedManagedIdentity)".into()])),
    ];
    for (auth, expected) in cases {
        assert_eq!(with(auth), expected, "{auth}");
    }
}

#[test]
fn tls_settings_that_cannot_both_hold_are_refused() {
    let plain = DEFAULT_ENDPOINT.replace("mode: Enabled", "mode: Disabled");
    assert_eq!(
        broker_of(&plain).unwrap_err(),
        vec!["adx.yaml: DataflowEndpoint/default: spec.mqttSettings.tls.trustedCaCertificateConfigMapRef: a trusted CA is for TLS, and `mode` is `Disabled`: enable TLS or remove the reference"]
    );
    let x509_without_tls = DEFAULT_ENDPOINT
        .replace("      trustedCaCertificateConfigMapRef: azure-iot-operations-aio-ca-trust-bundle\n", "")
        .replace("mode: Enabled", "mode: Disabled")
        .replace("method: ServiceAccountToken\n      serviceAccountTokenSettings:\n        audience: aio-internal", "method: X509Certificate\n      x509CertificateSettings:\n        secretRef: s");
    assert_eq!(
        broker_of(&x509_without_tls).unwrap_err(),
        vec!["adx.yaml: DataflowEndpoint/default: spec.mqttSettings.authentication.method: X509Certificate authenticates in the TLS handshake: it needs `tls.mode: Enabled`"]
    );
    let bogus = DEFAULT_ENDPOINT.replace("mode: Enabled", "mode: Strict");
    assert_eq!(
        broker_of(&bogus).unwrap_err(),
        vec!["adx.yaml: DataflowEndpoint/default: spec.mqttSettings.tls.mode: `Strict` is not a TLS mode (Enabled or Disabled)"]
    );
}

/// A schema registry directory with the thermostat's output schema, as concept-schema-registry
/// writes a Delta schema; `load` with it.
fn load_with_registry(documents: &[&str], schema: Option<&str>) -> Result<Deployment, Vec<String>> {
    let dir = std::env::temp_dir().join(format!(
        "registry-test-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(dir.join("plant/thermostat-out")).unwrap();
    if let Some(schema) = schema {
        std::fs::write(dir.join("plant/thermostat-out/1.json"), schema).unwrap();
    }
    let file = dir.join("adx.yaml");
    std::fs::write(&file, documents.join("\n---\n")).unwrap();
    let result = Deployment::load_with(&[file], Some(&dir)).map_err(|problems| {
        let prefix = format!("{}: ", dir.join("adx.yaml").display());
        problems
            .iter()
            .map(|p| {
                p.to_string()
                    .replacen(&prefix, "adx.yaml: ", 1)
                    .replace(&dir.display().to_string(), "REGISTRY")
            })
            .collect()
    });
    std::fs::remove_dir_all(&dir).ok();
    result
}

const THERMOSTAT_DELTA: &str = r#"{"$schema": "Delta/1.0", "type": "object", "properties": {"type": "struct", "fields": [
    { "name": "TemperatureF", "type": "double", "nullable": false, "metadata": {} },
    { "name": "Humidity", "type": "double", "nullable": true, "metadata": {} }]}}"#;

fn with_schema_ref(dataflow: &str) -> String {
    dataflow.replacen("        filter:\n", "        serializationFormat: Json\n        schemaRef: aio-sr://plant/thermostat-out:1\n        filter:\n", 1)
}

/// howto-configure-adx-endpoint: the output schema "must match the table schema". With no
/// KustoTable, the schema is the table: its fields become the columns, the non-nullable ones
/// required.
#[test]
fn an_output_schema_from_the_registry_is_the_table() {
    let flow = with_schema_ref(THERMOSTAT_DATAFLOW);
    let deployment =
        load_with_registry(&[ENDPOINT_V1BETA1, &flow], Some(THERMOSTAT_DELTA)).unwrap();
    let plans = deployment.destination_plans();
    let setting = |key: &str| {
        plans[0]
            .plugin_config
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(
        setting("schema").as_deref(),
        Some(".create table ['thermostat'] (['TemperatureF']: real, ['Humidity']: real)")
    );
    assert_eq!(setting("required").as_deref(), Some("TemperatureF"));
    // Beside a KustoTable that agrees (thermostat: TemperatureF and Humidity as real).
    let table = "apiVersion: dataflow-host/v1\nkind: KustoTable\nmetadata:\n  name: thermostat\nspec:\n  schema: \".create table thermostat (TemperatureF: real, Humidity: real, MqttTopic: string)\"\n  columns:\n    - name: MqttTopic\n      source: $metadata.topic\n";
    let problems =
        load_with_registry(&[ENDPOINT_V1BETA1, &flow, table], Some(THERMOSTAT_DELTA)).unwrap_err();
    assert_eq!(problems, ["adx.yaml: Dataflow/flow: spec.operations[1].builtInTransformationSettings.schemaRef: KustoTable thermostat has a column `MqttTopic` that aio-sr://plant/thermostat-out:1 has no field for"]);
    let wrong_type = table
        .replace("Humidity: real", "Humidity: long")
        .replace(", MqttTopic: string", "")
        .replace(
            "  columns:\n    - name: MqttTopic\n      source: $metadata.topic\n",
            "",
        );
    let problems = load_with_registry(
        &[ENDPOINT_V1BETA1, &flow, &wrong_type],
        Some(THERMOSTAT_DELTA),
    )
    .unwrap_err();
    assert_eq!(problems, ["adx.yaml: Dataflow/flow: spec.operations[1].builtInTransformationSettings.schemaRef: aio-sr://plant/thermostat-out:1 makes `Humidity` a real column, and KustoTable thermostat a long one"]);
}

#[test]
fn schema_references_that_do_not_resolve_are_refused() {
    let flow = with_schema_ref(THERMOSTAT_DATAFLOW);
    let problems = load(&[ENDPOINT_V1BETA1, &flow]).unwrap_err();
    assert_eq!(problems, ["adx.yaml: Dataflow/flow: spec.operations[1].builtInTransformationSettings.schemaRef: aio-sr://plant/thermostat-out:1 is in the schema registry: give its directory with --schema-registry DIR (the schema is DIR/plant/thermostat-out/1.json)"]);
    let problems = load_with_registry(&[ENDPOINT_V1BETA1, &flow], None).unwrap_err();
    assert!(
        problems[0]
            .contains("aio-sr://plant/thermostat-out:1 is not in the schema registry REGISTRY"),
        "{problems:?}"
    );
    let bad = flow.replace(
        "aio-sr://plant/thermostat-out:1",
        "aio-sr://thermostat-out:1",
    );
    let problems =
        load_with_registry(&[ENDPOINT_V1BETA1, &bad], Some(THERMOSTAT_DELTA)).unwrap_err();
    assert!(problems[0].ends_with("schemaRef: `aio-sr://thermostat-out:1` names no namespace: the form is aio-sr://<namespace>/<name>:<version>"), "{problems:?}");
}

/// "A schema that does not match what the map produces" is refused, not a null column: a
/// map output no column reads, and, without a pass-through, a column no rule writes.
#[test]
fn the_map_and_the_table_must_agree() {
    let no_pass_through = THERMOSTAT_DATAFLOW.replacen(
        "          - inputs:\n              - '*'\n            output: '*'\n",
        "",
        1,
    );
    let renamed = no_pass_through.replace("output: TemperatureF", "output: TempF");
    let problems = load_with_registry(
        &[ENDPOINT_V1BETA1, &with_schema_ref(&renamed)],
        Some(THERMOSTAT_DELTA),
    )
    .unwrap_err();
    assert_eq!(problems, [
        "adx.yaml: Dataflow/flow: spec.operations[1].builtInTransformationSettings.map[0].output: writes `TempF`, which no column of table thermostat reads (columns: TemperatureF, Humidity): it would be computed and thrown away",
        "adx.yaml: Dataflow/flow: spec.operations[1].builtInTransformationSettings.map: no rule writes `TemperatureF`, which column `TemperatureF` of table thermostat reads: it would be null in every row (map it, or pass everything through with '*' -> '*')",
    ]);
    // The same against a KustoTable: externalAssetId and CurrentTemperature are written by no rule.
    let problems = load(&[ENDPOINT_V1BETA1, &no_pass_through, TABLE]).unwrap_err();
    assert!(
        problems
            .iter()
            .any(|p| p.contains("no rule writes `externalAssetId`")),
        "{problems:#?}"
    );
    assert!(problems.iter().any(|p| p.contains("writes `TemperatureF`, which no column of table thermostat reads")), "{problems:#?}");
    // With the pass-through, the documented example loads (TemperatureF and Humidity are columns).
    load_with_registry(
        &[ENDPOINT_V1BETA1, &with_schema_ref(THERMOSTAT_DATAFLOW)],
        Some(THERMOSTAT_DELTA),
    )
    .unwrap();
}

/// Every complete Dataflow and DataflowProfile example of howto-create-dataflow,
/// howto-configure-dataflow-profile and howto-configure-adx-endpoint, verbatim
/// (config/documented/), through `validate` beside an ADX endpoint: accepted, or refused
/// with the reason.
#[test]
fn the_documented_examples_are_accepted_or_refused_with_the_reason() {
    let examples: &[(&str, &str, &[&str])] = &[
        ("D1", include_str!("documented/D1.yaml"), &["adx.yaml: Dataflow/?: metadata.name: the placeholder `<DATAFLOW_NAME>` was left in: replace it with the real value"]),
        ("D2", include_str!("documented/D2.yaml"), &["adx.yaml: Dataflow/?: metadata.name: the placeholder `<DATAFLOW_NAME>` was left in: replace it with the real value"]),
        ("D3", include_str!("documented/D3.yaml"), &["adx.yaml: Dataflow/my-dataflow: spec.operations[2].destinationSettings.endpointRef: `default` is Azure IoT Operations' local MQTT broker: this host runs dataflows into Azure Data Explorer (a DataflowEndpoint with endpointType DataExplorer)"]),
        ("D5", include_str!("documented/D5.yaml"), &[
            "adx.yaml: Dataflow/my-dataflow: spec.operations[0].sourceSettings.endpointRef: names no DataflowEndpoint `mq` (endpoints: adx)",
            "adx.yaml: Dataflow/my-dataflow: spec.operations[2].destinationSettings.endpointRef: names no DataflowEndpoint `mq` (endpoints: adx)",
        ]),
        ("D6", include_str!("documented/D6.yaml"), &[
            "adx.yaml: Dataflow/my-dataflow: spec.profileRef: names no DataflowProfile `my-dataflow-profile` (profiles: default)",
            "adx.yaml: Dataflow/my-dataflow: spec.operations[0].sourceSettings.endpointRef: names no DataflowEndpoint `mq` (endpoints: adx)",
            "adx.yaml: Dataflow/my-dataflow: spec.operations[2].destinationSettings.endpointRef: names no DataflowEndpoint `kafka` (endpoints: adx)",
        ]),
        ("D7", include_str!("documented/D7.yaml"), &["adx.yaml: Dataflow/mq-to-kafka: spec.operations: no Destination operation"]),
        ("D8", include_str!("documented/D8.yaml"), &[
            "adx.yaml: Dataflow/my-dataflow: spec.operations[0].sourceSettings.endpointRef: names no DataflowEndpoint `mq` (endpoints: adx)",
            "adx.yaml: Dataflow/my-dataflow: spec.operations[1].destinationSettings.dataDestination: no KustoTable `database-name` gives this table's schema, and no transformation schemaRef does",
        ]),
        ("D9", include_str!("documented/D9.yaml"), &["adx.yaml: not valid YAML: while scanning an anchor or alias, did not find expected alphabetic or numeric character at line 31, column 11"]),
        ("P1", include_str!("documented/P1.yaml"), &[]),
        ("P2", include_str!("documented/P2.yaml"), &["adx.yaml: DataflowProfile/?: metadata.name: the placeholder `<NAME>` was left in: replace it with the real value"]),
        ("P3", include_str!("documented/P3.yaml"), &["adx.yaml: DataflowProfile/?: metadata.name: the placeholder `<NAME>` was left in: replace it with the real value"]),
        ("P4", include_str!("documented/P4.yaml"), &[]),
    ];
    for (name, text, expected) in examples {
        match load(&[ENDPOINT_V1BETA1, text]) {
            Ok(_) => assert!(
                expected.is_empty(),
                "{name} was accepted; expected {expected:#?}"
            ),
            Err(problems) => assert_eq!(&problems, expected, "{name}"),
        }
    }
    // D6 as it would be with its endpoints and profile declared: the lower-case
    // `mode: enabled`, `operationType: source` and `serializationFormat: json` are read.
    let d6 = include_str!("documented/D6.yaml")
        .replace("endpointRef: mq", "endpointRef: default")
        .replace("endpointRef: kafka", "endpointRef: adx")
        .replace("dataDestination: factory", "dataDestination: thermostat")
        .replace("profileRef: my-dataflow-profile", "profileRef: default")
        .replace("output: 'Tag 10'", "output: Humidity");
    let deployment = load(&[ENDPOINT_V1BETA1, &d6, THERMOSTAT_TABLE]).unwrap();
    assert!(deployment.dataflows[0].enabled && deployment.dataflows[0].transformation.is_some());
    assert_eq!(
        deployment.dataflows[0].operation_names,
        [
            "operations[0]: my-source",
            "operations[1]: my-transformation",
            "operations[2]: my-destination"
        ]
    );
    assert!(deployment.describe().contains(&"  names        operations[0]: my-source, operations[1]: my-transformation, operations[2]: my-destination".to_string()));
}
