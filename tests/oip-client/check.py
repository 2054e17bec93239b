"""Drives a running `serve` with Triton's Open Inference Protocol clients, as a user of Triton
or KServe would: health, metadata, inference with JSON and with binary tensor data, versioned
routes and the error cases over HTTP, in the input datatype the model's metadata names (FP32,
FP16 or UINT8); then, given --grpc-url, the same over gRPC, whose answers
must match the HTTP ones. tests/oip.rs starts the server and runs this script with the
client from scripts/install-oip-client.sh; it exits non-zero, saying what failed, on any
mismatch.

    python check.py --url 127.0.0.1:8080 --model classification [--grpc-url 127.0.0.1:8081]
"""

import argparse
import sys

import grpc
import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException, np_to_triton_dtype


def expect_error(call, fragment):
    """`call` must fail with a message holding `fragment`."""
    try:
        call()
    except InferenceServerException as error:
        message = error.message()
        assert fragment in message, f"expected an error holding {fragment!r}, got {message!r}"
        return message
    raise AssertionError(f"expected an error holding {fragment!r}, but the call succeeded")


def infer(client, model, names, images, *, binary_in, binary_out, version=""):
    """`images` through `model`; `names` are its input tensor's name and its output tensors'
    names. Without a list of outputs the client asks for all of them in binary, so JSON outputs
    are asked for by name."""
    name, outputs = names
    tensor = httpclient.InferInput(name, list(images.shape), np_to_triton_dtype(images.dtype))
    tensor.set_data_from_numpy(images, binary_data=binary_in)
    wanted = None if binary_out else [httpclient.InferRequestedOutput(o, binary_data=False) for o in outputs]
    return client.infer(model, [tensor], model_version=version, outputs=wanted)


def random_images(datatype, shape):
    """A random batch for an input of `datatype`: normalised-looking values for FP32 and FP16,
    pixels for UINT8."""
    rng = np.random.default_rng(0)
    if datatype == "UINT8":
        return rng.integers(0, 256, shape, dtype=np.uint8)
    assert datatype in ("FP32", "FP16"), datatype
    return rng.standard_normal(shape, dtype=np.float32).astype(np.float16 if datatype == "FP16" else np.float32)


def arrays(answer, outputs):
    """The answer's tensors, by name."""
    return {o: answer.as_numpy(o) for o in outputs}


def all_close(got, expected):
    assert got.keys() == expected.keys(), (got.keys(), expected.keys())
    for o in expected:
        assert got[o] is not None, f"no output {o}"
        assert np.allclose(got[o], expected[o], rtol=1e-4, atol=1e-5), (o, np.abs(got[o] - expected[o]).max())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--grpc-url")
    args = parser.parse_args()
    client = httpclient.InferenceServerClient(args.url)

    assert client.is_server_live(), "not live"
    assert client.is_server_ready(), "not ready"
    server = client.get_server_metadata()
    assert "binary_tensor_data" in server["extensions"], server
    assert args.model in server["models"], server
    assert client.is_model_ready(args.model), "model not ready"
    assert client.is_model_ready(args.model, "1"), "version 1 not ready"
    assert not client.is_model_ready(args.model, "2"), "version 2 ready"

    meta = client.get_model_metadata(args.model)
    assert client.get_model_metadata(args.model, "1") == meta
    [input_meta] = meta["inputs"]
    shape = [3 if d == -1 else d for d in input_meta["shape"]]
    images = random_images(input_meta["datatype"], shape)
    name, outputs = input_meta["name"], [o["name"] for o in meta["outputs"]]
    names = (name, outputs)

    # Binary in and out: the client's default. Every output the metadata lists comes back.
    binary = infer(client, args.model, names, images, binary_in=True, binary_out=True)
    values = arrays(binary, outputs)
    assert len(binary.get_response()["outputs"]) == len(outputs), binary.get_response()
    for output_meta in meta["outputs"]:
        got = values[output_meta["name"]]
        assert got is not None and got.dtype == np.float32, binary.get_response()
        assert binary.get_output(output_meta["name"])["parameters"]["binary_data_size"] == got.nbytes
        expected = [shape[0]] + [d for d in output_meta["shape"][1:]]
        assert list(got.shape) == expected, (output_meta["name"], got.shape, expected)
        assert np.isfinite(got).all()

    # JSON in and out, and the two mixed, on the plain and the versioned route.
    plain = infer(client, args.model, names, images, binary_in=False, binary_out=False)
    assert all("data" in plain.get_output(o) for o in outputs), plain.get_response()
    for answer in [
        plain,
        infer(client, args.model, names, images, binary_in=True, binary_out=False),
        infer(client, args.model, names, images, binary_in=False, binary_out=True, version="1"),
    ]:
        all_close(arrays(answer, outputs), values)
    # Each image of a batch gets the answer it gets alone.
    alone = infer(client, args.model, names, images[1:2], binary_in=True, binary_out=True)
    all_close(arrays(alone, outputs), {o: v[1:2] for o, v in values.items()})
    # Asking for the last output alone returns only it.
    last = infer(client, args.model, (name, outputs[-1:]), images, binary_in=True, binary_out=False)
    assert [o["name"] for o in last.get_response()["outputs"]] == outputs[-1:], last.get_response()
    all_close(arrays(last, outputs[-1:]), {outputs[-1]: values[outputs[-1]]})

    # Errors come back as the protocol's {"error": ...} with a 4xx.
    expect_error(lambda: client.get_model_metadata("no-such-model"), "no model named")
    expect_error(lambda: client.get_model_metadata(args.model, "2"), "no version '2'")
    wrong = images[:, :, :-1, :]
    expect_error(
        lambda: infer(client, args.model, names, np.ascontiguousarray(wrong), binary_in=True, binary_out=True),
        "does not fit the model's input",
    )
    expect_error(
        lambda: infer(client, args.model, ("pixels", outputs), images, binary_in=True, binary_out=True),
        "unknown input 'pixels'",
    )
    as_double = httpclient.InferInput(name, shape, "FP64")
    as_double.set_data_from_numpy(images.astype(np.float64))
    expect_error(lambda: client.infer(args.model, [as_double]), "datatype FP64 is not supported")
    unknown = httpclient.InferRequestedOutput("nope")
    tensor = httpclient.InferInput(name, shape, np_to_triton_dtype(images.dtype))
    tensor.set_data_from_numpy(images)
    expect_error(lambda: client.infer(args.model, [tensor], outputs=[unknown]), "unknown output 'nope'")
    # Another datatype than the model's is refused, naming the one it takes.
    other = images.astype(np.float32) if images.dtype != np.float32 else images.astype(np.float16)
    expect_error(
        lambda: infer(client, args.model, names, other, binary_in=True, binary_out=True),
        f"(the model takes {input_meta['datatype']})",
    )
    # The server still answers after the errors.
    assert client.is_server_live()
    print(f"{args.model}: health, metadata, JSON and binary inference and errors all as expected")
    if args.grpc_url:
        check_grpc(args.grpc_url, args.model, meta, images, values)


