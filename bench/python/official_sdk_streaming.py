"""What a user would write with Microsoft's Python Kusto client (azure-kusto-ingest) to do
what `dataflow-host run --input FILE` does for the thermostat table: read JSON Lines, make
each line a row (the table's columns, the topic as MqttTopic), and send the rows as MULTIJSON
over streaming ingestion in batches of 1000, gzip level 1 (the host's default), so that both
sides do the same work. Prints the number of rows sent.

usage: official_sdk_streaming.py CONNECTION_STRING DATABASE TABLE INPUT TOPIC
"""
import gzip
import io
import json
import sys

from azure.kusto.data import KustoConnectionStringBuilder
from azure.kusto.data.data_format import DataFormat
from azure.kusto.ingest import IngestionProperties, KustoStreamingIngestClient, StreamDescriptor

COLUMNS = ("externalAssetId", "assetName", "CurrentTemperature", "Pressure", "Timestamp")
BATCH = 1000


def main() -> None:
    connection_string, database, table, path, topic = sys.argv[1:6]
    client = KustoStreamingIngestClient(KustoConnectionStringBuilder(connection_string))
    properties = IngestionProperties(database=database, table=table, data_format=DataFormat.MULTIJSON)
    rows, sent = [], 0

    def send() -> None:
        body = gzip.compress("\n".join(rows).encode(), compresslevel=1)
        client.ingest_from_stream(StreamDescriptor(io.BytesIO(body), is_compressed=True), ingestion_properties=properties)

    with open(path, encoding="utf-8") as lines:
        for line in lines:
            if not line.strip():
                continue
            payload = json.loads(line)
            row = {column: payload.get(column) for column in COLUMNS}
            row["MqttTopic"] = topic
            rows.append(json.dumps(row))
            if len(rows) == BATCH:
                send()
                sent += len(rows)
                rows.clear()
    if rows:
        send()
        sent += len(rows)
    print(sent)


if __name__ == "__main__":
    main()
