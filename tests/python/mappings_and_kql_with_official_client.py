"""Drives the local endpoint with Microsoft's own Kusto clients (azure-kusto-data and
azure-kusto-ingest), as a user would: creates a table and a JSON ingestion mapping with
management commands, streams records through the mapping with the streaming ingest client,
lists the mappings, then runs each query it is given; prints what it got as JSON.

usage: mappings_and_kql_with_official_client.py CONNECTION_STRING DATABASE QUERIES_JSON
"""
import io
import json
import sys

from azure.kusto.data import KustoClient, KustoConnectionStringBuilder
from azure.kusto.data.exceptions import KustoServiceError
from azure.kusto.data.data_format import DataFormat
from azure.kusto.ingest import IngestionProperties, KustoStreamingIngestClient

RECORDS = [
    {"ts": 1796119210, "device": {"name": "oven-1"}, "temp": 20.5, "bar": 100, "state": "Running OK"},
    {"ts": 1796119250, "device": {"name": "oven-1"}, "temp": 21.5, "bar": 110, "state": "running"},
    {"ts": 1796119280, "device": {"name": "oven-2"}, "temp": 30.0, "state": "Stopped-by-operator"},
    {"ts": 1796119325, "device": {"name": "oven-1"}, "bar": 120, "state": ""},
    {"ts": 1796119350, "device": {"name": "oven-2"}, "temp": 32.0, "bar": 90, "state": "Running"},
]

MAPPING = json.dumps([
    {"Column": "Timestamp", "Properties": {"Path": "$.ts", "Transform": "DateTimeFromUnixSeconds"}},
    {"Column": "assetName", "Properties": {"Path": "$.device.name"}},
    {"Column": "CurrentTemperature", "Properties": {"Path": "$.temp"}},
    {"Column": "Pressure", "Properties": {"Path": "$.bar"}},
    {"Column": "Status", "Properties": {"Path": "$.state"}},
    {"Column": "Site", "Properties": {"ConstValue": "plant-7"}},
])


def main() -> None:
    connection_string, database, queries = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    builder = KustoConnectionStringBuilder(connection_string)
    client = KustoClient(builder)
    client.execute_mgmt(
        database,
        ".create table Ovens (Timestamp: datetime, assetName: string, CurrentTemperature: real, "
        "Pressure: long, Status: string, Site: string)",
    )
    client.execute_mgmt(database, ".alter table Ovens policy streamingingestion enable")
    client.execute_mgmt(database, f".create table Ovens ingestion json mapping 'ovens' '{MAPPING}'")
    mappings = [
        [row["Name"], row["Kind"]]
        for row in client.execute_mgmt(database, ".show table Ovens ingestion mappings").primary_results[0]
    ]

    ingest = KustoStreamingIngestClient(builder)
    data = "\n".join(json.dumps(r) for r in RECORDS)
    properties = IngestionProperties(
        database=database, table="Ovens", data_format=DataFormat.JSON,
        ingestion_mapping_reference="ovens",
    )
    ingest.ingest_from_stream(io.BytesIO(data.encode()), ingestion_properties=properties)

    missing = IngestionProperties(
        database=database, table="Ovens", data_format=DataFormat.JSON,
        ingestion_mapping_reference="no-such-mapping",
    )
    try:
        ingest.ingest_from_stream(io.BytesIO(data.encode()), ingestion_properties=missing)
        missing_error = None
    except KustoServiceError as error:
        missing_error = str(error)

    answers = {}
    for query in queries:
        try:
            answers[query] = [list(row) for row in client.execute(database, query).primary_results[0]]
        except KustoServiceError as error:
            answers[query] = {"error": str(error)}
    print(json.dumps({"mappings": mappings, "missing_mapping": missing_error, "answers": answers}, default=str))


if __name__ == "__main__":
    main()
