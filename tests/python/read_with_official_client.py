"""Reads a table of the local endpoint with Microsoft's own Kusto client (azure-kusto-data),
as a user would after a demo run; prints what it read as JSON for the Rust test to check.

usage: read_with_official_client.py CONNECTION_STRING DATABASE TABLE
(the connection string as `dataflow-host emulator` prints it)
"""
import json
import sys

from azure.kusto.data import KustoClient, KustoConnectionStringBuilder


def main() -> None:
    connection_string, database, table = sys.argv[1:4]
    client = KustoClient(KustoConnectionStringBuilder(connection_string))

    def rows(response):
        return [list(row) for row in response.primary_results[0]]

    result = {
        "count": rows(client.execute(database, f"{table} | count"))[0][0],
        "first": rows(client.execute(database, f"{table} | order by Timestamp asc | take 2")),
        "columns": [
            (c.column_name, c.column_type)
            for c in client.execute(database, f"{table} | take 1").primary_results[0].columns
        ],
        "by_asset": rows(client.execute(database, f"{table} | summarize count() by assetName")),
        "one_asset": rows(
            client.execute(database, f"{table} | where assetName == 'thermostat-01' | count")
        )[0][0],
        "tables": [row["TableName"] for row in client.execute_mgmt(database, ".show tables").primary_results[0]],
        "schema": client.execute_mgmt(database, f".show table {table} schema").primary_results[0][0]["Schema"],
    }
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