def check_grpc(url, model, http_meta, images, expected):
    """The same server over gRPC: what HTTP answered, gRPC answers."""
    client = grpcclient.InferenceServerClient(url)
    assert client.is_server_live() and client.is_server_ready()
    server = client.get_server_metadata(as_json=True)
    assert server["name"] == "exemplar-serve", server
    assert client.is_model_ready(model) and client.is_model_ready(model, "1")
    meta = client.get_model_metadata(model, as_json=True)
    [input_meta] = meta["inputs"]
    assert input_meta["name"] == http_meta["inputs"][0]["name"], meta
    assert [int(d) for d in input_meta["shape"]] == http_meta["inputs"][0]["shape"], meta
    name, outputs = input_meta["name"], [o["name"] for o in meta["outputs"]]
    assert outputs == [o["name"] for o in http_meta["outputs"]], meta

    assert input_meta["datatype"] == http_meta["inputs"][0]["datatype"], meta

    def infer(batch, version="", wanted=None):
        tensor = grpcclient.InferInput(name, list(batch.shape), np_to_triton_dtype(batch.dtype))
        tensor.set_data_from_numpy(batch)
        wanted = wanted and [grpcclient.InferRequestedOutput(o) for o in wanted]
        return client.infer(model, [tensor], model_version=version, outputs=wanted)

    got = arrays(infer(images), outputs)
    assert all(got[o].shape == expected[o].shape for o in outputs), got
    all_close(got, expected)
    all_close(arrays(infer(images[:1], version="1"), outputs), {o: v[:1] for o, v in expected.items()})
    last = infer(images, wanted=outputs[-1:])
    assert [o.name for o in last.get_response().outputs] == outputs[-1:]
    all_close(arrays(last, outputs[-1:]), {outputs[-1]: expected[outputs[-1]]})

    # The standard gRPC health service, for the server and for the inference service: SERVING.
    check = grpc.insecure_channel(url).unary_unary(
        "/grpc.health.v1.Health/Check", request_serializer=bytes, response_deserializer=bytes
    )
    service = b"inference.GRPCInferenceService"
    for request in [b"", b"\x0a" + bytes([len(service)]) + service]:
        assert check(request) == b"\x08\x01", check(request)

    expect_error(lambda: client.get_model_metadata("no-such-model"), "no model named")
    expect_error(lambda: client.is_model_ready(model, "2"), "no version '2'")
    expect_error(lambda: infer(np.ascontiguousarray(images[:, :, :-1, :])), "does not fit the model's input")
    expect_error(lambda: client.unload_model(model), "loaded at start-up")
    assert client.is_server_live()
    print(f"{model}: gRPC health, metadata, inference and errors as over HTTP")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as failure:
        print(f"check failed: {failure}", file=sys.stderr)
        raise
