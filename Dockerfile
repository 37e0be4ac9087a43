# spanlake: the same server as `make run`, in a container. Data lives in the /data volume.
FROM python:3.11-slim

WORKDIR /app
COPY pyproject.toml README.md ./
COPY collector collector
COPY storage storage
COPY query query
COPY ui ui
COPY spanlake spanlake
RUN pip install --no-cache-dir .

VOLUME ["/data"]
# OTLP gRPC/HTTP, Jaeger gRPC/Thrift HTTP, agent UDP compact/binary, sampling, Zipkin, query + UI
EXPOSE 4317 4318 14250 14268 6831/udp 6832/udp 5778 9411 16686 14269
ENV SPANLAKE_DATA_DIR=/data
# exec form: SIGTERM reaches spanlake, which flushes before it exits
ENTRYPOINT ["spanlake", "serve"]
