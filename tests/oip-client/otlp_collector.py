"""A stand-in OpenTelemetry collector for tests/logs.rs.

It accepts OTLP/gRPC trace exports (opentelemetry.proto.collector.trace.v1.TraceService/Export)
on a free loopback port, which it prints, and appends each export's protobuf bytes, hex-encoded,
as one line to the file named by its argument. It answers every export with an empty
ExportTraceServiceResponse (no partial rejection).

    python otlp_collector.py spans.hex
"""

import sys
from concurrent import futures

import grpc


def main():
    out = sys.argv[1]

    def export(request: bytes, _context) -> bytes:
        with open(out, "a") as f:
            f.write(request.hex() + "\n")
        return b""

    handler = grpc.method_handlers_generic_handler(
        "opentelemetry.proto.collector.trace.v1.TraceService",
        {"Export": grpc.unary_unary_rpc_method_handler(export)},
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
