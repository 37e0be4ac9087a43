"""Protobuf modules generated from our own .proto files, one set per wire format (Jaeger api_v2
here, Zipkin under ``zipkin/``). Each set has a script that regenerates it."""
