"""Running the OpenTelemetry Zipkin protobuf exporter in a subprocess.

The exporter ships protobuf-3-era generated code that today's protobuf runtime refuses to load. The
prelude rebuilds that module from the exporter's own serialized ``zipkin.proto`` descriptor with the
current runtime; the exporter's encoding code then runs unchanged. A test appends its own script body
(which reads the endpoint from ``sys.argv[1]``) and runs ``python -c`` on the result.
"""

from __future__ import annotations

import textwrap

PRELUDE = textwrap.dedent("""
    import ast, re, sys, types
    from importlib.metadata import distribution
    from google.protobuf import descriptor_pool
    from google.protobuf.internal import builder

    name = "opentelemetry.exporter.zipkin.proto.http.v2.gen.zipkin_pb2"
    files = distribution("opentelemetry-exporter-zipkin-proto-http").files
    source = next(f for f in files if str(f).endswith("gen/zipkin_pb2.py")).read_text()
    serialized = ast.literal_eval(re.search(r"serialized_pb=(b'.*?')\\s*\\n", source).group(1))
    module = types.ModuleType(name)
    module.DESCRIPTOR = descriptor_pool.Default().AddSerializedFile(serialized)
    builder.BuildMessageAndEnumDescriptors(module.DESCRIPTOR, vars(module))
    builder.BuildTopDescriptorsAndMessages(module.DESCRIPTOR, name, vars(module))
    sys.modules[name] = module

    from opentelemetry.exporter.zipkin.proto.http import ZipkinExporter
""")


def client_script(body: str) -> str:
    """The prelude followed by ``body`` (dedented)."""
    return PRELUDE + textwrap.dedent(body)
