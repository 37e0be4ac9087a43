#!/usr/bin/env bash
# Regenerate the Python protobuf / gRPC modules from the .proto files in this directory.
# Needs grpcio-tools (pip install grpcio-tools). Run from anywhere.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
python="${PYTHON:-$root/.venv/bin/python}"
cd "$root"
# Paths are relative to the repository root; the folder installs as spanlake.collector, so the
# generated imports and module names get the spanlake. prefix afterwards.
"$python" -m grpc_tools.protoc -I . \
  --python_out=. --pyi_out=. --grpc_python_out=. \
  collector/formats/proto/model.proto \
  collector/formats/proto/collector.proto \
  collector/formats/proto/sampling.proto
# protobuf ships no type information for its base classes, so mypy --strict flags every generated
# class in the stubs ("cannot subclass Message"); the stubs still type our callers' field access.
sed -i -E "s/^from collector\./from spanlake.collector./; s/'collector\.formats/'spanlake.collector.formats/" \
  collector/formats/proto/*_pb2.py collector/formats/proto/*_pb2_grpc.py
for stub in collector/formats/proto/*_pb2.pyi; do
  sed -i '1i # mypy: ignore-errors' "$stub"
done
