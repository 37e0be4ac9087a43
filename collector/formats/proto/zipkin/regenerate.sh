#!/bin/sh
# Regenerates zipkin_pb2.py / .pyi from zipkin.proto with grpcio-tools (run from anywhere).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../../.." && pwd)
cd "$root"
"${PYTHON:-.venv/bin/python}" -m grpc_tools.protoc -I. --python_out=. \
    collector/formats/proto/zipkin/zipkin.proto
# The folder installs as spanlake.collector: give the generated module name that prefix.
sed -i "s/'collector\.formats/'spanlake.collector.formats/" collector/formats/proto/zipkin/zipkin_pb2.py
